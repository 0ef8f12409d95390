/**
 * What a command line says before the kernel is loaded: its global flags, whether its first word
 * is the kernel's, and which core plugin's worker it will need, started at once so that the
 * worker loads while the kernel does (`prestart` in kernel/plugins/host.ts; a run takes it only
 * if it would have started the same one).
 *
 * @module
 */
import { resolveStartupEnv } from "../kernel/paths.ts";
import { cachedCoreManifests } from "../kernel/plugins/discover.ts";
import { prestart } from "../kernel/plugins/host.ts";
import type { Manifest } from "../kernel/plugins/manifest.ts";
import { join } from "../workers/path.ts";
import type { GlobalOptions } from "./_env.ts";

/** The kernel's command words (`cli/mod.ts` registers them; a test holds the two lists equal). */
export const KERNEL_WORDS: ReadonlySet<string> = new Set([
  "completions",
  "version",
  "plugins",
  "plan",
  "up",
  "down",
  "rm",
  "recover",
  "journal",
  "run",
  "help",
  "__complete",
]);

type GlobalKey = keyof GlobalOptions;

/** The global flags: their key, and whether they take a value. */
const GLOBALS: Record<string, { key: GlobalKey; value: boolean }> = {
  "-n": { key: "dryRun", value: false },
  "--dry-run": { key: "dryRun", value: false },
  "--json": { key: "json", value: false },
  "-v": { key: "verbose", value: false },
  "--verbose": { key: "verbose", value: false },
  "-y": { key: "yes", value: false },
  "--yes": { key: "yes", value: false },
  "--host-root": { key: "hostRoot", value: true },
  "--config-dir": { key: "configDir", value: true },
  "--data-dir": { key: "dataDir", value: true },
  "--state-dir": { key: "stateDir", value: true },
  "--cache-dir": { key: "cacheDir", value: true },
  "--plugin-dir": { key: "pluginDir", value: true },
};

/** A line the fast parser read: the global flags and what is left for the command. */
interface GlobalScan {
  flags: GlobalOptions;
  rest: string[];
}

/** Takes the global flags out of `args`, wherever they are before "--" (as commander does). */
export function scanGlobals(args: string[]): GlobalScan | undefined {
  const flags: GlobalOptions = {};
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      rest.push(...args.slice(i));
      break;
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const global = Object.hasOwn(GLOBALS, name) ? GLOBALS[name] : undefined;
    if (!global) {
      rest.push(arg);
      continue;
    }
    if (!global.value) {
      if (eq > 0) return undefined; // --json=x: an error commander reports
      (flags as Record<string, unknown>)[global.key] = true;
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined) return undefined;
    if (global.key === "pluginDir") flags.pluginDir = [...(flags.pluginDir ?? []), value];
    else (flags as Record<string, unknown>)[global.key] = value;
  }
  return { flags, rest };
}

/**
 * The line's global flags and the rest, if it may be a plugin's command on a plain line: no help
 * asked, and a first word that is neither the kernel's nor a flag. Else undefined (commander's).
 */
export function pluginCommandLine(args: string[]): GlobalScan | undefined {
  if (args.some((a) => a === "-h" || a === "--help")) return undefined;
  const scan = scanGlobals(args);
  const word = scan?.rest[0];
  if (!scan || word === undefined || KERNEL_WORDS.has(word) || word.startsWith("-")) {
    return undefined;
  }
  return scan;
}

/** The core plugin's command `rest` starts with (the longest declared path), from `manifests`. */
function commandOf(manifests: Manifest[], rest: string[]) {
  let best: { manifest: Manifest; spec: Manifest["commands"][number] } | undefined;
  for (const manifest of manifests) {
    for (const spec of manifest.commands) {
      const words = spec.path.split(" ");
      if (words.some((w, i) => rest[i] !== w)) continue;
      if (!best || words.length > best.spec.path.split(" ").length) best = { manifest, spec };
    }
  }
  return best;
}

/**
 * Starts the workers a plugin's command on `args` will need, from the manifests an earlier run
 * checked: the owning core plugin's, and for a live run the core hook plugins'. Guesses only:
 * a wrong one costs the time to start a worker, never a different run.
 */
export function prestartFor(
  args: string[],
  processEnv: Record<string, string | undefined>,
  cwd: string,
): void {
  const scan = pluginCommandLine(args);
  if (!scan) return;
  try {
    const env = resolveStartupEnv(scan.flags, processEnv, cwd);
    const core = cachedCoreManifests(join(env.dirs.state, "manifests.json"));
    const found = commandOf(core, scan.rest);
    if (!found || found.spec.mode === "group" || found.spec.mode === "undo") return;
    if (found.manifest.stages.some((s) => s.reads.includes("session.plugins"))) return;
    const dryRun = (scan.flags.dryRun ?? false) || found.spec.mode === "query" ||
      (found.spec.ask ?? false);
    prestart(found.manifest, env, dryRun);
    for (const m of core) {
      const hooks = m.hooks.pre_stage || m.hooks.post_stage;
      if (m !== found.manifest && hooks && (!dryRun || m.hooks.dry_run)) prestart(m, env, dryRun);
    }
  } catch {
    // Nothing started ahead: the run starts its workers itself.
  }
}
