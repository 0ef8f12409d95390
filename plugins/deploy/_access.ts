/**
 * Getting into a VM: `gini console NAME` (its serial console), `gini ssh NAME [-- CMD…]` (ssh
 * through its port forward, as the user cloud-init made) and `gini exec NAME -- CMD…` (a command
 * through the QEMU guest agent); and the guest's addresses, which its agent reports.
 *
 * These are query commands whose one op is interactive (`console.attach`, `ssh.session`,
 * `guest.exec`): a session changes nothing on the host, so it holds no lock on Gini's state (a
 * `gini stop` from another terminal still works while a console is open) and leaves no journal
 * entry per login; the kernel hands the op the terminal only when the user did not ask for
 * `--dry-run`, which therefore still only says what would be done. A stage's time limit would
 * cut a session short: the manifest gives the stage a day.
 *
 * @module
 */
import {
  type CommandDefinition,
  type ContextKey,
  contextValue,
  type StageContext,
  type StageFn,
} from "../../workers/sdk.ts";
import type { Json } from "../../workers/protocol.ts";
import type { VmDefinition } from "../qemu_setup/contracts.ts";
import { powerControl, savedDefinition, target, VM_COMMAND } from "./_vm.ts";
import { usage } from "./_errors.ts";

/** `deploy.access`: what `gini console|ssh|exec` did, or in a dry run would do. */
export type AccessSession = {
  name: string;
  action: "console" | "ssh" | "exec";
  /** False when the session was only described (`--dry-run`). */
  ran: boolean;
  /** What it does: the op's own words. */
  description: string;
  /** The exit code of the command (ssh, exec); null for a console or when it did not run. */
  exitCode: number | null;
  /** How a console session ended: "detached", "closed" (the VM stopped), "input-ended". */
  end?: string;
  /** The command's output, when it was not printed (`--json`). */
  stdout?: string;
  stderr?: string;
  truncated?: boolean;
};
export const ACCESS: ContextKey<AccessSession> = "deploy.access";

type Flags = {
  lines?: number;
  timeout?: number;
  user?: string | null;
  input?: boolean;
  command?: string[];
};

/** The definition's sockets, refused for a VM made before they existed. */
function socketOf(def: VmDefinition, which: "serialSocket" | "agentSocket"): string {
  const socket = def.paths[which] as string | undefined;
  if (!socket) {
    throw usage(
      `Cannot reach VM "${def.name}" this way: it was made before Gini gave VMs a ${
        which === "serialSocket" ? "console socket" : "guest agent channel"
      }`,
      `Stop it, run "gini up ${def.configFile}" to bring its definition up to date, and start it again`,
    );
  }
  return socket;
}

/** The host end of the VM's forward to its port 22, on loopback. */
function sshForward(def: VmDefinition): { host: string; port: number } {
  const forward = def.nics.flatMap((n) => n.forwards).find((f) =>
    f.guest === 22 && f.protocol === "tcp"
  );
  if (!forward) {
    throw usage(
      `Cannot ssh to VM "${def.name}": it forwards no host port to its port 22`,
      `Add forwards = [{ host = 2222, guest = 22 }] to its [[network]] in ${def.configFile} and run gini up again, or use gini console ${def.name}`,
    );
  }
  const any = ["", "0.0.0.0"].includes(forward.address);
  const host = any ? "127.0.0.1" : forward.address === "::" ? "::1" : forward.address;
  if (!["127.0.0.1", "::1", "localhost"].includes(host)) {
    throw usage(
      `Cannot ssh to VM "${def.name}": its forward listens on ${forward.address}, not on loopback`,
      `Run ssh -p ${forward.host} USER@${forward.address} yourself`,
    );
  }
  return { host, port: forward.host };
}

/** The VM, running (a console also opens on a paused one). */
async function runningVm(ctx: StageContext, action: string): Promise<VmDefinition> {
  const { name } = target(ctx);
  const def = await savedDefinition(ctx, name);
  const state = await powerControl(ctx, def).state();
  if (state === "stopped" || (state === "paused" && action !== "console")) {
    throw usage(
      `Cannot ${
        action === "console" ? "open the console of" : `${action} into`
      } VM "${name}": it is ${state}`,
      state === "stopped" ? `Start it: gini start ${name}` : `Resume it: gini resume ${name}`,
    );
  }
  return def;
}

type OpResult = {
  simulated?: boolean;
  exitCode?: number | null;
  end?: string;
  stdout?: string;
  stderr?: string;
  truncated?: boolean;
};

/** The session's record, from the op's result. */
function session(
  def: VmDefinition,
  action: AccessSession["action"],
  description: string,
  result: OpResult,
): AccessSession {
  return {
    name: def.name,
    action,
    ran: !result.simulated,
    description,
    exitCode: result.exitCode ?? null,
    ...(result.end ? { end: result.end } : {}),
    ...(result.stdout !== undefined ? { stdout: result.stdout } : {}),
    ...(result.stderr !== undefined ? { stderr: result.stderr } : {}),
    ...(result.truncated ? { truncated: true } : {}),
  };
}

/** What each access command does, by its action. */
const ACTIONS: Record<
  AccessSession["action"],
  (ctx: StageContext, def: VmDefinition, flags: Flags) => Promise<AccessSession>
> = {
  console: async (ctx, def, flags) => {
    const args = {
      name: def.name,
      socket: socketOf(def, "serialSocket"),
      log: def.paths.serialLog,
      lines: flags.lines ?? 20,
    };
    const result = await ctx.op<OpResult & Json>("console.attach", args);
    return session(
      def,
      "console",
      `attach to the serial console ${args.socket} (detach with Ctrl-])`,
      result,
    );
  },
  ssh: async (ctx, def, flags) => {
    const { host, port } = sshForward(def);
    const user = flags.user ?? def.login?.user;
    if (!user) {
      throw usage(
        `Cannot ssh to VM "${def.name}": Gini does not know its user (it has no [linux] table)`,
        `Name the user: gini ssh ${def.name} --user NAME`,
      );
    }
    const args = {
      name: def.name,
      host,
      port,
      user,
      publicKeys: def.login?.authorizedKeys ?? [],
      knownHosts: `${def.paths.dir}/known_hosts`,
      command: flags.command ?? [],
      waitMs: (flags.timeout ?? 300) * 1000,
    };
    const result = await ctx.op<OpResult & { argv?: string[] } & Json>("ssh.session", args);
    const argv = result.argv?.join(" ") ?? `ssh -p ${port} ${user}@${host}`;
    return session(
      def,
      "ssh",
      `wait up to ${flags.timeout ?? 300} s for sshd on ${host}:${port}, then run ${argv}`,
      result,
    );
  },
  exec: async (ctx, def, flags) => {
    const argv = flags.command ?? [];
    if (!argv.length) {
      throw usage(
        `Cannot run a command in VM "${def.name}": none was given`,
        `Put it after --: gini exec ${def.name} -- uname -a`,
      );
    }
    const args = {
      name: def.name,
      socket: socketOf(def, "agentSocket"),
      argv,
      timeoutMs: (flags.timeout ?? 30) * 1000,
      ...(flags.input ? { input: true } : {}),
    };
    const result = await ctx.op<OpResult & Json>("guest.exec", args);
    return session(
      def,
      "exec",
      `run ${JSON.stringify(argv)} through the guest agent ${args.socket}`,
      result,
    );
  },
};

type AgentInterface = {
  name?: string;
  "ip-addresses"?: { "ip-address-type"?: string; "ip-address"?: string; prefix?: number }[];
};

/**
 * The guest's IP addresses as its agent reports them (`guest-network-get-interfaces`), loopback
 * and link-local ones left out, "eth0 10.0.2.15/24"; null when the VM has no agent channel or
 * its agent does not answer within `timeoutMs`. `chardevs` is QEMU's `query-chardev` answer,
 * when the caller has already asked it.
 */
export async function guestAddresses(
  ctx: StageContext,
  def: VmDefinition,
  timeoutMs = 2000,
  chardevs?: Json,
): Promise<string[] | null> {
  const socket = def.paths.agentSocket as string | undefined;
  if (!socket || def.backend !== "qemu") return null;
  try {
    // QEMU knows whether the guest opened its end of the channel: no agent, no wait.
    chardevs ??= await ctx.op<Json>("qmp", {
      socket: def.paths.qmpSocket,
      command: "query-chardev",
      timeoutMs: 3000,
    });
    const agent = Array.isArray(chardevs) &&
      (chardevs as { label?: string; "frontend-open"?: boolean }[]).find((c) => c.label === "qga0");
    if (!agent || !agent["frontend-open"]) return null;
    const reply = await ctx.op<Json>("guest.query", {
      name: def.name,
      socket,
      command: "guest-network-get-interfaces",
      timeoutMs,
    });
    if (!Array.isArray(reply)) return null;
    return (reply as AgentInterface[]).flatMap((i) =>
      (i["ip-addresses"] ?? []).flatMap((a) => {
        const ip = a["ip-address"];
        if (!ip || i.name === "lo" || /^(127\.|::1$|fe80:)/i.test(ip)) return [];
        return [`${i.name ?? "?"} ${ip}${a.prefix === undefined ? "" : `/${a.prefix}`}`];
      })
    );
  } catch {
    return null;
  }
}

/** The access stage, by stage name. */
export const accessStages: Record<string, StageFn> = {
  /** `gini console|ssh|exec NAME`. */
  access: async (ctx) => {
    const { action } = target(ctx);
    const command = ctx.get(VM_COMMAND)!;
    const flags = { ...command.flags, command: command.args.command } as Flags;
    const def = await runningVm(ctx, action);
    ctx.set(ACCESS, await ACTIONS[action as AccessSession["action"]](ctx, def, flags));
  },
};

/** The output of `gini console|ssh|exec`: in a dry run what would happen, else the exit code. */
function accessOutput(view: Parameters<CommandDefinition["render"]>[0]) {
  const s = contextValue(view, ACCESS)!;
  if (!s.ran) {
    return { text: `VM "${s.name}": gini would ${s.description}`, data: s };
  }
  // The session had the terminal: what it printed is all there is to say.
  return { text: "", data: s, exitCode: s.exitCode ?? 0 };
}

/** deploy's output for the access commands. */
export const accessCommands: Record<string, CommandDefinition> = {
  console: { render: accessOutput },
  ssh: { render: accessOutput },
  exec: { render: accessOutput },
};
