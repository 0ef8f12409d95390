/**
 * `gini completions SHELL`: each script is checked by its own shell, and bash and fish really
 * complete a subcommand, a plugin's command, a flag and a VM name through `gini __complete`.
 *
 * @module
 */
import { assertEquals, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { install } from "../scripts/install.ts";
import { DENO_DIR, REPO, runGini, tempEnv } from "./_helpers.ts";

/** A home with one VM as `gini up` leaves it (its vm.json), and a gini launcher on PATH. */
async function home() {
  const { root } = await tempEnv();
  const bin = join(root, "bin");
  await install(bin);
  const vm = join(root, ".local/share/gini/vms/web-1");
  await Deno.mkdir(vm, { recursive: true });
  await Deno.writeTextFile(
    join(vm, "vm.json"),
    JSON.stringify({
      name: "web-1",
      accel: "tcg",
      backend: "qemu",
      cpu: { vcpus: 1 },
      memory: { bytes: 256 * 1024 * 1024 },
      paths: { dir: vm, pidFile: join(vm, "qemu.pid") },
      configFile: join(root, "web-1.toml"),
    }),
  );
  const env = {
    HOME: root,
    PATH: `${bin}:${Deno.env.get("PATH")}`,
    DENO_DIR,
    NO_COLOR: "1",
  };
  return { root, env };
}

async function inShell(program: string, args: string[], env: Record<string, string>, cwd: string) {
  const out = await new Deno.Command(program, { args, env, clearEnv: true, cwd }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  assertEquals(out.code, 0, `${program} ${args.join(" ")}: ${text(out.stderr)}`);
  return text(out.stdout);
}

Deno.test("completion scripts pass their shell's syntax check; bash and fish complete commands, flags and VM names", async (t) => {
  const { root, env } = await home();
  const scripts: Record<string, string> = {};
  for (const name of ["bash", "zsh", "fish"]) {
    const out = await runGini(root, ["completions", name]);
    assertEquals(out.code, 0, out.stderr);
    scripts[name] = join(root, `gini.${name}`);
    await Deno.writeTextFile(scripts[name]!, out.stdout);
  }
  await t.step("bash -n, zsh -n and fish -n accept them", async () => {
    await inShell("bash", ["-n", scripts.bash!], env, root);
    await inShell("zsh", ["-n", scripts.zsh!], env, root);
    await inShell("fish", ["--no-execute", scripts.fish!], env, root);
  });

  // bash: what Tab would put in COMPREPLY for the words typed so far.
  const bash = (line: string) =>
    inShell(
      "bash",
      [
        "-c",
        `source ${scripts.bash}; COMP_WORDS=(${line}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _gini; printf '%s\\n' "\${COMPREPLY[@]}"`,
      ],
      env,
      root,
    );
  await t.step("bash", async () => {
    assertEquals((await bash(`gini journal ""`)).trim().split("\n"), [
      "list",
      "show",
      "verify",
      "prune",
    ]);
    assertEquals((await bash("gini rec")).trim(), "recover");
    assertEquals((await bash(`gini vfio ap`)).trim(), "apply");
    assertEquals((await bash(`gini rm ""`)).trim(), "web-1");
    assertEquals((await bash(`gini --data-dir ${root}/.local/share/gini down w`)).trim(), "web-1");
    assertStringIncludes(await bash("gini plan --dr"), "--dry-run");
    // A plugin's command, from the plugin folder the line names.
    const plugin = join(REPO, "plugins/examples/nvidia_code43");
    assertEquals((await bash(`gini --plugin-dir ${plugin} code`)).trim(), "code43");
  });
  await t.step("fish", async () => {
    const fish = (line: string) =>
      inShell("fish", ["-c", `source ${scripts.fish}; complete -C'${line}'`], env, root);
    assertEquals((await fish("gini rec")).trim(), "recover");
    assertEquals((await fish("gini rm ")).trim(), "web-1");
  });
  await t.step("an unknown shell is refused with the choices", async () => {
    const out = await runGini(root, ["completions", "bsh"]);
    assertEquals(out.code, 2);
    assertStringIncludes(
      out.stderr,
      'Cannot write completions for "bsh": expected bash, zsh or fish',
    );
    assertStringIncludes(out.stderr, 'Did you mean "bash"?');
  });
});
