/**
 * `gini journal list|show|verify|prune`: the history of operations that changed this host.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { UsageError } from "../kernel/mod.ts";
import { listTransactions, readJournal } from "../kernel/journal/journal.ts";
import { pruneJournal } from "../kernel/journal/prune.ts";
import { verifyJournal } from "../kernel/journal/verify.ts";
import { formatBytes } from "../kernel/ops/types.ts";
import { type Cli, plugins } from "./_env.ts";
import { completeWith } from "./completions.ts";

/** Registers `gini journal …`. */
export function registerJournal(cli: Cli): void {
  const journal = cli.program.command("journal").description(
    "the history of operations that changed this host",
  ) as unknown as Command;
  registerList(cli, journal);
  registerShow(cli, journal);
  registerVerify(cli, journal);
  registerPrune(cli, journal);
}

function registerList(cli: Cli, journal: Command): void {
  journal.command("list")
    .description("list transactions, newest first")
    .action(cli.action(async ({ ui, env }) => {
      const list = (await listTransactions(env.dirs.state)).map((t) => ({
        id: t.id,
        command: t.command,
        at: t.at,
        state: t.state,
        changes: t.applied.length,
      }));
      ui.result(
        list,
        () =>
          list.length === 0
            ? "No transactions yet"
            : list.map((t) =>
              `${t.id}  ${t.state.padEnd(10)} ${
                String(t.changes).padStart(3)
              } change(s)  ${t.command}`
            ).join("\n"),
      );
    }));
}

function registerShow(cli: Cli, journal: Command): void {
  const show = journal.command("show")
    .description("show one transaction's records")
    .argument("<id>", "a transaction id from gini journal list")
    .action(cli.action(async ({ ui, env }, id: string) => {
      const tx = (await listTransactions(env.dirs.state)).find((t) =>
        t.id === id || t.id.startsWith(id)
      );
      if (!tx) {
        throw new UsageError(`Cannot find transaction "${id}"`, {
          hint: "List them with gini journal list",
        });
      }
      const { records, torn } = await readJournal(tx.file);
      ui.result(
        { ...tx, records, torn },
        () =>
          [
            `${tx.id} (${tx.state}) ${tx.command}`,
            ...records.map((r) => `  ${JSON.stringify(r)}`),
            ...(torn ? ["  (the last record was torn and is ignored)"] : []),
          ].join("\n"),
      );
    }));
  completeWith(show, 0, "transactions");
}

function registerVerify(cli: Cli, journal: Command): void {
  journal.command("verify")
    .description(
      "check that files committed transactions produced still have their recorded hashes",
    )
    .action(cli.action(async ({ ui, env }) => {
      const { checked, changed } = await verifyJournal(env.dirs.state);
      ui.result(
        { checked, changed },
        () =>
          changed.length === 0
            ? `${checked} file(s) checked: all as Gini left them`
            : changed.map((c) =>
              `changed: ${c.path} (${c.id}): expected ${c.expected.slice(0, 12)}…, found ${
                c.actual.slice(0, 12)
              }…`
            ).join("\n"),
      );
      return changed.length ? 1 : 0;
    }));
}

function registerPrune(cli: Cli, journal: Command): void {
  journal.command("prune")
    .description(
      "remove old ended transactions and unneeded backups (keeps what recover and vfio undo need)",
    )
    .option("--keep <n>", "ended transactions to keep, newest first", "20")
    .action(cli.action(async (c, options: { keep: string }) => {
      const { ui, env, flags } = c;
      const keep = Number(options.keep);
      if (!Number.isInteger(keep) || keep < 0) {
        throw new UsageError(`Cannot use --keep "${options.keep}": expected a whole number`, {
          location: { flag: "--keep" },
          hint: "For example: gini journal prune --keep 10",
        });
      }
      const dryRun = flags.dryRun ?? false;
      // What the plugins' undo commands (`vfio undo`) reverse stays.
      const undoable = (await plugins(c)).plugins.flatMap((m) =>
        m.commands.flatMap((command) => command.undoes ? [command.undoes] : [])
      );
      const r = await pruneJournal(env.dirs.state, { keep, dryRun, undoable });
      const bytes = r.removed.reduce((n, t) => n + t.bytes, 0);
      ui.result(r, () =>
        [
          ...(flags.verbose
            ? r.removed.map((t) => `  ${t.id}  ${t.state.padEnd(10)} ${t.command}`)
            : []),
          `${dryRun ? "Would remove" : "Removed"} ${r.removed.length} transaction(s) (${
            formatBytes(bytes)
          }) and ${r.blobs.removed} backup blob(s) (${formatBytes(r.blobs.bytes)})`,
          `Kept: ${r.kept.recent} recent, ${r.kept.incomplete} incomplete (gini recover), ${r.kept.inPlace} change(s) an undo command can still reverse; ${r.blobs.kept} blob(s)`,
        ].join("\n"));
    }));
}
