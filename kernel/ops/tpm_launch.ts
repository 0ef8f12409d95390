/**
 * `tpm.launch`: starts the software TPM (swtpm) a VM's QEMU connects to, with its state in the
 * VM's folder. swtpm daemonizes itself and exits when QEMU, its client, quits; the inverse asks it
 * to stop if it is still running and removes what it created (the state too, if this op made it).
 *
 * @module
 */
import { z } from "zod";
import type { OpRequest } from "../../workers/protocol.ts";
import { defineOp } from "./types.ts";
import { runningPid } from "./qemu_launch.ts";

const TpmLaunchArgs = z.strictObject({
  name: z.string().min(1),
  stateDir: z.string().min(1),
  socket: z.string().min(1),
  pidFile: z.string().min(1),
  logFile: z.string().min(1),
});
type TpmLaunchArgs = z.infer<typeof TpmLaunchArgs>;

type TpmCapture = {
  stateExists: boolean;
  runningPid: number | null;
};

/** The pid in swtpm's pid file if that swtpm is alive, else null. */
function runningSwtpm(pidFile: string): Promise<number | null> {
  return runningPid(
    pidFile,
    (cmdline) => cmdline.startsWith("swtpm\0") || cmdline.includes("/swtpm\0"),
  );
}

export const tpmLaunch = defineOp<TpmLaunchArgs>({
  kind: "tpm.launch",
  schema: TpmLaunchArgs,
  pathArgs: ["stateDir", "socket", "pidFile", "logFile"],
  describe: (a) => `Start the TPM of VM "${a.name}" (swtpm, TPM 2.0; state ${a.stateDir})`,
  estimate: () => ({ bytes: 64 * 1024, seconds: 0.2 }),
  permission: (a) => [
    { grant: "run", program: "swtpm" },
    ...[a.stateDir, a.socket, a.pidFile, a.logFile].map((path) => ({
      grant: "write" as const,
      path,
    })),
  ],
  capture: async (a): Promise<TpmCapture> => ({
    stateExists: await Deno.lstat(a.stateDir).then(() => true, () => false),
    runningPid: await runningSwtpm(a.pidFile),
  }),
  conflicts: () => [],
  async execute(a, env, before) {
    // One left running (its QEMU never connected) serves the VM as well as a new one.
    const running = (before as TpmCapture).runningPid;
    if (running) return { name: a.name, pid: running, reused: true };
    await Deno.mkdir(a.stateDir, { recursive: true, mode: 0o700 });
    await Deno.remove(a.socket).catch(() => {});
    await env.host.run([
      "swtpm",
      "socket",
      "--tpm2",
      "--tpmstate",
      `dir=${a.stateDir}`,
      "--ctrl",
      `type=unixio,path=${a.socket}`,
      "--pid",
      `file=${a.pidFile}`,
      "--log",
      `file=${a.logFile}`,
      "--daemon",
    ], { timeoutMs: 30_000 });
    return { name: a.name, pid: await runningSwtpm(a.pidFile), reused: false };
  },
  simulate: (a) => ({ name: a.name, pid: null, simulated: true }),
  inverse: (a, before): OpRequest[] => {
    const { stateExists, runningPid } = before as TpmCapture;
    if (runningPid) return [];
    return [
      // Gone already if its QEMU quit; then there is nothing to stop.
      {
        kind: "run",
        args: { argv: ["swtpm_ioctl", "--unix", a.socket, "-s"], allowFailure: true },
      },
      ...[a.socket, a.pidFile, a.logFile].map((path) => ({
        kind: "fs.remove",
        args: { path, missingOk: true },
      })),
      ...(stateExists
        ? []
        : [{ kind: "fs.remove", args: { path: a.stateDir, recursive: true, missingOk: true } }]),
    ];
  },
});
