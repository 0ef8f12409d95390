/**
 * deploy: turns `session.vm_definition` into files and a running VM, all through
 * kernel ops (so `gini plan` shows exactly what `gini up` does), and stops and
 * removes the VMs it made.
 *
 * @module
 */
import { dirname } from "../../workers/path.ts";
import {
  definePlugin,
  type StageContext,
  type StageFn,
  USER_VM_REQUEST,
} from "../../workers/sdk.ts";
import type { VmDefinition } from "../qemu_setup/contracts.ts";
import { LIBVIRT_XML, VM_DEFINITION } from "../qemu_setup/keys.ts";
import { commands } from "./commands.ts";
import { CONVERGE, type Converge, INSTALLED, REMOVED, STARTED, VMS } from "./contracts.ts";
import { changeLine, compare } from "./_converge.ts";
import { launch, lifecycleStages, listVms } from "./_lifecycle.ts";
import { accessStages } from "./_access.ts";
import { keepAttached } from "./_attached.ts";
import {
  findDefinition,
  hasSavedState,
  powerControl,
  reconcile,
  record,
  savedDefinition,
  target,
  writeDefinition,
} from "./_vm.ts";
import { own } from "./_files.ts";
import { usage } from "./_errors.ts";

const definition = (ctx: StageContext) => ctx.get(VM_DEFINITION)!;

/**
 * What `up` does to the VM: deploy it (new), start it (unchanged), or apply the changes from its
 * saved definition on the stopped VM; refuses a change that cannot be made in place, and any
 * change while it runs.
 */
async function converge(ctx: StageContext, def: VmDefinition): Promise<Converge> {
  const old = await findDefinition(ctx, def.name);
  if (!old) return { name: def.name, kind: "new", state: "stopped", changes: [] };
  const state = await powerControl(ctx, old).state();
  const changes = compare(old, def);
  const plan = changes.map(changeLine).join("\n");
  const refused = changes.filter((c) => c.how === "refuse");
  if (refused.length) {
    throw usage(
      `Cannot change VM "${def.name}" in place:\n${refused.map(changeLine).join("\n")}`,
      `Put those keys back in ${def.configFile}, or remove the VM (gini rm ${def.name}) and deploy it again`,
    );
  }
  if (changes.length && await hasSavedState(ctx, old)) {
    throw usage(
      `Cannot change VM "${def.name}": it has a saved state of the old settings:\n${plan}`,
      `Restore it (gini restore ${def.name}) and stop it (gini stop ${def.name}), then run gini up again`,
    );
  }
  if (changes.length && state !== "stopped") {
    throw usage(
      `Cannot change VM "${def.name}" while it is ${state}:\n${plan}`,
      `Stop it first (gini stop ${def.name}), then run gini up again`,
    );
  }
  return { name: def.name, kind: changes.length ? "changed" : "unchanged", state, changes };
}

/** Makes a new disk, or grows one that exists (undone by shrinking it back). */
async function makeDisks(ctx: StageContext, def: VmDefinition, plan: Converge) {
  const grown = new Map(
    plan.changes.filter((c) => c.how === "grow").map((c) => [c.key, c.from as number]),
  );
  const made = new Set(plan.changes.filter((c) => c.how === "create").map((c) => c.key));
  for (const disk of def.disks) {
    if (!disk.create) continue;
    const from = grown.get(`disks[${disk.id}].sizeBytes`);
    if (from !== undefined) {
      await ctx.op("run", {
        argv: ["qemu-img", "resize", "-f", disk.format, disk.path, String(disk.sizeBytes)],
        undo: [["qemu-img", "resize", "-f", disk.format, "--shrink", disk.path, String(from)]],
      });
      continue;
    }
    if (plan.kind !== "new" && !made.has(`disks[${disk.id}]`)) continue;
    if (disk.backend === "lvm") {
      await ctx.op("lvm.create", {
        volumeGroup: disk.volumeGroup!,
        name: disk.logicalVolume!,
        sizeBytes: disk.sizeBytes,
      });
      continue;
    }
    // An overlay of size 0 takes its backing image's size (known only once it exists).
    await ctx.op("image.create", {
      path: disk.path,
      format: disk.format,
      ...(disk.sizeBytes || !disk.backing ? { sizeBytes: disk.sizeBytes } : {}),
      ...(disk.backing ? { backing: disk.backing } : {}),
    });
  }
}

/**
 * The VM's UEFI variables, made once: qcow2 (`qemu-img convert`, undone by removing the file)
 * so that snapshots include them, or a raw copy (a libvirt older than 9.2.0). The source is the
 * host's template (found by env-check, a host path: under --host-root when given), one made for
 * this VM in its folder (macOS: opencore:compile), or, for a VM whose raw variables become qcow2,
 * its own raw variables, so the guest keeps its boot entries.
 */
async function makeVars(ctx: StageContext, def: VmDefinition, plan: Converge) {
  const vars = def.firmware.vars!;
  if (await own.stat(vars).catch(() => null)) return;
  const template = def.firmware.varsTemplate!;
  const before = plan.changes.find((c) => c.key === "firmware.vars")?.from;
  const ownVars = typeof before === "string" && before.startsWith(`${def.paths.dir}/`) &&
    await own.stat(before).catch(() => null);
  const from = ownVars
    ? before
    : template.startsWith(`${def.paths.dir}/`)
    ? template
    : ctx.host.path(template);
  if (def.firmware.varsFormat === "raw") {
    await ctx.op("fs.copy", { from, to: vars, overwrite: false });
    return;
  }
  await ctx.op("run", {
    argv: ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", from, vars],
    creates: [vars],
  });
}

/** A stage whose module is imported when it first runs. */
function later(load: () => Promise<StageFn | undefined>): StageFn {
  return async (ctx) => {
    const stage = await load();
    if (!stage) throw new Error("deploy: a stage's module does not define it");
    await stage(ctx);
  };
}

export default definePlugin({
  commands,
  on: { on_pre_vm_start: keepAttached },
  stages: {
    ...lifecycleStages,
    ...accessStages,
    // Loaded the first time one runs: a status or a start evaluates none of their code.
    snapshot: later(async () => (await import("./_snapshots.ts")).snapshotStages.snapshot),
    hotplug: later(async () => (await import("./_hotplug.ts")).hotplugStages.hotplug),
    migrate: later(async () => (await import("./_migrate.ts")).migrateStages.migrate),
    list: async (ctx) => {
      ctx.set(VMS, await listVms(ctx));
    },
    "create-disks": async (ctx) => {
      const def = definition(ctx);
      const plan = await converge(ctx, def);
      ctx.set(CONVERGE, plan);
      await ctx.op("fs.mkdir", { path: def.paths.dir });
      await makeDisks(ctx, def, plan);
      if (def.firmware.type === "uefi") await makeVars(ctx, def, plan);
    },
    "write-files": async (ctx) => {
      const def = definition(ctx);
      // A VM file made by the command (create-vm) is written here, so that it is in the plan
      // and undone with the rest when the deploy fails or is rolled back.
      const request = ctx.get(USER_VM_REQUEST)!;
      if (request.save) {
        await ctx.op("fs.mkdir", { path: dirname(request.file) });
        await ctx.op("fs.write", { path: request.file, content: request.text, overwrite: false });
      }
      await writeDefinition(ctx, def, ctx.get(LIBVIRT_XML)!);
      const plan = ctx.get(CONVERGE)!;
      if (plan.kind === "new") await record(ctx, def, "deployed", { file: def.configFile });
      if (plan.kind === "changed") {
        await record(ctx, def, "changed", {
          file: def.configFile,
          changes: plan.changes.map(({ key, from, to }) => ({ key, from, to })),
        });
      }
    },
    start: async (ctx) => {
      const def = definition(ctx);
      const plan = ctx.get(CONVERGE)!;
      if (plan.state !== "stopped") return;
      if (def.backend === "libvirt") {
        await ctx.op("run", {
          argv: ["virsh", "-c", def.libvirtUri, "define", def.paths.domainXml],
          // A domain that was defined before stays defined (with its old XML) when this is undone.
          ...(plan.kind === "new"
            ? { undo: [["virsh", "-c", def.libvirtUri, "undefine", def.name, "--nvram"]] }
            : {}),
        });
      }
      await reconcile(ctx, def, "stopped");
      // Where this boot's serial output begins: the settle run answers its boot prompt there.
      const serialFrom = def.install ? await (await import("./_install.ts")).serialEnd(def) : null;
      const started = await launch(ctx, def);
      ctx.set(STARTED, started);
      await record(ctx, def, "started", serialFrom === null ? null : { serialFrom });
      if (def.install && ctx.dryRun) {
        ctx.ui.info(
          `Would then see the installation through: answer "${def.install.prompt}", wait for "${def.install.done}", detach the media`,
        );
      }
    },
    install: async (ctx) => {
      const request = ctx.get(USER_VM_REQUEST)!;
      // Loaded here only: the VM file's schema is zod, which the other stages do not need.
      const { parseVmConfig } = await import("../qemu_setup/vm_schema.ts");
      const { name } = parseVmConfig(request.text, request.file);
      const def = await findDefinition(ctx, name);
      const { seeInstallThrough } = await import("./_install.ts");
      ctx.set(INSTALLED, def ? await seeInstallThrough(ctx, def) : null);
    },
    remove: async (ctx) => {
      const def = await savedDefinition(ctx, target(ctx).name);
      if (def.backend === "qemu" && await powerControl(ctx, def).running()) {
        throw usage(
          `Cannot remove VM "${def.name}": it is running`,
          `Stop it first: gini down ${def.name}`,
        );
      }
      if (def.backend === "libvirt") {
        await ctx.op("run", {
          argv: ["virsh", "-c", def.libvirtUri, "undefine", def.name, "--nvram"],
          allowFailure: true,
        });
      }
      for (const disk of def.disks) {
        if (disk.create && disk.backend === "lvm") {
          await ctx.op("lvm.remove", { volumeGroup: disk.volumeGroup!, name: disk.logicalVolume! });
        } else if (disk.create && disk.backend === "file" && !disk.path.startsWith(def.paths.dir)) {
          await ctx.op("fs.remove", { path: disk.path, missingOk: true });
        }
      }
      await ctx.op("fs.remove", { path: def.paths.dir, recursive: true });
      ctx.set(REMOVED, { name: def.name });
      await ctx.emit("on_cleanup", { name: def.name, passthrough: def.passthrough });
    },
  },
});
