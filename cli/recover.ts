/**
 * `gini recover`: finishes an interrupted operation, by resuming it from its checkpoints or
 * rolling it back, as the operation asked or as the user chooses.
 *
 * @module
 */
import {
  createOpEnv,
  loadPlugins,
  renderReport,
  resolveStartupEnv,
  resumeTransaction,
  UsageError,
} from "../kernel/mod.ts";
import { incompleteTransactions, type Transaction } from "../kernel/journal/journal.ts";
import { rollbackFile } from "../kernel/journal/recovery.ts";
import { lockState, stateOwner } from "../kernel/journal/lock.ts";
import type { Cli, CommandEnv } from "./_env.ts";
import { renderUndo } from "./_undo.ts";
import { dirname, join } from "../workers/path.ts";
import { GINI_TEMP_NAME } from "../kernel/ops/_fs.ts";

/**
 * A crash between an atomic write's temporary file and its rename leaves the temporary file:
 * in the folders of the ops that were in flight, Gini's own temporary files are removed (the
 * state lock is held, so no other gini is writing them).
 */
function removeStrayTemps(tx: Transaction): void {
  const dirs = new Set(tx.inFlight.flatMap((op) => {
    const args = op.args as Record<string, unknown> | null;
    return ["path", "to"].flatMap((key) =>
      typeof args?.[key] === "string" ? [dirname(args[key] as string)] : []
    );
  }));
  for (const dir of dirs) {
    try {
      for (const entry of Deno.readDirSync(dir)) {
        if (entry.isFile && GINI_TEMP_NAME.test(entry.name)) Deno.removeSync(join(dir, entry.name));
      }
    } catch {
      // A folder that is gone holds no temporary file.
    }
  }
}

interface RecoverOptions {
  rollback?: boolean;
  resume?: boolean;
}

/** Registers `gini recover`. */
export function registerRecover(cli: Cli): void {
  cli.program.command("recover")
    .description(
      "finish an interrupted operation: resume a deployment, undo a host change (--dry-run shows how)",
    )
    .option("--rollback", "undo every change the interrupted operation made")
    .option("--resume", "carry it forward: redo unfinished stages from the last checkpoints")
    .action(cli.action(async (c, options: RecoverOptions) => {
      if (options.rollback && options.resume) {
        throw new UsageError("Cannot both roll back and resume", {
          hint: "Choose --rollback or --resume",
        });
      }
      const dryRun = c.flags.dryRun ?? false;
      // A live gini's transaction is not interrupted: recovering it would race it. Refused,
      // naming the process; a dry run only skips it.
      const lock = dryRun ? undefined : lockState(c.env.dirs.state, "recover");
      try {
        return await recover(cli, c, options, dryRun);
      } finally {
        lock?.release();
      }
    }));
}

/** One transaction's outcome: its JSON and its lines. */
interface Recovered {
  data: Record<string, unknown>;
  lines: string[];
  failed: boolean;
}

async function recover(cli: Cli, c: CommandEnv, options: RecoverOptions, dryRun: boolean) {
  const { ui } = c;
  const owner = stateOwner(c.env.dirs.state);
  const incomplete = (await incompleteTransactions(c.env.dirs.state)).filter((tx) => {
    if (!owner || owner.pid === Deno.pid || owner.tx !== tx.id) return true;
    ui.warn(`Skipping ${tx.id} (${tx.command}): gini pid ${owner.pid} is running it now`);
    return false;
  });
  const outcomes: Recovered[] = [];
  for (const tx of incomplete) {
    const how = options.resume
      ? "resume"
      : options.rollback || tx.rollbackIncomplete
      ? "rollback"
      : tx.replay?.recoverBy ?? "rollback";
    if (!dryRun) removeStrayTemps(tx);
    outcomes.push(
      how === "rollback" ? await rollbackOne(c, tx, dryRun) : await resumeOne(cli, c, tx, dryRun),
    );
  }
  const lines = outcomes.flatMap((o) => o.lines);
  ui.result(
    outcomes.map((o) => o.data),
    () => lines.length === 0 ? "Nothing to recover" : lines.join("\n"),
  );
  return outcomes.some((o) => o.failed) ? 1 : 0;
}

async function rollbackOne(c: CommandEnv, tx: Transaction, dryRun: boolean): Promise<Recovered> {
  const r = await rollbackFile(tx.file, createOpEnv(c.env, c.ui), dryRun);
  return {
    data: { id: tx.id, command: tx.command, action: "rollback", ...r },
    lines: [
      `${dryRun ? "Would roll back" : "Rolled back"} ${tx.id} (${tx.command}):`,
      ...renderUndo(r, dryRun),
    ],
    failed: r.failed.length > 0,
  };
}

async function resumeOne(
  cli: Cli,
  c: CommandEnv,
  tx: Transaction,
  dryRun: boolean,
): Promise<Recovered> {
  const { ui, flags } = c;
  const replay = tx.replay;
  // The interrupted run's own directories and plugins, whatever this command was given.
  const env = replay
    ? resolveStartupEnv(
      {
        ...flags,
        hostRoot: replay.hostRoot,
        configDir: replay.dirs.config,
        dataDir: replay.dirs.data,
        cacheDir: replay.dirs.cache,
      },
      cli.processEnv,
      cli.cwd,
    )
    : c.env;
  const loaded = await loadPlugins(env, replay?.pluginDirs ?? []);
  const r = await resumeTransaction(tx, { env, loaded, ui, dryRun });
  const { result, report } = r.outcome;
  if (result.error && !ui.json) ui.failure(result.error);
  return {
    data: {
      id: tx.id,
      command: tx.command,
      action: "resume",
      undone: r.undone,
      restored: r.restored,
      ok: result.ok,
      ...report,
      ...(result.error ? { error: result.error.toJSON() } : {}),
    },
    lines: [
      `${dryRun ? "Would resume" : "Resumed"} ${tx.id} (${tx.command}):`,
      `  complete before the interruption: ${
        r.restored.length === 0
          ? "no stage"
          : flags.verbose
          ? r.restored.join(", ")
          : `${r.restored.length} stage(s), the last ${r.restored.at(-1)}`
      }`,
      ...renderUndo(r.undone, dryRun),
      dryRun ? "  then would run:" : result.ok ? "  then ran:" : "  then failed:",
      ...renderReport(report).split("\n").map((l) => `  ${l}`),
    ],
    failed: !result.ok,
  };
}
