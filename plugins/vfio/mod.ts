/**
 * vfio: prepares a host for PCI passthrough. `configure` chooses the device set
 * from the host report, then asks the kernel for every change as an op: the
 * modprobe.d options and softdeps, the initramfs and boot loader edits (each an
 * `fs.edit` carrying the hash of what it replaces, shown as a diff in the plan),
 * their rebuild commands, and with `bindNow` the sysfs writes that move the devices
 * to vfio-pci at once. A dry run of it is `gini vfio plan`; a live run, `apply`.
 * Lifecycle events go out around each part so other plugins can act or veto.
 *
 * @module
 */
import { definePlugin, type Json, sha256Hex, type StageContext } from "../../workers/sdk.ts";
import { ENVIRONMENT_DATA } from "../env_check/contracts.ts";
import { type BootPlan, type FileEdit, type Files, MARK, planBoot, vfioModules } from "./_boot.ts";
import { managedArgs, vfioKernelArgs } from "./_cmdline.ts";
import { type DeviceSet, selectDevices, type SetDevice, softdeps } from "./_devices.ts";
import { commands } from "./commands.ts";
import { vfioRequest } from "./_request.ts";
import { VFIO_PLAN, VFIO_STATUS, type VfioPlan, type VfioStatus } from "./contracts.ts";

const MODPROBE = "/etc/modprobe.d/gini-vfio.conf";

function hostFiles(ctx: StageContext): Files {
  return {
    read: (path) => ctx.host.readText(path).catch(() => null),
    list: (dir) => ctx.host.readDir(dir).catch(() => null),
  };
}

function modprobeConf(devices: SetDevice[], ids: string[]): string {
  return [
    MARK,
    ...devices.map((d) => `# ${d.address} ${d.name}`),
    `options vfio-pci ids=${ids.join(",")}`,
    ...softdeps(devices).map((m) => `softdep ${m} pre: vfio-pci`),
    "",
  ].join("\n");
}

/** Emits a lifecycle event; a reply `{ veto: "reason" }` stops the run. */
async function lifecycle(ctx: StageContext, event: string, payload: Json): Promise<void> {
  for (const reply of await ctx.emit(event, payload)) {
    const veto = (reply as { veto?: unknown } | null)?.veto;
    if (typeof veto === "string") {
      throw new Error(`A plugin stopped the VFIO configuration at ${event}: ${veto}`);
    }
  }
}

/** The initramfs and boot loader plans of a host. */
type HostBoot = { initramfs: BootPlan; bootloader: BootPlan };

/** The prefix that runs a command inside the host root. */
function chrootArgv(ctx: StageContext): string[] {
  return ctx.host.root === "/" ? [] : ["chroot", ctx.host.root];
}

/** Writes `e`, checking the file still holds what the plan read. */
async function applyEdit(ctx: StageContext, e: FileEdit): Promise<void> {
  if (e.mkdir) await ctx.op("fs.mkdir", { path: ctx.host.path(e.mkdir) });
  await ctx.op("fs.edit", {
    path: ctx.host.path(e.path),
    expectSha256: e.before === null ? "absent" : await sha256Hex(e.before),
    content: e.after,
  });
}

/** Runs a rebuild command inside the host root. */
async function rebuild(ctx: StageContext, argv: string[]): Promise<void> {
  await ctx.op("run", {
    argv: [...chrootArgv(ctx), ...argv],
    rebuild: true,
    timeoutMs: 30 * 60_000,
    estimateSeconds: 30,
  });
}

/** Binding at boot: modprobe.d, read by the initramfs and by udev. */
async function modprobeEdits(files: Files, set: DeviceSet): Promise<FileEdit[]> {
  const before = await files.read(MODPROBE);
  const after = modprobeConf(set.devices, set.ids);
  return before === after ? [] : [{
    path: MODPROBE,
    before,
    after,
    ...(await files.list("/etc/modprobe.d") === null ? { mkdir: "/etc/modprobe.d" } : {}),
  }];
}

/** The boot-time edits of a configuration, and which parts they make rebuild. */
interface BootChanges {
  boot: HostBoot;
  initramfsEdits: FileEdit[];
  bootEdits: FileEdit[];
  rebuildInitramfs: boolean;
  rebuildBoot: boolean;
}

function bootChanges(boot: HostBoot, modprobe: FileEdit[]): BootChanges {
  const initramfsEdits = [...modprobe, ...boot.initramfs.edits];
  const bootEdits = boot.bootloader.edits;
  // A host that builds UKIs reads /etc/kernel/cmdline when the initramfs generator runs.
  const ukiCmdline = boot.bootloader.name === "kernel-cmdline" &&
    boot.bootloader.commands.length === 0 && bootEdits.length > 0;
  return {
    boot,
    initramfsEdits,
    bootEdits,
    rebuildInitramfs: initramfsEdits.length > 0 || ukiCmdline,
    rebuildBoot: bootEdits.length > 0,
  };
}

/** Applies the edits, then the rebuilds, announcing each part so other plugins can act or veto. */
async function applyBootChanges(ctx: StageContext, c: BootChanges, set: DeviceSet): Promise<void> {
  const { boot, initramfsEdits, bootEdits } = c;
  const payload = (plan: BootPlan, edits: FileEdit[]) => ({
    name: plan.name,
    files: edits.map((e) => e.path),
    commands: plan.commands,
    devices: set.devices.map((d) => d.address),
  });
  if (initramfsEdits.length) {
    await lifecycle(ctx, "on_pre_initramfs_update", payload(boot.initramfs, initramfsEdits));
    for (const e of initramfsEdits) await applyEdit(ctx, e);
  }
  if (bootEdits.length) {
    await lifecycle(ctx, "on_pre_bootloader_update", payload(boot.bootloader, bootEdits));
    for (const e of bootEdits) await applyEdit(ctx, e);
  }
  if (c.rebuildInitramfs) {
    for (const argv of boot.initramfs.commands) await rebuild(ctx, argv);
    await ctx.emit("on_post_initramfs_update", payload(boot.initramfs, initramfsEdits));
  }
  if (c.rebuildBoot) {
    for (const argv of boot.bootloader.commands) await rebuild(ctx, argv);
    await ctx.emit("on_post_bootloader_update", payload(boot.bootloader, bootEdits));
  }
}

/** Binding now: unbind from the current driver, override, and let the kernel probe. */
async function bindNow(ctx: StageContext, files: Files, toBind: SetDevice[]): Promise<void> {
  if (!toBind.length) return;
  if ((await files.list("/sys/bus/pci/drivers/vfio-pci")) === null) {
    throw Object.assign(new Error("Cannot bind now: the vfio-pci driver is not loaded"), {
      hint: "Load it with modprobe vfio-pci, or reboot into the configuration instead",
    });
  }
  const addresses = toBind.map((d) => d.address);
  await lifecycle(ctx, "on_pre_vfio_bind", { devices: addresses });
  const sys = (path: string) => ctx.host.path(path);
  for (const d of toBind) {
    if (d.driver) {
      await ctx.op("sysfs.write", {
        path: sys(`/sys/bus/pci/drivers/${d.driver}/unbind`),
        value: d.address,
        undo: [{ path: sys(`/sys/bus/pci/drivers/${d.driver}/bind`), value: d.address }],
      });
    }
    await ctx.op("sysfs.write", {
      path: sys(`/sys/bus/pci/devices/${d.address}/driver_override`),
      value: "vfio-pci",
    });
    await ctx.op("sysfs.write", {
      path: sys("/sys/bus/pci/drivers_probe"),
      value: d.address,
      undo: [{ path: sys("/sys/bus/pci/drivers/vfio-pci/unbind"), value: d.address }],
    });
  }
  await ctx.emit("on_post_vfio_bind", { devices: addresses });
}

export default definePlugin({
  commands,
  stages: {
    async configure(ctx) {
      const report = ctx.get(ENVIRONMENT_DATA)!;
      const request = vfioRequest(ctx);
      const set = selectDevices(report, request.devices, request.force);
      const files = hostFiles(ctx);
      const modules = vfioModules(report.os.kernel);
      let kernelArgs: string[] = [];
      const boot = await planBoot(files, {
        kernel: report.os.kernel,
        modules,
        args: (dracut) => kernelArgs = vfioKernelArgs(report.cpu.vendor, set.ids, dracut),
      }, {
        ...(request.initramfs ? { initramfs: request.initramfs } : {}),
        ...(request.bootloader ? { bootloader: request.bootloader } : {}),
      });
      for (const w of set.warnings) ctx.ui.warn(w);
      for (const n of [...boot.initramfs.notes, ...boot.bootloader.notes]) ctx.ui.warn(n);

      const changes = bootChanges(boot, await modprobeEdits(files, set));
      await applyBootChanges(ctx, changes, set);
      const toBind = request.bindNow ? set.devices.filter((d) => d.driver !== "vfio-pci") : [];
      await bindNow(ctx, files, toBind);

      const chroot = chrootArgv(ctx);
      const plan: VfioPlan = {
        devices: set.devices,
        ids: set.ids,
        groups: set.groups,
        kernelArgs,
        initramfs: boot.initramfs.name,
        bootloader: boot.bootloader.name,
        files: [...changes.initramfsEdits, ...changes.bootEdits].map((e) => e.path),
        commands: [
          ...(changes.rebuildInitramfs ? boot.initramfs.commands : []),
          ...(changes.rebuildBoot ? boot.bootloader.commands : []),
        ].map((argv) => [...chroot, ...argv]),
        bindNow: toBind.map((d) => d.address),
        notes: [...boot.initramfs.notes, ...boot.bootloader.notes],
        warnings: set.warnings,
      };
      ctx.set(VFIO_PLAN, plan);
    },

    async status(ctx) {
      const report = ctx.get(ENVIRONMENT_DATA)!;
      const files = hostFiles(ctx);
      const notes: string[] = [];
      const modprobe = await files.read(MODPROBE);
      const ids = modprobe?.match(/^options vfio-pci ids=(\S+)/m)?.[1]?.split(",") ?? [];
      let configuredArgs: string[] = [];
      let names: { initramfs: string | null; bootloader: string | null } = {
        initramfs: null,
        bootloader: null,
      };
      try {
        const boot = await planBoot(files, {
          kernel: report.os.kernel,
          modules: [],
          args: () => [],
        }, {});
        names = { initramfs: boot.initramfs.name, bootloader: boot.bootloader.name };
        configuredArgs = managedArgs(boot.bootloader.cmdlines[0] ?? "");
      } catch (error) {
        notes.push(error instanceof Error ? error.message : String(error));
      }
      const running = managedArgs(report.os.cmdline);
      const status: VfioStatus = {
        bound: report.pci.filter((d) => d.driver === "vfio-pci").map((d) => ({
          address: d.address,
          name: [d.vendorName, d.deviceName].filter(Boolean).join(" "),
        })),
        configured: {
          ids,
          kernelArgs: configuredArgs,
          modprobeFile: modprobe === null ? null : MODPROBE,
          ...names,
        },
        running: { kernelArgs: running },
        rebootPending: configuredArgs.some((a) => !running.includes(a)) ||
          (ids.length > 0 && !report.pci.some((d) => d.driver === "vfio-pci")),
        notes,
      };
      ctx.set(VFIO_STATUS, status);
    },
  },
});
