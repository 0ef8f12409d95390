/**
 * What the user approved is what runs. A confirmed command (`vfio apply`, `rm`) passes the plan
 * it showed to the live run, which checks every change against it before the change starts:
 * stage by stage, the same kinds with the same arguments, in the same order. A change the plan
 * did not show is refused before it happens, and what already ran is rolled back.
 *
 * @module
 */
import { sha256Hex } from "../sha256.ts";
import { GiniError } from "../errors.ts";
import type { Json } from "../../workers/protocol.ts";
import type { OpObserver, OpRecord } from "../ops/engine.ts";
import type { PlanReport } from "./dry_run.ts";

/** One change of an approved plan. */
export interface ApprovedOp {
  kind: string;
  args: Json;
  description: string;
  /** The diff the plan showed for a file edit: the file must still be as it was. */
  preview?: string;
}

/** A plan the user approved: its changes by stage, and a digest that names it. */
export interface ApprovedPlan {
  digest: string;
  stages: Record<string, ApprovedOp[]>;
}

/** The live run tried a change the approved plan did not show. */
export class PlanChangedError extends GiniError {
  constructor(message: string) {
    super("PLAN_CHANGED", message, 1, {
      hint:
        "The host changed after the plan was shown; nothing else was changed and what ran was undone. Run the command again to see the new plan",
    });
  }
}

/** JSON with object keys sorted, so that equal values give equal text. */
function canonical(value: Json): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${
      Object.keys(value).sort().map((k) =>
        `${JSON.stringify(k)}:${canonical((value as Record<string, Json>)[k]!)}`
      ).join(",")
    }}`;
  }
  return JSON.stringify(value);
}

/** The changes of a plan, by stage, and their sha256. */
export function approvedPlan(report: PlanReport): ApprovedPlan {
  const stages: Record<string, ApprovedOp[]> = {};
  for (const stage of report.stages) {
    const ops = stage.ops.filter((op) => !op.readOnly).map((op) => ({
      kind: op.kind,
      args: op.args,
      description: op.description,
      ...(op.preview === undefined ? {} : { preview: op.preview }),
    }));
    if (ops.length) stages[stage.id] = ops;
  }
  const body = canonical(
    Object.keys(stages).sort().map((id) => ({
      stage: id,
      ops: stages[id]!.map((op) => ({ kind: op.kind, args: op.args, preview: op.preview ?? null })),
    })),
  );
  return { digest: `sha256:${sha256Hex(body)}`, stages };
}

/**
 * An observer that refuses, before it starts, any change that is not the next one the approved
 * plan shows for its stage. `refusal()` is the first refusal (a plugin may have wrapped the error
 * it got); `unused()` lists approved changes that did not run.
 */
export function approvalGuard(
  plan: ApprovedPlan,
): OpObserver & { unused(): ApprovedOp[]; refusal(): PlanChangedError | undefined } {
  const next = new Map<string, number>();
  let refusal: PlanChangedError | undefined;
  return {
    beforeExecute(record: OpRecord) {
      if (record.readOnly) return;
      // Shut once it refused: no later change runs only to be rolled back.
      if (refusal) throw refusal;
      const index = next.get(record.stage) ?? 0;
      const wanted = plan.stages[record.stage]?.[index];
      if (
        !wanted || wanted.kind !== record.kind ||
        canonical(wanted.args) !== canonical(record.args) || wanted.preview !== record.preview
      ) {
        refusal ??= new PlanChangedError(
          `Refused a change the approved plan (${
            plan.digest.slice(0, 19)
          }…) did not show: ${record.description}${
            wanted ? ` (the plan showed: ${wanted.description})` : ""
          }`,
        );
        throw refusal;
      }
      next.set(record.stage, index + 1);
    },
    refusal: () => refusal,
    unused: () =>
      Object.entries(plan.stages).flatMap(([stage, ops]) => ops.slice(next.get(stage) ?? 0)),
  };
}
