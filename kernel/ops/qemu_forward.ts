/**
 * `qemu.forward`: adds or removes a host port forward of a running VM's user network (QEMU's
 * HMP `hostfwd_add` / `hostfwd_remove`, through QMP's `human-monitor-command`); each is the
 * other's inverse. Every part of the rule is checked to be a word, so nothing else reaches the
 * monitor's command line.
 *
 * @module
 */
import { z } from "zod";
import { ConflictError } from "../errors.ts";
import { qmpCommand } from "../host/qmp.ts";
import { defineOp } from "./types.ts";
import type { Json } from "../../workers/protocol.ts";

const ForwardArgs = z.strictObject({
  /** The VM's name, for messages. */
  name: z.string().min(1),
  socket: z.string().min(1),
  action: z.enum(["add", "remove"]),
  /** The user network's netdev id ("net0"). */
  netdev: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,31}$/),
  protocol: z.enum(["tcp", "udp"]),
  /** The host address it listens on. */
  address: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}$/, 'expected an IPv4 address like "127.0.0.1"'),
  host: z.number().int().min(1).max(65535),
  guest: z.number().int().min(1).max(65535),
  /** Succeed when the VM is not running (used when undoing). */
  ifRunning: z.boolean().optional(),
});
type ForwardArgs = z.infer<typeof ForwardArgs>;

const rule = (a: ForwardArgs) => `${a.protocol}:${a.address}:${a.host}`;

/** The HMP command line. */
export function hostfwdCommand(a: ForwardArgs): string {
  return a.action === "add"
    ? `hostfwd_add ${a.netdev} ${rule(a)}-:${a.guest}`
    : `hostfwd_remove ${a.netdev} ${rule(a)}`;
}

export const qemuForward = defineOp<ForwardArgs>({
  kind: "qemu.forward",
  schema: ForwardArgs,
  pathArgs: ["socket"],
  describe: (a) =>
    a.action === "add"
      ? `Forward ${a.protocol} ${a.address}:${a.host} to guest port ${a.guest} of running VM "${a.name}" (${a.netdev})`
      : `Stop forwarding ${a.protocol} ${a.address}:${a.host} to running VM "${a.name}" (${a.netdev})`,
  estimate: () => ({ bytes: 0, seconds: 0.1 }),
  permission: (a) => [{ grant: "write", path: a.socket }],
  capture: () => Promise.resolve(null),
  conflicts: () => [],
  async execute(a): Promise<Json> {
    let out: unknown;
    try {
      out = await qmpCommand(a.socket, "human-monitor-command", {
        "command-line": hostfwdCommand(a),
      }, 10_000);
    } catch (error) {
      const gone = error instanceof Deno.errors.NotFound ||
        error instanceof Deno.errors.ConnectionRefused;
      if (a.ifRunning && gone) return { notRunning: true };
      throw error;
    }
    // HMP answers nothing when a rule was added, "… removed" when one was removed, and says
    // why when it did neither.
    const said = typeof out === "string" ? out.trim() : "";
    const done = a.action === "add" ? said === "" : / removed$/.test(said);
    if (!done) {
      if (a.ifRunning) return { unchanged: said };
      throw new ConflictError(
        `Cannot ${a.action === "add" ? "add" : "remove"} forward ${
          rule(a)
        } of VM "${a.name}": QEMU says "${said}"`,
        {
          hint: a.action === "add"
            ? "Is the host port in use? Choose another one"
            : `See its forwards: gini forward ${a.name} list`,
        },
      );
    }
    return { rule: rule(a), guest: a.guest };
  },
  simulate: (a) => ({ rule: rule(a), guest: a.guest, simulated: true }),
  inverse: (a) => [{
    kind: "qemu.forward",
    args: { ...a, action: a.action === "add" ? "remove" : "add", ifRunning: true },
  }],
});
