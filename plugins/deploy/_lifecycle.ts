/**
 * A made VM's life by name: `gini start|stop|restart|kill|pause|resume|status|history NAME`, and
 * the `down` verb. Every change is an op (planned, journaled, undone on failure) and is recorded
 * in the VM's history; `status` is the history's replay checked against QEMU (or libvirt).
 *
 * @module
 */
import { join } from "../../workers/path.ts";
import type { StageContext, StageFn } from "../../workers/sdk.ts";
import type { Json } from "../../workers/protocol.ts";
import type { VmDefinition } from "../qemu_setup/contracts.ts";
import {
  HISTORY,
  POWER_CHANGE,
  type PowerChange,
  type Started,
  STATUS,
  type VmStatus,
  type VmSummary,
} from "./contracts.ts";
import {
  findDefinition,
  hasSavedState,
  MIGRATION_URI,
  powerControl,
  type PowerState,
  powerState,
  qemuPid,
  readHistory,
  reconcile,
  record,
  replay,
  savedDefinition,
  savedStateFile,
  target,
  VM_COMMAND,
} from "./_vm.ts";
import { guestAddresses } from "./_access.ts";
import { own } from "./_files.ts";
import { usage } from "./_errors.ts";

/**
 * Starts a VM from its definition (swtpm first when it has a TPM); says how. `incoming`: QEMU
 * waits for a saved state (`-incoming defer`) instead of booting.
 */
export async function launch(
  ctx: StageContext,
  def: VmDefinition,
  incoming = false,
): Promise<Started> {
  if (def.backend === "libvirt") {
    await ctx.op("run", {
      argv: ["virsh", "-c", def.libvirtUri, "start", def.name],
      undo: [["virsh", "-c", def.libvirtUri, "destroy", def.name]],
    });
    return { name: def.name, backend: "libvirt", uri: def.libvirtUri };
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
    argv: incoming ? [...def.argv, "-incoming", "defer"] : def.argv,
    pidFile: def.paths.pidFile,
    qmpSocket: def.paths.qmpSocket,
    serialLog: def.paths.serialLog,
    // The console's and the agent's (absent from definitions older than them).
    sockets: [def.paths.serialSocket, def.paths.agentSocket].filter(Boolean),
  });
  return { name: def.name, backend: "qemu", pid: started.pid ?? null };
}

/** Tells the plugins that handle it that the VM is off (vfio gives its devices back). */
async function shutDown(ctx: StageContext, def: VmDefinition, how: "acpi" | "quit") {
  await ctx.emit("on_post_vm_shutdown", { name: def.name, how, passthrough: def.passthrough });
}

/** Powers a VM off (ACPI, then forced after the timeout); says how it ended. */
export async function powerDown(
  ctx: StageContext,
  def: VmDefinition,
  timeoutMs: number,
): Promise<"not-running" | "acpi" | "quit"> {
  const vm = powerControl(ctx, def);
  const state = await vm.state();
  await reconcile(ctx, def, state);
  if (state === "stopped") return "not-running";
  // A crashed guest answers nothing: it is stopped at once.
  if (state === "crashed") {
    await vm.force();
    await record(ctx, def, "stopped", { how: "quit" });
    await shutDown(ctx, def, "quit");
    return "quit";
  }
  // A paused guest cannot answer the power button.
  if (state === "paused") await vm.resume();
  await vm.shutdown();
  const deadline = Date.now() + timeoutMs;
  let how: "acpi" | "quit" | null = null;
  while (Date.now() < deadline && !ctx.dryRun) {
    if (!(await vm.running())) {
      how = "acpi";
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  if (!how) {
    if (!ctx.dryRun) {
      ctx.ui.warn(`"${def.name}" did not power off within ${timeoutMs / 1000} s; stopping it`);
    }
    await vm.force();
    how = "quit";
  }
  await record(ctx, def, "stopped", { how });
  await shutDown(ctx, def, how);
  return how;
}

/** Brings a saved VM back: a QEMU waiting for its state, fed the file, resumed. */
async function restoreSaved(ctx: StageContext, def: VmDefinition) {
  if (def.backend === "libvirt") {
    // libvirt restores a domain's managed save when it starts it.
    await ctx.op("run", { argv: ["virsh", "-c", def.libvirtUri, "start", def.name] });
    await record(ctx, def, "restored");
    return { outcome: "restored" as const, pid: null };
  }
  const started = await launch(ctx, def, true);
  await ctx.op("qemu.restore", {
    name: def.name,
    qmpSocket: def.paths.qmpSocket,
    file: savedStateFile(def),
  });
  await record(ctx, def, "restored");
  return { outcome: "restored" as const, pid: started.pid ?? null };
}

/** Saves a running VM's memory and devices to a file, and stops it. */
async function saveRunning(ctx: StageContext, def: VmDefinition, state: PowerState) {
  await reconcile(ctx, def, state);
  if (state === "stopped") return { outcome: "not-running" as const };
  if (def.passthrough.length) {
    throw usage(
      `Cannot save VM "${def.name}": it has passthrough devices (${
        def.passthrough.map((p) => p.address).join(", ")
      }) whose state QEMU cannot save`,
      `Stop it instead: gini stop ${def.name}`,
    );
  }
  if (def.backend === "libvirt") {
    await ctx.op("run", { argv: ["virsh", "-c", def.libvirtUri, "managedsave", def.name] });
  } else {
    await ctx.op("qemu.save", {
      name: def.name,
      qmpSocket: def.paths.qmpSocket,
      file: savedStateFile(def),
    });
  }
  await record(ctx, def, "saved");
  return { outcome: "saved" as const };
}

/**
 * `gini start NAME --incoming URI`: a QEMU that waits at URI for the VM's state, which
 * `gini migrate NAME --to URI` sends from another host; it runs once the state has come.
 */
async function waitForState(ctx: StageContext, def: VmDefinition, uri: string) {
  if (def.backend === "libvirt") {
    throw usage(
      `Cannot start libvirt VM "${def.name}" --incoming: libvirt receives a migration itself`,
      `On the other host: gini migrate ${def.name} --to qemu+ssh://THIS-HOST/system`,
    );
  }
  if (!MIGRATION_URI.test(uri)) {
    throw usage(
      `Cannot start VM "${def.name}": --incoming "${uri}" is not a QEMU migration URI`,
      'Give "tcp:0.0.0.0:PORT" (any address) or "unix:/PATH", then on the other host: gini migrate NAME --to tcp:THIS-HOST:PORT',
    );
  }
  const started = await launch(ctx, def, true);
  await ctx.op("qmp", {
    socket: def.paths.qmpSocket,
    command: "migrate-incoming",
    arguments: { uri },
  });
  await record(ctx, def, "started", { incoming: uri });
  return { outcome: "waiting" as const, pid: started.pid ?? null };
}

/** Starts a stopped VM (from its saved state when it has one); says so when it runs already. */
async function startStopped(ctx: StageContext, def: VmDefinition, state: PowerState) {
  await reconcile(ctx, def, state);
  if (state !== "stopped") return { outcome: "already-running" as const };
  if (await hasSavedState(ctx, def)) return await restoreSaved(ctx, def);
  const incoming = ctx.get(VM_COMMAND)?.flags.incoming;
  if (typeof incoming === "string") return await waitForState(ctx, def, incoming);
  const started = await launch(ctx, def);
  await record(ctx, def, "started");
  return { outcome: "started" as const, pid: started.pid ?? null };
}

type Act = (
  ctx: StageContext,
  def: VmDefinition,
  state: PowerState,
  timeoutMs: number,
) => Promise<Pick<PowerChange, "outcome" | "pid">>;

/** What each lifecycle command does, by its action. */
const ACTIONS: Record<PowerChange["action"], Act> = {
  start: startStopped,
  save: saveRunning,
  restore: async (ctx, def, state) => {
    await reconcile(ctx, def, state);
    if (state !== "stopped") return { outcome: "already-running" };
    if (def.backend === "qemu" && !(await hasSavedState(ctx, def))) {
      throw usage(
        `Cannot restore VM "${def.name}": it has no saved state`,
        `Start it: gini start ${def.name} (gini save ${def.name} saves a running VM)`,
      );
    }
    return await restoreSaved(ctx, def);
  },
  stop: async (ctx, def, _state, timeoutMs) => {
    const how = await powerDown(ctx, def, timeoutMs);
    return {
      outcome: how === "not-running" ? "not-running" : how === "acpi" ? "powered-off" : "forced",
    };
  },
  restart: async (ctx, def, state, timeoutMs) => {
    if (state !== "stopped") await powerDown(ctx, def, timeoutMs);
    const started = await startStopped(ctx, def, "stopped");
    return { outcome: "restarted", pid: started.pid ?? null };
  },
  kill: async (ctx, def, state) => {
    await reconcile(ctx, def, state);
    if (state === "stopped") return { outcome: "not-running" };
    await powerControl(ctx, def).force();
    await record(ctx, def, "killed");
    await shutDown(ctx, def, "quit");
    return { outcome: "killed" };
  },
  pause: async (ctx, def, state) => {
    if (state !== "running") {
      return { outcome: state === "paused" ? "already-paused" : "not-running" };
    }
    await powerControl(ctx, def).pause();
    await record(ctx, def, "paused");
    return { outcome: "paused" };
  },
  resume: async (ctx, def, state) => {
    if (state !== "paused") {
      return { outcome: state === "running" ? "already-running" : "not-running" };
    }
    await powerControl(ctx, def).resume();
    await record(ctx, def, "resumed");
    return { outcome: "resumed" };
  },
};

/** What a crashed VM can do: be stopped (stop, kill) or booted again (restart). */
const CRASHED_ALLOWS = new Set(["stop", "kill", "restart"]);

/** The lifecycle stages, by stage name. */
export const lifecycleStages: Record<string, StageFn> = {
  /** `gini start|stop|restart|kill|pause|resume NAME`, and the `down` verb (stop). */
  power: async (ctx) => {
    const { name, timeoutMs, action } = target(ctx);
    const def = await savedDefinition(ctx, name);
    const state = await powerControl(ctx, def).state();
    // Refused before anything is recorded: the crash goes in the history with the next change.
    if (state === "crashed" && !CRASHED_ALLOWS.has(action)) {
      throw usage(
        `Cannot ${action} VM "${name}": it crashed (its kernel panicked); QEMU keeps it paused, memory and all`,
        `Boot it again with gini restart ${name}, or stop it with gini kill ${name} (gini console ${name} shows its last words)`,
      );
    }
    const done = await ACTIONS[action as PowerChange["action"]](ctx, def, state, timeoutMs);
    ctx.set(POWER_CHANGE, {
      name,
      action: action as PowerChange["action"],
      before: state,
      ...done,
    });
  },
  status: async (ctx) => {
    const { name } = target(ctx);
    ctx.set(STATUS, await vmStatus(ctx, await savedDefinition(ctx, name)));
  },
  history: async (ctx) => {
    const { name } = target(ctx);
    const def = await savedDefinition(ctx, name);
    const log = await readHistory(ctx, def);
    ctx.set(HISTORY, {
      name,
      records: log.records.map(({ seq, at, event, detail }) => ({ seq, at, event, detail })),
      broken: log.broken,
    });
  },
};

type BlockInfo = {
  device?: string;
  qdev?: string;
  inserted?: { file?: string; image?: { "actual-size"?: number; "virtual-size"?: number } };
};

/** A VM's status: its history's replay, checked against what QEMU (or libvirt) says now. */
export async function vmStatus(ctx: StageContext, def: VmDefinition): Promise<VmStatus> {
  // QEMU's state and the four queries go on one connection (its monitor takes one client at a
  // time, and each connection costs a greeting and a handshake), while the history is read.
  const queries = ["query-cpus-fast", "query-memory-size-summary", "query-block", "query-chardev"];
  let gone = false;
  const [log, together] = await Promise.all([
    readHistory(ctx, def),
    def.backend === "qemu"
      ? ctx.op<Json[]>("qmp", {
        socket: def.paths.qmpSocket,
        command: "query-status",
        queries,
        timeoutMs: 3000,
      }).catch((error) => {
        // No monitor to connect to: QEMU is not running.
        gone = error instanceof Deno.errors.NotFound ||
          error instanceof Deno.errors.ConnectionRefused;
        return null;
      })
      : null,
  ]);
  const batched = Array.isArray(together) && together.length === queries.length + 1;
  // Else the VM is stopped, libvirt's, or its QEMU lacks one of the queries (an older one): the
  // state on its own, then each query alone, so that only the one QEMU lacks is missing.
  const state = batched
    ? powerState((together[0] as { status?: string } | null)?.status ?? "running")
    : gone
    ? "stopped"
    : await powerControl(ctx, def).state();
  const replayed = replay(log.records);
  const live = def.backend === "qemu" && state !== "stopped";
  const qmp = (command: string) =>
    live
      ? ctx.op<Json>("qmp", { socket: def.paths.qmpSocket, command, timeoutMs: 3000 })
        .catch(() => null)
      : Promise.resolve(null);
  const asked: (Json | null)[] = batched ? together.slice(1) : [];
  for (const query of batched ? [] : queries.slice(0, 3)) asked.push(await qmp(query));
  const cpus = asked[0] as unknown[] | null;
  const memory = asked[1] as { "base-memory"?: number } | null;
  const blocks = asked[2] as BlockInfo[] | null;
  // After those: QEMU's monitor takes one client at a time, and turns away a crowd.
  const addresses = state === "running"
    ? await guestAddresses(ctx, def, undefined, asked[3] ?? undefined)
    : null;
  const disks = await Promise.all(def.disks.map(async (disk) => {
    const live = (blocks ?? []).find((b) => b.device === disk.id || b.qdev === disk.id)?.inserted
      ?.image;
    const file = live
      ? null
      : await (disk.path.startsWith(`${def.paths.dir}/`)
        ? own.stat(disk.path)
        : ctx.host.stat(disk.path))
        .catch(() => null);
    return {
      id: disk.id,
      path: disk.path,
      format: disk.format,
      virtualBytes: live?.["virtual-size"] ?? disk.sizeBytes,
      allocatedBytes: live?.["actual-size"] ?? file?.size ?? null,
      readonly: disk.readonly || disk.cdrom,
    };
  }));
  return {
    name: def.name,
    state,
    backend: def.backend,
    pid: await qemuPid(def, state),
    since: state === "stopped" ? null : replayed.since,
    vcpus: Array.isArray(cpus) ? cpus.length : def.cpu.vcpus,
    memoryBytes: memory?.["base-memory"] ?? def.memory.bytes,
    accel: def.accel,
    disks,
    forwards: def.nics.flatMap((n) =>
      n.forwards.map((f) => ({
        protocol: f.protocol,
        address: f.address,
        host: f.host,
        guest: f.guest,
      }))
    ),
    display: def.display.type === "vnc"
      ? `vnc://127.0.0.1:${5900 + (def.display.port ?? 0)}`
      : def.display.type === "spice"
      ? `spice://127.0.0.1:${def.display.port ?? 5930}`
      : null,
    serialLog: def.paths.serialLog,
    qmpSocket: def.backend === "qemu" ? def.paths.qmpSocket : null,
    addresses,
    savedState: state === "stopped" && await hasSavedState(ctx, def) ? savedStateFile(def) : null,
    // The history says it runs, QEMU says it does not: it ended without Gini.
    unrecordedExit: state === "stopped" && replayed.running,
    historyBroken: log.broken,
    configFile: def.configFile,
  };
}

/** The VMs under `<data>/vms` (each folder's vm.json), by name, with their state and ports. */
export async function listVms(ctx: StageContext): Promise<VmSummary[]> {
  const root = `${ctx.dirs.data}/vms`;
  const names = (await own.readDir(root).catch(() => [] as string[]))
    .sort((a, b) => a.localeCompare(b));
  const found = await Promise.all(names.map(async (name) => {
    const def = await findDefinition(ctx, name).catch(() => null);
    if (!def) return null;
    const state = await powerControl(ctx, def).state();
    const forwards = def.nics.flatMap((n) => n.forwards);
    const ssh = forwards.find((f) => f.guest === 22 && f.protocol === "tcp");
    return {
      name: def.name,
      state,
      pid: await qemuPid(def, state),
      accel: def.accel,
      vcpus: def.cpu.vcpus,
      memory: `${Math.round(def.memory.bytes / 1024 / 1024)} MiB`,
      backend: def.backend,
      ports: forwards.map((f) => `${f.address}:${f.host}->${f.guest}/${f.protocol}`),
      ssh: ssh ? `gini ssh ${def.name}` : null,
      dir: def.paths.dir,
      configFile: def.configFile,
    } as VmSummary;
  }));
  return found.filter((v) => v !== null);
}
