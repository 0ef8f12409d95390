/**
 * Shared set-up for cross-part tests: a private set of Gini directories, fixture
 * plugins loaded through the real discovery and resolution, and a UI that records.
 *
 * @module
 */
import { join } from "node:path";
import { discoverPlugins } from "../kernel/plugins/discover.ts";
import { resolvePlugins } from "../kernel/plugins/resolve.ts";
import type { Resolution } from "../kernel/plugins/resolve.ts";
import { createUi, type Ui, type UiSink } from "../kernel/ui.ts";
import { resolveStartupEnv, type StartupEnv } from "../kernel/paths.ts";
import { fromFileUrl } from "../kernel/url.ts";
import { giniRunFlags } from "../scripts/compile.ts";

export const REPO = fromFileUrl(new URL("../", import.meta.url));
export const FIXTURE_PLUGINS = join(REPO, "tests/fixtures/plugins");

/** A temporary home with Gini's four directories inside. */
export async function tempEnv(hostRoot?: string): Promise<StartupEnv & { root: string }> {
  const root = await Deno.makeTempDir({ prefix: "gini-test-" });
  const env = resolveStartupEnv(
    {
      configDir: join(root, "config"),
      dataDir: join(root, "data"),
      stateDir: join(root, "state"),
      cacheDir: join(root, "cache"),
      ...(hostRoot ? { hostRoot } : {}),
    },
    { HOME: root, PATH: Deno.env.get("PATH") },
    root,
  );
  return { ...env, root };
}

/** Loads the named fixture plugins (folder names under tests/fixtures/plugins). */
export async function loadFixtures(...folders: string[]): Promise<Resolution> {
  const discovery = await discoverPlugins(
    folders.map((f) => ({ dir: join(FIXTURE_PLUGINS, f), origin: "extra" as const })),
  );
  return resolvePlugins(discovery.manifests, discovery.errors);
}

/** A UI whose output is kept in memory. */
export function recordingUi(json = false): Ui & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const sink: UiSink = {
    out: (t) => void out.push(t),
    err: (t) => void err.push(t),
    isTerminal: false,
  };
  return Object.assign(createUi({ json, sink }), { out, err });
}

/**
 * Every file under `dir` with its content, for before/after comparisons. Gini's state directory
 * (`state` in a test home, or `.local/state`) is left out: the journal recording a run is not a
 * change to what the run manages. A VM's history is compared by its events.
 */
export async function snapshotTree(dir: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  const walk = async (current: string, prefix: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(current));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(current, entry.name);
      const key = `${prefix}${entry.name}`;
      if (entry.isSymlink) result[key] = `-> ${await Deno.readLink(path)}`;
      else if (entry.isDirectory && (key === "state" || key === ".local/state")) continue;
      else if (entry.isDirectory) {
        result[`${key}/`] = "dir";
        await walk(path, `${key}/`);
        // ".local" made only to hold the state directory is not a change either.
        if (
          key === ".local" &&
          !Object.keys(result).some((k) => k.startsWith(".local/") && k !== ".local/")
        ) {
          delete result[".local/"];
        }
      } else if (entry.name === "history.jsonl") {
        // A VM's history: its events in effect are content (a record undone by a rollback or a
        // resume goes with its "undone"); the times and checksums that seal them are not.
        const records = (await Deno.readTextFile(path)).trim().split("\n").map((l) =>
          JSON.parse(l) as { seq: number; event: string; detail: { seq?: number } | null }
        );
        const undone = new Set(
          records.filter((r) => r.event === "undone").map((r) => r.detail?.seq),
        );
        result[key] = `events: ${
          records.filter((r) => r.event !== "undone" && !undone.has(r.seq)).map((r) => r.event)
            .join(",")
        }`;
      } else result[key] = await Deno.readTextFile(path);
    }
  };
  await walk(dir, "");
  return result;
}

// The child gets its own HOME; it keeps Deno's module cache so it need not download again.
export const DENO_DIR = Deno.env.get("DENO_DIR") ??
  join(Deno.env.get("HOME") ?? "/root", ".cache/deno");

/** What a finished command printed. */
export interface CommandOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real entry point with exactly the flags of the `gini` task (and of the compiled
 * binary), with HOME at `home`, a clean environment plus `env`, in `home` as working directory.
 */
export async function runGini(
  home: string,
  args: string[],
  env: Record<string, string> = {},
  cwd = home,
  input?: string,
): Promise<CommandOutput> {
  if (input !== undefined) {
    // Standard input given, then closed, as a shell pipe gives it.
    const child = (await giniCommand(home, args, env, cwd, "piped")).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(input));
    await writer.close();
    const out = await child.output();
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
  }
  const out = await (await giniCommand(home, args, env, cwd)).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

/** Starts `gini` as {@linkcode runGini} runs it, for a test that acts while it runs. */
export async function spawnGini(
  home: string,
  args: string[],
  env: Record<string, string> = {},
  stdin: "piped" | "null" = "null",
): Promise<{ child: Deno.ChildProcess; output: Promise<CommandOutput> }> {
  const child = (await giniCommand(home, args, env, home, stdin)).spawn();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  const output = child.output().then((out) => ({
    code: out.code,
    stdout: decode(out.stdout),
    stderr: decode(out.stderr),
  }));
  return { child, output };
}

async function giniCommand(
  home: string,
  args: string[],
  env: Record<string, string>,
  cwd: string,
  stdin: "piped" | "null" = "null",
): Promise<Deno.Command> {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...await giniRunFlags(), join(REPO, "main.ts"), ...args],
    cwd,
    env: {
      HOME: home,
      NO_COLOR: "1",
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      DENO_DIR,
      ...env,
    },
    clearEnv: true,
    stdin,
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs a program that must succeed; returns its trimmed stdout. */
export async function sh(...argv: string[]): Promise<string> {
  const out = await new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new Error(
      `${argv.join(" ")} exited ${out.code}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return new TextDecoder().decode(out.stdout).trim();
}

/** A `sleep` argument no other process on this machine has: 1000.<random digits> seconds. */
export function uniqueSeconds(): string {
  return `1000.${crypto.getRandomValues(new Uint32Array(1))[0]}`;
}

/** Live processes whose command line has `arg` as one of its arguments. */
export function processesWith(arg: string): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const argv = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      if (argv.includes(arg) && state !== "Z") found.push(Number(entry.name));
    } catch { /* exited meanwhile */ }
  }
  return found;
}

/** The tiny direct-boot guest (scripts/build-tiny-guest.sh): the folder of its vmlinuz and initrd.img. */
export async function tinyGuest(): Promise<string> {
  return await sh("bash", join(REPO, "scripts/build-tiny-guest.sh"));
}

/**
 * A temporary home holding `tiny.toml`: the tiny guest booted directly with 256 MiB, followed by
 * `rest` (its disks, network, firmware). `cmdline` is added to the guest's kernel command line
 * ("gini.tick" makes it count, "gini.panic" makes it panic). Gives the home, the VM's folder and
 * the file.
 */
export async function tinyVmHome(
  rest: string,
  cmdline = "",
): Promise<{ root: string; dir: string; file: string }> {
  const guest = await tinyGuest();
  const { root } = await tempEnv();
  const file = join(root, "tiny.toml");
  await Deno.writeTextFile(
    file,
    `name = "tiny"
[memory]
size = "256M"
[boot]
kernel = "${guest}/vmlinuz"
initrd = "${guest}/initrd.img"
cmdline = "console=ttyS0 panic=-1${cmdline ? ` ${cmdline}` : ""}"
${rest}`,
  );
  return { root, dir: join(root, ".local/share/gini/vms/tiny"), file };
}

/** Waits until `marker` appears in `file` (a serial log); gives the file's text, or fails with its end. */
export async function waitFor(file: string, marker: string, seconds: number): Promise<string> {
  const deadline = Date.now() + seconds * 1000;
  let text = "";
  while (Date.now() < deadline) {
    text = await Deno.readTextFile(file).catch(() => "");
    if (text.includes(marker)) return text;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `"${marker}" did not appear in ${file} within ${seconds} s:\n${text.slice(-2000)}`,
  );
}
