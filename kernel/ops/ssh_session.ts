/**
 * `ssh.session`: waits for a VM's sshd behind its port forward (a TCP connect and the `SSH-`
 * banner, with a progress line), then hands the user's terminal to `ssh` and passes back its exit
 * code. The key is the user's own: the private key beside the `~/.ssh/*.pub` whose public key the
 * VM was given. Host keys are kept in the VM's own known_hosts (accepted on first use).
 * Interactive: it runs only when the run has the terminal; only plugins shipped with Gini may ask.
 *
 * @module
 */
import { join } from "../../workers/path.ts";
import { z } from "zod";
import { GiniError, InterruptedError } from "../errors.ts";
import { STOP_SIGNALS } from "../signals.ts";
import { bannerReady, handOver } from "../host/terminal.ts";
import { argvCheckNeed } from "./broker.ts";
import { defineOp } from "./types.ts";

const SshSessionArgs = z.strictObject({
  name: z.string().min(1),
  /** A port forward on this host: a VM's guest is reached through loopback only. */
  host: z.enum(["127.0.0.1", "::1", "localhost"]),
  port: z.number().int().min(1).max(65535),
  user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "expected a Linux user name"),
  /** The public keys the VM's user accepts (its cloud-init ssh_authorized_keys). */
  publicKeys: z.array(z.string().max(16 * 1024)).max(100),
  knownHosts: z.string().min(1),
  /** The command to run; none for a login shell. */
  command: z.array(z.string().max(64 * 1024)).max(10_000),
  /** How long to wait for sshd to answer. */
  waitMs: z.number().int().min(0).max(24 * 3600 * 1000),
});
type SshSessionArgs = z.infer<typeof SshSessionArgs>;

/** "ssh-ed25519 AAAA…" of a public key line, without its comment. */
const keyOf = (line: string) => line.trim().split(/\s+/).slice(0, 2).join(" ");

/** The private keys in `~/.ssh` whose public halves are among `publicKeys`. */
async function identities(home: string, publicKeys: string[]): Promise<string[]> {
  const wanted = new Set(publicKeys.map(keyOf));
  const found: string[] = [];
  try {
    for await (const entry of Deno.readDir(join(home, ".ssh"))) {
      if (!entry.name.endsWith(".pub")) continue;
      const pub = join(home, ".ssh", entry.name);
      const text = await Deno.readTextFile(pub).catch(() => "");
      const key = pub.slice(0, -".pub".length);
      if (wanted.has(keyOf(text)) && (await Deno.stat(key).catch(() => null))?.isFile) {
        found.push(key);
      }
    }
  } catch { /* no ~/.ssh: ssh's agent and defaults may still do */ }
  return found.sort();
}

/** The ssh command line (without the identities, which only execution looks up). */
export function sshArgv(a: SshSessionArgs, keys: string[] = []): string[] {
  return [
    "ssh",
    "-p",
    String(a.port),
    "-o",
    "StrictHostKeyChecking=accept-new",
    "-o",
    `UserKnownHostsFile=${a.knownHosts}`,
    // The file is the VM's own: hashing its one host name hides nothing.
    "-o",
    "HashKnownHosts=no",
    // "Permanently added … to the list of known hosts" on each first login is noise.
    "-o",
    "LogLevel=ERROR",
    ...(keys.length ? ["-o", "IdentitiesOnly=yes", ...keys.flatMap((k) => ["-i", k])] : []),
    `${a.user}@${a.host}`,
    ...(a.command.length ? ["--", ...a.command] : []),
  ];
}

export const sshSession = defineOp<SshSessionArgs>({
  kind: "ssh.session",
  schema: SshSessionArgs,
  pathArgs: ["knownHosts"],
  describe: (a) =>
    `Wait up to ${
      Math.round(a.waitMs / 1000)
    } s for sshd of VM "${a.name}" on ${a.host}:${a.port}, then run ${sshArgv(a).join(" ")}`,
  estimate: () => ({ bytes: 0, seconds: 0 }),
  // ssh runs with the user's keys and terminal: only a plugin shipped with Gini may ask for it.
  permission: (a) => [
    { grant: "run", program: "ssh" },
    argvCheckNeed({ program: "ssh", unchecked: "a session holds the user's keys and terminal" }),
    { grant: "write", path: a.knownHosts },
  ],
  interactive: true,
  capture: () => Promise.resolve(null),
  conflicts: () => [],
  async execute(a, env) {
    const where = `${a.host}:${a.port}`;
    const id = `ssh-wait-${a.name}`;
    const deadline = Date.now() + a.waitMs;
    let waiting = false;
    while (!(await bannerReady(a.host, a.port, "SSH-", 5000))) {
      if (env.signal?.aborted) throw env.signal.reason;
      if (!waiting) {
        waiting = true;
        env.report?.({
          type: "progress",
          phase: "start",
          id,
          label: `Waiting for sshd of VM "${a.name}" on ${where} (up to ${
            Math.round(a.waitMs / 1000)
          } s)`,
        });
      }
      if (Date.now() >= deadline) {
        throw new GiniError(
          "SSH_TIMEOUT",
          `Cannot reach sshd of VM "${a.name}" on ${where}: no SSH banner within ${
            Math.round(a.waitMs / 1000)
          } s`,
          1,
          {
            hint:
              `The guest may still be booting (wait longer with --timeout), or have no sshd; see its console: gini console ${a.name}`,
          },
        );
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (waiting) {
      env.report?.({
        type: "progress",
        phase: "complete",
        id,
        label: `sshd of VM "${a.name}" answers on ${where}`,
      });
    }
    const keys = await identities(env.startup.home, a.publicKeys);
    const ended = await handOver(
      env.host,
      sshArgv(a, keys),
      env.terminal?.env ?? {},
      env.signal,
    );
    if (ended.signal && ended.signal !== "SIGINT") {
      throw new InterruptedError(
        `The ssh session to VM "${a.name}" was stopped by ${ended.signal}`,
        {},
        STOP_SIGNALS[ended.signal],
      );
    }
    return { name: a.name, exitCode: ended.code, identities: keys };
  },
  simulate: (a) => ({ name: a.name, exitCode: null, simulated: true, argv: sshArgv(a) }),
  inverse: () => [],
});
