/**
 * `qemu.launch`: starts a VM from its argv (QEMU daemonizes itself and writes a
 * pid file); the inverse stops it over QMP.
 *
 * @module
 */
import { arr, type Infer, obj, opt, str, zodLike } from "../../workers/shape.ts";
import { ConflictError } from "../errors.ts";
import { argvNeeds } from "./broker.ts";
import { defineOp } from "./types.ts";

// A shape, not zod: `gini start` pays for every module it loads (zod: 15-20 ms).
const QemuLaunchArgs = obj({
  name: str({ min: 1 }),
  argv: arr(str(), { min: 1 }),
  pidFile: str({ min: 1 }),
  qmpSocket: str({ min: 1 }),
  serialLog: str({ min: 1 }),
  /** The serial console's and the guest agent's sockets (VMs made before they existed have none). */
  sockets: opt(arr(str({ min: 1 }), { max: 8 })),
}, { strict: true });
type QemuLaunchArgs = Infer<typeof QemuLaunchArgs>;

/**
 * The pid in a pid file if that process is alive and `isIt` accepts its command line (NUL
 * separated, as in /proc), else null. By default: a QEMU.
 */
export async function runningPid(
  pidFile: string,
  isIt: (cmdline: string) => boolean = (cmdline) => cmdline.includes("qemu"),
): Promise<number | null> {
  try {
    const pid = Number((await Deno.readTextFile(pidFile)).trim());
    if (!Number.isInteger(pid) || pid <= 0) return null;
    const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
    return isIt(cmdline) ? pid : null;
  } catch {
    return null;
  }
}

export const qemuLaunch = defineOp<QemuLaunchArgs>({
  kind: "qemu.launch",
  schema: zodLike(QemuLaunchArgs),
  pathArgs: ["pidFile", "qmpSocket", "serialLog"],
  describe: (a) =>
    `Start VM "${a.name}" (${a.argv[0]}; QMP ${a.qmpSocket}, serial log ${a.serialLog})`,
  estimate: () => ({ bytes: 0, seconds: 2 }),
  // QEMU's command line names disks, firmware and scripts: a plugin shipped with Gini only.
  permission: (a) => [
    ...argvNeeds(a.argv),
    { grant: "write", path: a.pidFile },
    { grant: "write", path: a.qmpSocket },
    { grant: "write", path: a.serialLog },
    ...(a.sockets ?? []).map((path) => ({ grant: "write" as const, path })),
  ],
  capture: async (a) => ({ runningPid: await runningPid(a.pidFile) }),
  conflicts: (a, before) => {
    const pid = (before as { runningPid: number | null }).runningPid;
    return pid ? [`VM "${a.name}" is already running (pid ${pid})`] : [];
  },
  async execute(a, env, before) {
    const pid = (before as { runningPid: number | null }).runningPid;
    if (pid) {
      throw new ConflictError(`Cannot start VM "${a.name}": it is already running (pid ${pid})`, {
        hint: `Stop it with "gini down ${a.name}"`,
      });
    }
    for (const socket of [a.qmpSocket, ...(a.sockets ?? [])]) {
      await Deno.remove(socket).catch(() => {});
    }
    await env.host.run(a.argv, { timeoutMs: 60_000 });
    const started = await runningPid(a.pidFile);
    return { name: a.name, pid: started };
  },
  simulate: (a) => ({ name: a.name, pid: null, simulated: true }),
  // Stop the VM, then remove what QEMU created beside it.
  inverse: (a) => [
    { kind: "qmp", args: { socket: a.qmpSocket, command: "quit", ifRunning: true } },
    ...[a.pidFile, a.qmpSocket, a.serialLog, ...(a.sockets ?? [])].map((path) => ({
      kind: "fs.remove",
      args: { path, missingOk: true },
    })),
  ],
});
