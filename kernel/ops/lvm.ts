/**
 * `lvm.create` and `lvm.remove`: logical volumes for VM disks, through lvcreate
 * and lvremove. With `GINI_LVM_NO_DM=1` (read at start-up) the kernel adds
 * `--driverloaded n` and creates volumes inactive and unzeroed (`-an -Zn`), for
 * hosts without device-mapper such as containers and CI.
 *
 * @module
 */
import { z } from "zod";
import { ConflictError } from "../errors.ts";
import type { OpEnv } from "./types.ts";
import { defineOp, formatBytes } from "./types.ts";

const LvArgs = z.strictObject({
  volumeGroup: z.string().regex(/^[A-Za-z0-9+_.-]+$/),
  name: z.string().regex(/^[A-Za-z0-9+_.-]+$/),
});
const LvCreateArgs = LvArgs.extend({ sizeBytes: z.number().int().positive() });
type LvArgs = z.infer<typeof LvArgs>;
type LvCreateArgs = z.infer<typeof LvCreateArgs>;

/** The size of a logical volume in bytes, or null when it does not exist. */
async function lvSize(env: OpEnv, a: LvArgs): Promise<number | null> {
  const out = await env.host.run(
    [
      "lvs",
      ...noDm(env),
      "--reportformat",
      "json",
      "--units",
      "b",
      "--nosuffix",
      "-o",
      "lv_name,lv_size",
      `${a.volumeGroup}/${a.name}`,
    ],
    { noThrow: true, timeoutMs: 30_000 },
  );
  if (out.code !== 0) return null;
  const lv = (JSON.parse(out.stdout) as { report: { lv: { lv_size: string }[] }[] }).report[0]
    ?.lv[0];
  return lv ? Number(lv.lv_size) : null;
}

function noDm(env: OpEnv): string[] {
  return env.startup.lvmNoDeviceMapper ? ["--driverloaded", "n"] : [];
}

export const lvmCreate = defineOp<LvCreateArgs>({
  kind: "lvm.create",
  schema: LvCreateArgs,
  pathArgs: [],
  describe: (a) =>
    `Create logical volume "${a.volumeGroup}/${a.name}" (${formatBytes(a.sizeBytes)})`,
  estimate: (a) => ({ bytes: a.sizeBytes, seconds: 1 }),
  permission: (
    a,
  ) => [{ grant: "lvm", target: `${a.volumeGroup}/${a.name}` }, {
    grant: "run",
    program: "lvcreate",
  }],
  capture: async (a, env) => ({ existingSize: await lvSize(env, a) }),
  conflicts: (a, before) =>
    (before as { existingSize: number | null }).existingSize !== null
      ? [`logical volume "${a.volumeGroup}/${a.name}" exists`]
      : [],
  async execute(a, env, before) {
    if ((before as { existingSize: number | null }).existingSize !== null) {
      throw new ConflictError(
        `Cannot create logical volume "${a.volumeGroup}/${a.name}": it exists`,
        { hint: "Remove the VM first with gini rm" },
      );
    }
    const test = env.startup.lvmNoDeviceMapper ? ["-an", "-Zn"] : [];
    await env.host.run([
      "lvcreate",
      ...noDm(env),
      ...test,
      "-y",
      "-n",
      a.name,
      "-L",
      `${a.sizeBytes}b`,
      a.volumeGroup,
    ], { timeoutMs: 120_000 });
    return { path: `/dev/${a.volumeGroup}/${a.name}`, sizeBytes: a.sizeBytes };
  },
  simulate: (a) => ({
    path: `/dev/${a.volumeGroup}/${a.name}`,
    sizeBytes: a.sizeBytes,
    simulated: true,
  }),
  inverse: (a) => [{ kind: "lvm.remove", args: { volumeGroup: a.volumeGroup, name: a.name } }],
});

export const lvmRemove = defineOp<LvArgs>({
  kind: "lvm.remove",
  schema: LvArgs,
  pathArgs: [],
  describe: (a) => `Remove logical volume "${a.volumeGroup}/${a.name}" and its data`,
  estimate: () => ({ bytes: 0, seconds: 1 }),
  permission: (
    a,
  ) => [{ grant: "lvm", target: `${a.volumeGroup}/${a.name}` }, {
    grant: "run",
    program: "lvremove",
  }],
  capture: async (a, env) => ({ existingSize: await lvSize(env, a) }),
  conflicts: () => [],
  async execute(a, env, before) {
    if ((before as { existingSize: number | null }).existingSize === null) {
      return { removed: false };
    }
    await env.host.run(["lvremove", ...noDm(env), "-y", `${a.volumeGroup}/${a.name}`], {
      timeoutMs: 120_000,
    });
    return { removed: true };
  },
  simulate: (_a, before) => ({
    removed: (before as { existingSize: number | null }).existingSize !== null,
    simulated: true,
  }),
  // The volume's data is gone; recreating an empty volume would not undo that.
  inverse: (_a, before) =>
    (before as { existingSize: number | null }).existingSize === null ? [] : null,
});
