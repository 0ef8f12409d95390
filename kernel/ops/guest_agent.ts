/**
 * The QEMU guest agent of a VM, over its virtio-serial socket. `guest.exec` runs a command in
 * the guest (`guest-exec` with its output captured, then `guest-exec-status` until it exits) and
 * passes back its output and exit code: interactive, it runs only when the run has the terminal,
 * and prints the output there unless the run wants JSON. `guest.query` asks the agent something
 * that changes nothing (its network interfaces, its OS), and so also runs in a dry run.
 *
 * @module
 */
import { concatBytes, decodeBase64, encodeBase64 } from "../encoding.ts";
import { z } from "zod";
import { GiniError, UsageError } from "../errors.ts";
import { AgentSilentError, GuestAgent } from "../host/qga.ts";
import type { Json } from "../../workers/protocol.ts";
import { defineOp } from "./types.ts";

/** The agent commands that change nothing in the guest. */
export const AGENT_QUERIES = [
  "guest-ping",
  "guest-info",
  "guest-get-osinfo",
  "guest-get-host-name",
  "guest-get-time",
  "guest-get-timezone",
  "guest-get-users",
  "guest-network-get-interfaces",
] as const;

/** The agent of VM `name`, or an error that says why there is none. */
async function connect(name: string, socket: string, timeoutMs: number, doing: string) {
  try {
    return await GuestAgent.connect(socket, timeoutMs);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.ConnectionRefused) {
      throw new UsageError(
        `Cannot ${doing} in VM "${name}": nothing listens on its guest agent socket "${socket}"`,
        {
          hint:
            `Start it (gini start ${name}); a VM started before Gini gave it an agent channel gets one when it restarts (gini restart ${name})`,
        },
      );
    }
    if (error instanceof AgentSilentError) {
      throw new GiniError(
        "AGENT_SILENT",
        `Cannot ${doing} in VM "${name}": its guest agent did not answer within ${
          timeoutMs / 1000
        } s`,
        1,
        {
          hint:
            `The guest runs no QEMU guest agent, or is still booting: install and start qemu-guest-agent in it (Gini's cloud-init seed does on first boot), or use gini ssh ${name} or gini console ${name}`,
        },
      );
    }
    throw error;
  }
}

const GuestExecArgs = z.strictObject({
  name: z.string().min(1),
  socket: z.string().min(1),
  argv: z.array(z.string().max(64 * 1024)).min(1).max(10_000),
  /** How long the agent may take to answer at all. */
  timeoutMs: z.number().int().positive().max(600_000),
  /** Gini's standard input goes to the command (`gini exec -i`), read to its end first. */
  input: z.boolean().optional(),
});
type GuestExecArgs = z.infer<typeof GuestExecArgs>;

type ExecStatus = {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  "out-data"?: string;
  "err-data"?: string;
  "out-truncated"?: boolean;
  "err-truncated"?: boolean;
};

/** The most standard input `gini exec -i` passes (the agent takes it in one message). */
const MAX_INPUT = 16 * 1024 * 1024;

/** Gini's standard input, to its end. */
async function readInput(name: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of Deno.stdin.readable) {
    size += chunk.byteLength;
    if (size > MAX_INPUT) {
      throw new UsageError(
        `Cannot pass the input to VM "${name}": it is over ${MAX_INPUT / 1024 / 1024} MiB`,
        { hint: `Copy large files with scp through gini ssh's forward, or a shared disk` },
      );
    }
    parts.push(chunk);
  }
  return concatBytes(parts);
}

async function writeAll(w: { write(p: Uint8Array): Promise<number> }, bytes: Uint8Array) {
  let done = 0;
  while (done < bytes.length) done += await w.write(bytes.subarray(done));
}

export const guestExec = defineOp<GuestExecArgs>({
  kind: "guest.exec",
  schema: GuestExecArgs,
  pathArgs: ["socket"],
  describe: (a) =>
    `Run ${JSON.stringify(a.argv)} in VM "${a.name}" through its guest agent (${a.socket})`,
  estimate: () => ({ bytes: 0, seconds: 0 }),
  permission: (a) => [{ grant: "write", path: a.socket }],
  interactive: true,
  capture: () => Promise.resolve(null),
  conflicts: () => [],
  async execute(a, env) {
    const doing = `run "${a.argv[0]}"`;
    const input = a.input ? await readInput(a.name) : undefined;
    const agent = await connect(a.name, a.socket, a.timeoutMs, doing);
    try {
      const { pid } = await agent.call<{ pid: number }>("guest-exec", {
        path: a.argv[0],
        arg: a.argv.slice(1),
        "capture-output": true,
        ...(input ? { "input-data": encodeBase64(input) } : {}),
      }, a.timeoutMs).catch((error: Error) => {
        throw new GiniError(
          "GUEST_EXEC",
          `Cannot ${doing} in VM "${a.name}": ${error.message}`,
          1,
          {
            hint: "Name a program the guest has (a path, or a name on the agent's PATH)",
          },
        );
      });
      let status: ExecStatus;
      for (let wait = 20;; wait = Math.min(500, wait * 2)) {
        if (env.signal?.aborted) throw env.signal.reason;
        status = await agent.call<ExecStatus>("guest-exec-status", { pid }, a.timeoutMs);
        if (status.exited) break;
        await new Promise((r) => setTimeout(r, wait));
      }
      const out = decodeBase64(status["out-data"] ?? "");
      const err = decodeBase64(status["err-data"] ?? "");
      const exitCode = status.signal ? 128 + status.signal : status.exitcode ?? 0;
      const truncated = Boolean(status["out-truncated"] || status["err-truncated"]);
      if (env.terminal && !env.terminal.json) {
        await writeAll(Deno.stdout, out);
        await writeAll(Deno.stderr, err);
        return { name: a.name, pid, exitCode, truncated, printed: true };
      }
      const text = new TextDecoder();
      return {
        name: a.name,
        pid,
        exitCode,
        truncated,
        printed: false,
        stdout: text.decode(out),
        stderr: text.decode(err),
      };
    } finally {
      agent.close();
    }
  },
  simulate: (a) => ({ name: a.name, exitCode: null, simulated: true }),
  inverse: () => [],
});

const GuestQueryArgs = z.strictObject({
  name: z.string().min(1),
  socket: z.string().min(1),
  command: z.enum(AGENT_QUERIES),
  timeoutMs: z.number().int().positive().max(60_000),
});
type GuestQueryArgs = z.infer<typeof GuestQueryArgs>;

export const guestQuery = defineOp<GuestQueryArgs>({
  kind: "guest.query",
  schema: GuestQueryArgs,
  pathArgs: ["socket"],
  describe: (a) => `Ask the guest agent of VM "${a.name}" "${a.command}"`,
  estimate: () => ({ bytes: 0, seconds: 0.1 }),
  permission: (a) => [{ grant: "write", path: a.socket }],
  readOnly: () => true,
  capture: () => Promise.resolve(null),
  conflicts: () => [],
  async execute(a) {
    const agent = await connect(a.name, a.socket, a.timeoutMs, `ask "${a.command}"`);
    try {
      return await agent.call<Json>(a.command, undefined, a.timeoutMs);
    } finally {
      agent.close();
    }
  },
  simulate: () => ({ simulated: true }),
  inverse: () => [],
});
