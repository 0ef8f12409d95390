/**
 * deploy: turns `session.vm_definition` into files and a running VM, all through
 * kernel ops (so `gini plan` shows exactly what `gini up` does), and stops and
 * removes the VMs it made.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { definePlugin, type StageContext, TARGET_VM, USER_VM_REQUEST } from "../../workers/sdk.ts";
import { LIBVIRT_XML, VM_DEFINITION, type VmDefinition } from "../qemu_setup/contracts.ts";
import { startScript } from "../qemu_setup/start_script.ts";
import { commands } from "./commands.ts";
import { REMOVED, STARTED, STOPPED, VMS, type VmSummary } from "./contracts.ts";

const definition = (ctx: StageContext) => ctx.get(VM_DEFINITION)!;

async function savedDefinition(ctx: StageContext): Promise<VmDefinition> {
  const { name } = ctx.get(TARGET_VM)!;
  try {
    return JSON.parse(
      await ctx.host.readText(`${ctx.dirs.data}/vms/${name}/vm.json`),
    ) as VmDefinition;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      const known = await ctx.host.readDir(`${ctx.dirs.data}/vms`).catch(() => [] as string[]);
      throw Object.assign(new Error(`Cannot find VM "${name}": Gini made no VM of that name`), {
        code: "USAGE",
        hint: known.length ? `VMs: ${known.join(", ")}` : 'Create one with "gini up vm.toml"',
      });
    }
    throw error;
  }
}

async function isRunning(ctx: StageContext, def: VmDefinition): Promise<boolean> {
  try {
    await ctx.op("qmp", { socket: def.paths.qmpSocket, command: "query-status", timeoutMs: 3000 });
    return true;
  } catch {
    return false;
  }
}

/** How to see, ask and force a VM's power-off, per backend. */
function powerControl(ctx: StageContext, def: VmDefinition) {
  if (def.backend === "libvirt") {
    const virsh = (...args: string[]) => ["virsh", "-c", def.libvirtUri, ...args];
    return {
      running: async () =>
        (await ctx.op<{ stdout: string }>("run", {
          argv: virsh("domstate", def.name),
          allowFailure: true,
        })).stdout.trim() === "running",
      shutdown: () => ctx.op("run", { argv: virsh("shutdown", def.name), allowFailure: true }),
      force: () => ctx.op("run", { argv: virsh("destroy", def.name) }),
    };
  }
  return {
    running: () => isRunning(ctx, def),
    shutdown: () => ctx.op("qmp", { socket: def.paths.qmpSocket, command: "system_powerdown" }),
    force: async () => {
      await ctx.op("qmp", { socket: def.paths.qmpSocket, command: "quit" });
      // "quit" answers before QEMU has exited; wait until its monitor is gone.
      for (let i = 0; i < 40 && !ctx.dryRun && await isRunning(ctx, def); i++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    },
  };
}

/** The VMs under `<data>/vms` (each folder's vm.json), by name, with their state. */
async function listVms(ctx: StageContext): Promise<VmSummary[]> {
  const root = `${ctx.dirs.data}/vms`;
  const names = await ctx.host.readDir(root).catch(() => [] as string[]);
  const vms: VmSummary[] = [];
  for (const name of names.sort((a, b) => a.localeCompare(b))) {
    let def: VmDefinition;
    try {
      def = JSON.parse(await ctx.host.readText(`${root}/${name}/vm.json`)) as VmDefinition;
    } catch {
      continue;
    }
    const running = await powerControl(ctx, def).running();
    const pid = running
      ? Number.parseInt(await ctx.host.readText(def.paths.pidFile).catch(() => ""), 10)
      : NaN;
    vms.push({
      name: def.name,
      state: running ? "running" : "stopped",
      pid: Number.isInteger(pid) && pid > 0 ? pid : null,
      accel: def.accel,
      vcpus: def.cpu.vcpus,
      memory: `${Math.round(def.memory.bytes / 1024 / 1024)} MiB`,
      backend: def.backend,
      dir: def.paths.dir,
      configFile: def.configFile,
    });
  }
  return vms;
}

/** Powers a VM off (ACPI, then forced after the timeout); says how it ended. */
async function powerDown(
  ctx: StageContext,
  def: VmDefinition,
): Promise<"not-running" | "acpi" | "quit"> {
  const { timeoutMs = 60_000 } = ctx.get(TARGET_VM)!;
  const vm = powerControl(ctx, def);
  if (!(await vm.running())) return "not-running";
  await vm.shutdown();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !ctx.dryRun) {
    if (!(await vm.running())) return "acpi";
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  ctx.ui.warn(`"${def.name}" did not power off within ${timeoutMs / 1000} s; stopping it`);
  await vm.force();
  return "quit";
}

export default definePlugin({
  commands,
  stages: {
    list: async (ctx) => {
      ctx.set(VMS, await listVms(ctx));
    },
    "create-disks": async (ctx) => {
      const def = definition(ctx);
      await ctx.op("fs.mkdir", { path: def.paths.dir });
      for (const disk of def.disks) {
        if (!disk.create) continue;
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
      if (def.firmware.type === "uefi") {
        // The host's template (found by env-check, a host path: under --host-root when given),
        // or one made for this VM in its folder (macOS: opencore:compile).
        const template = def.firmware.varsTemplate!;
        await ctx.op("fs.copy", {
          from: template.startsWith(`${def.paths.dir}/`) ? template : ctx.host.path(template),
          to: def.firmware.vars!,
          overwrite: false,
        });
      }
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
      await ctx.op("fs.write", {
        path: def.paths.startScript,
        content: startScript(def),
        mode: 0o755,
        overwrite: true,
      });
      await ctx.op("fs.write", {
        path: def.paths.domainXml,
        content: ctx.get(LIBVIRT_XML)!,
        overwrite: true,
      });
      await ctx.op("fs.write", {
        path: def.paths.definition,
        content: JSON.stringify(def, null, 2) + "\n",
        overwrite: true,
      });
    },
    start: async (ctx) => {
      const def = definition(ctx);
      if (def.backend === "libvirt") {
        await ctx.op("run", {
          argv: ["virsh", "-c", def.libvirtUri, "define", def.paths.domainXml],
          undo: [["virsh", "-c", def.libvirtUri, "undefine", def.name, "--nvram"]],
        });
        await ctx.op("run", {
          argv: ["virsh", "-c", def.libvirtUri, "start", def.name],
          undo: [["virsh", "-c", def.libvirtUri, "destroy", def.name]],
        });
        ctx.set(STARTED, { name: def.name, backend: "libvirt", uri: def.libvirtUri });
        return;
      }
      if (def.tpm.enabled) {
        await ctx.op("tpm.launch", {
          name: def.name,
          stateDir: def.tpm.stateDir!,
          socket: def.tpm.socket!,
          pidFile: join(def.paths.dir, "swtpm.pid"),
          logFile: join(def.paths.dir, "swtpm.log"),
        });
      }
      const started = await ctx.op<{ pid: number | null }>("qemu.launch", {
        name: def.name,
        argv: def.argv,
        pidFile: def.paths.pidFile,
        qmpSocket: def.paths.qmpSocket,
        serialLog: def.paths.serialLog,
      });
      ctx.set(STARTED, { name: def.name, backend: "qemu", pid: started.pid ?? null });
    },
    "power-down": async (ctx) => {
      const def = await savedDefinition(ctx);
      const how = await powerDown(ctx, def);
      ctx.set(STOPPED, { name: def.name, how });
      if (how !== "not-running") {
        await ctx.emit("on_post_vm_shutdown", {
          name: def.name,
          how,
          passthrough: def.passthrough,
        });
      }
    },
    remove: async (ctx) => {
      const def = await savedDefinition(ctx);
      if (def.backend === "qemu" && await isRunning(ctx, def)) {
        throw Object.assign(new Error(`Cannot remove VM "${def.name}": it is running`), {
          code: "USAGE",
          hint: `Stop it first: gini down ${def.name}`,
        });
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
