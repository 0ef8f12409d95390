/**
 * What every command of the CLI shares: the global flags, the environment a command runs in, the
 * wrapper that turns an action's outcome into an exit code, and confirmation on a terminal.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import {
  createUi,
  GiniError,
  loadPlugins,
  type Resolution,
  resolveStartupEnv,
  type StartupEnv,
  type Ui,
  type UiSink,
  UsageError,
} from "../kernel/mod.ts";
import { incompleteTransactions } from "../kernel/journal/journal.ts";
import { stateOwner } from "../kernel/journal/lock.ts";

/** The flags every command takes. */
export interface GlobalOptions {
  dryRun?: boolean;
  json?: boolean;
  verbose?: boolean;
  yes?: boolean;
  hostRoot?: string;
  configDir?: string;
  dataDir?: string;
  stateDir?: string;
  cacheDir?: string;
  pluginDir?: string[];
}

/** What a command needs: the UI, the directories, and the global flags. */
export interface CommandEnv {
  ui: Ui;
  env: StartupEnv;
  flags: GlobalOptions;
}

/** An action: its result is the exit code (0 when it returns nothing). */
export type Action<A extends unknown[]> = (
  c: CommandEnv,
  ...args: A
) => Promise<number | void> | number | void;

/** The CLI as the command files see it while they register their commands. */
export interface Cli {
  program: Command;
  /** Wraps an action with start-up (UI, directories, interrupted-work warnings) and errors. */
  action<A extends unknown[]>(action: Action<A>): (...args: A) => Promise<void>;
  /** The process environment and working folder the CLI was started with. */
  processEnv: Record<string, string | undefined>;
  cwd: string;
  sink: UiSink | undefined;
  /** The exit code of the action that ran. */
  exitCode(): number;
}

/** Adds each value of a repeatable flag. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** The plugins of this run: the installed ones and those of --plugin-dir. */
export async function plugins(c: CommandEnv): Promise<Resolution> {
  const dirs = c.flags.pluginDir ?? [];
  if (dirs.length) {
    c.ui.warn(
      `Loading plugin sources from --plugin-dir ${
        dirs.join(", ")
      } without approval: for authoring only; install packages for use`,
    );
  }
  return await loadPlugins(c.env, dirs);
}

/** A confirmed command goes ahead with --yes, or a yes on a terminal after seeing `shown`. */
export function confirmed(
  c: CommandEnv,
  question: string,
  refusal: string,
  shown: string,
): boolean {
  if (c.flags.yes) return true;
  if (!Deno.stdin.isTerminal()) {
    throw new UsageError(refusal, { hint: "Pass --yes, or run it on a terminal" });
  }
  c.ui.info(shown);
  return confirm(question);
}

/** Commands that look at the journal themselves, or at nothing. */
const QUIET_COMMANDS = ["recover", "journal", "version"];

/** Warns about transactions another run left incomplete. */
async function warnIncomplete(c: CommandEnv, name: string): Promise<void> {
  if (QUIET_COMMANDS.includes(name)) return;
  const incomplete = await incompleteTransactions(c.env.dirs.state).catch(() => []);
  const owner = incomplete.length ? stateOwner(c.env.dirs.state) : null;
  for (const t of incomplete) {
    if (owner && owner.tx === t.id && owner.pid !== Deno.pid) {
      c.ui.warn(
        `In progress in another process: ${t.command} (${t.id}, gini pid ${owner.pid}, since ${owner.at}); changes wait until it ends`,
      );
      continue;
    }
    if (t.rollbackIncomplete) {
      c.ui.warn(
        `A failed operation could not be fully undone: ${t.command} (${t.id}, ${t.applied.length} change(s) still in place). Run "gini recover" to finish undoing it; add --dry-run to see how`,
      );
      continue;
    }
    const how = t.replay?.recoverBy ?? "rollback";
    const other = how === "resume" ? "rollback" : "resume";
    c.ui.warn(
      `An operation was interrupted: ${t.command} (${t.id}, ${t.applied.length} change(s) applied, ${t.checkpoints.size} stage(s) complete). Run "gini recover" to ${
        how === "resume" ? "finish it (--resume)" : "undo it (--rollback)"
      }, or choose "gini recover --${other}"; add --dry-run to see how`,
    );
  }
}

/** The CLI's shared parts for a program whose global flags are parsed. */
export function createCli(
  program: Command,
  sink: UiSink | undefined,
  processEnv: Record<string, string | undefined>,
  cwd: string,
): Cli {
  let exitCode = 0;
  return {
    program,
    processEnv,
    cwd,
    sink,
    exitCode: () => exitCode,
    action: <A extends unknown[]>(action: Action<A>) => async (...args: A) => {
      const last = args.at(-1) as Command | undefined;
      const command = typeof last?.opts === "function" ? last : undefined;
      const flags = program.opts() as GlobalOptions;
      exitCode = await runAction(
        { flags, processEnv, cwd, sink },
        rootName(command),
        (c) => action(c, ...args),
      );
    },
  };
}

/**
 * Runs a command's action with its start-up (the UI, the directories, warnings about interrupted
 * work) and turns its outcome or error into the exit code, reported as text or as --json.
 */
export async function runAction(
  start: {
    flags: GlobalOptions;
    processEnv: Record<string, string | undefined>;
    cwd: string;
    sink: UiSink | undefined;
  },
  root: string,
  action: (c: CommandEnv) => Promise<number | void> | number | void,
): Promise<number> {
  const { flags, sink } = start;
  const ui = () =>
    createUi({
      json: flags.json ?? false,
      verbose: flags.verbose ?? false,
      ...(sink ? { sink } : {}),
    });
  let c: CommandEnv | undefined;
  try {
    c = { ui: ui(), flags, env: resolveStartupEnv(flags, start.processEnv, start.cwd) };
    await warnIncomplete(c, root);
    return (await action(c)) ?? 0;
  } catch (error) {
    (c?.ui ?? ui()).failure(error);
    return error instanceof GiniError ? error.exitCode : 1;
  }
}

/** The first word of a command's path ("journal" for `journal list`). */
function rootName(command: Command | undefined): string {
  let name = command?.name() ?? "";
  for (let c = command?.parent; c?.parent; c = c.parent) name = c.name();
  return name;
}
