/**
 * Builds the single `gini` binary with `deno compile`, with exactly the permission
 * flags of the `gini` task, and with the worker bootstrap, the core plugins and the modules
 * loaded later included (workers, plugin manifests and `importLater` modules are loaded at run
 * time, not imported).
 *
 * `deno compile` downloads its runtime the first time, so it needs the internet.
 *
 * @example
 * ```sh
 * deno task compile            # writes ./gini
 * deno run -A scripts/compile.ts --print   # shows the command without running it
 * ```
 *
 * @module
 */
import { fromFileUrl } from "../kernel/url.ts";

const REPO = fromFileUrl(new URL("../", import.meta.url));

/**
 * Folders bundled into the binary for code that is loaded at run time: workers, plugins, and the
 * CLI and kernel modules imported with `importLater` (kernel/lazy.ts), which Deno's module graph
 * does not follow.
 */
export const INCLUDE = ["workers/", "plugins/", "cli/", "kernel/"];

/** The flags of the `gini` task between `deno run` and `main.ts`. */
export async function giniRunFlags(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${REPO}deno.json`)) as {
    tasks: Record<string, string>;
  };
  const words = config.tasks.gini!.split(/\s+/);
  const start = words.indexOf("run");
  const end = words.indexOf("main.ts");
  if (words[0] !== "deno" || start !== 1 || end < 0) {
    throw new Error('The "gini" task must read "deno run <flags> main.ts"');
  }
  return words.slice(start + 1, end);
}

/** The full `deno compile` argv. */
export async function compileArgs(output = "gini"): Promise<string[]> {
  const flags = (await giniRunFlags()).filter((f) => f !== "--quiet");
  return [
    "compile",
    ...flags,
    ...INCLUDE.flatMap((dir) => ["--include", dir]),
    "--output",
    output,
    "main.ts",
  ];
}

if (import.meta.main) {
  const args = await compileArgs(Deno.args.find((a) => !a.startsWith("-")) ?? "gini");
  if (Deno.args.includes("--print")) {
    // deno-lint-ignore no-console
    console.log(["deno", ...args].join(" "));
  } else {
    const status = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: REPO,
      stdout: "inherit",
      stderr: "inherit",
    })
      .spawn().status;
    Deno.exit(status.code);
  }
}
