/**
 * Gini's directories, resolved once at start-up from flags, `GINI_*` variables and
 * XDG defaults. Kernel code never reads the environment or the current directory
 * after this: a plugin with read permission could `Deno.chdir` the whole process.
 *
 * @module
 */
import { isAbsolute, join, normalize, resolve } from "../workers/path.ts";
import { UsageError } from "./errors.ts";

/** The four directories Gini owns. */
export interface GiniDirs {
  config: string;
  data: string;
  state: string;
  cache: string;
}

/** Everything start-up captured from the process that kernel code may need later. */
export interface StartupEnv {
  dirs: GiniDirs;
  /** Root of the host tree that plugins read (`/` unless `--host-root`). */
  hostRoot: string;
  /** The directory the user ran Gini from, for resolving relative paths in arguments. */
  cwd: string;
  home: string;
  /** The login name, for defaults such as the user cloud-init creates. */
  user: string | undefined;
  /** `PATH` at start-up, used only to resolve program names to absolute paths. */
  path: string;
  /**
   * The variables a program handed the user's terminal needs (an ssh session): the terminal's
   * type and the user's SSH agent; programs otherwise get a clean environment.
   */
  terminalEnv?: Record<string, string>;
  /** `GINI_LVM_NO_DM=1`: manage LVM metadata only (no device-mapper, as in containers and CI). */
  lvmNoDeviceMapper: boolean;
  /**
   * Crash injection for the recovery tests, N counting the run's changes (ops that are not
   * read-only) from 1: `GINI_CRASH_AFTER_OP=N`, `GINI_CRASH_BEFORE_DONE=N`,
   * and `GINI_CRASH_AFTER_UNDO=N` (a rollback dies after undoing its N-th step);
   * `GINI_INTERRUPT_AFTER_OP=N` sends the process a real SIGINT (Ctrl-C) after change N.
   */
  crash: { afterOp?: number; beforeDone?: number; afterUndo?: number; interruptAfter?: number };
}

/** The variables kept for a program given the user's terminal (see `StartupEnv.terminalEnv`). */
const TERMINAL_VARS = ["TERM", "COLORTERM", "SSH_AUTH_SOCK"] as const;

/** Directory overrides from the command line. */
export interface DirFlags {
  configDir?: string | undefined;
  dataDir?: string | undefined;
  stateDir?: string | undefined;
  cacheDir?: string | undefined;
  hostRoot?: string | undefined;
}

/**
 * Resolves directories: flag, then `GINI_*_DIR`, then `XDG_*_HOME/gini`, then the XDG default.
 *
 * @example
 * ```ts
 * const env = resolveStartupEnv({}, { HOME: "/home/ada" }, "/home/ada");
 * env.dirs.data; // "/home/ada/.local/share/gini"
 * ```
 */
export function resolveStartupEnv(
  flags: DirFlags,
  env: Record<string, string | undefined>,
  cwd: string,
): StartupEnv {
  const home = env.HOME;
  if (!home || !isAbsolute(home)) {
    throw new UsageError("Cannot find your home directory: HOME is not set to an absolute path", {
      hint: "Set HOME, or pass --config-dir, --data-dir, --state-dir and --cache-dir",
    });
  }
  const pick = (flag: string | undefined, giniVar: string, xdgVar: string, fallback: string) => {
    if (flag) return resolve(cwd, flag);
    const own = env[giniVar];
    if (own) return resolve(cwd, own);
    const xdg = env[xdgVar];
    if (xdg && isAbsolute(xdg)) return join(xdg, "gini");
    return join(home, fallback, "gini");
  };
  const hostRoot = flags.hostRoot ?? env.GINI_HOST_ROOT;
  return {
    dirs: {
      config: pick(flags.configDir, "GINI_CONFIG_DIR", "XDG_CONFIG_HOME", ".config"),
      data: pick(flags.dataDir, "GINI_DATA_DIR", "XDG_DATA_HOME", ".local/share"),
      state: pick(flags.stateDir, "GINI_STATE_DIR", "XDG_STATE_HOME", ".local/state"),
      cache: pick(flags.cacheDir, "GINI_CACHE_DIR", "XDG_CACHE_HOME", ".cache"),
    },
    hostRoot: hostRoot ? resolve(cwd, hostRoot) : "/",
    cwd,
    home,
    user: env.USER ?? env.LOGNAME,
    path: env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    terminalEnv: Object.fromEntries(
      TERMINAL_VARS.flatMap((name) => env[name] ? [[name, env[name]]] : []),
    ),
    lvmNoDeviceMapper: env.GINI_LVM_NO_DM === "1",
    crash: {
      ...(env.GINI_CRASH_AFTER_OP ? { afterOp: Number(env.GINI_CRASH_AFTER_OP) } : {}),
      ...(env.GINI_CRASH_BEFORE_DONE ? { beforeDone: Number(env.GINI_CRASH_BEFORE_DONE) } : {}),
      ...(env.GINI_CRASH_AFTER_UNDO ? { afterUndo: Number(env.GINI_CRASH_AFTER_UNDO) } : {}),
      ...(env.GINI_INTERRUPT_AFTER_OP
        ? { interruptAfter: Number(env.GINI_INTERRUPT_AFTER_OP) }
        : {}),
    },
  };
}

/** Expands `{data}`, `{config}`, `{cache}`, `{state}` and `{host}` in a grant or path. */
export function expandPlaceholders(pattern: string, env: StartupEnv): string {
  const expanded = pattern.replace(/\{(data|config|cache|state|host)\}/g, (_, key: string) => {
    if (key === "host") return env.hostRoot === "/" ? "" : env.hostRoot;
    return env.dirs[key as keyof GiniDirs];
  });
  return normalize(expanded);
}

/** `<config>/plugins.lock`: the plugins the user approved. */
export function lockPath(env: StartupEnv): string {
  return join(env.dirs.config, "plugins.lock");
}
