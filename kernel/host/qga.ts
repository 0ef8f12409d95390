/**
 * A minimal QEMU guest agent client over the VM's virtio-serial socket: `guest-sync-delimited`
 * first (the channel may hold a half-read reply of an earlier client, so the agent is resynced
 * with a 0xFF byte and a random id), then commands, one JSON object a line each way.
 *
 * @example
 * ```ts
 * const agent = await GuestAgent.connect("/vms/web/qga.sock", 10_000);
 * const interfaces = await agent.call("guest-network-get-interfaces");
 * agent.close();
 * ```
 *
 * @module
 */

/** The guest does not answer on its agent channel: no agent runs in it (yet). */
export class AgentSilentError extends Error {
  constructor(socket: string, timeoutMs: number) {
    super(`the guest agent on "${socket}" did not answer within ${timeoutMs / 1000} s`);
  }
}

/** An error the agent returned for a command. */
export class AgentCommandError extends Error {
  readonly errorClass: string;
  constructor(command: string, errorClass: string, desc: string) {
    super(`guest agent "${command}" failed: ${errorClass}: ${desc}`);
    this.errorClass = errorClass;
  }
}

const DELIMITER = 0xff;

/** One connection to a guest agent. */
export class GuestAgent {
  #conn: Deno.UnixConn;
  #buffer = new Uint8Array();
  #decoder = new TextDecoder();

  private constructor(conn: Deno.UnixConn) {
    this.#conn = conn;
  }

  /** Connects and syncs; throws {@linkcode AgentSilentError} when no agent answers in time. */
  static async connect(socket: string, timeoutMs: number): Promise<GuestAgent> {
    const conn = await Deno.connect({ transport: "unix", path: socket });
    const agent = new GuestAgent(conn);
    try {
      await agent.#sync(socket, timeoutMs);
      return agent;
    } catch (error) {
      agent.close();
      throw error;
    }
  }

  async #read(deadline: number): Promise<boolean> {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    const chunk = new Uint8Array(64 * 1024);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), left));
    try {
      const n = await Promise.race([this.#conn.read(chunk), timeout]);
      if (n === "timeout") return false;
      if (n === null) throw new Error("the guest agent's socket closed");
      const joined = new Uint8Array(this.#buffer.length + n);
      joined.set(this.#buffer);
      joined.set(chunk.subarray(0, n), this.#buffer.length);
      this.#buffer = joined;
      return true;
    } finally {
      clearTimeout(timer);
    }
  }

  async #send(execute: string, args?: Record<string, unknown>, prefix = false): Promise<void> {
    const text = JSON.stringify({ execute, ...(args ? { arguments: args } : {}) }) + "\n";
    const body = new TextEncoder().encode(text);
    const bytes = prefix ? new Uint8Array([DELIMITER, ...body]) : body;
    let done = 0;
    while (done < bytes.length) done += await this.#conn.write(bytes.subarray(done));
  }

  /** The next JSON line, or null when the deadline passes first. */
  async #line(deadline: number): Promise<Record<string, unknown> | null> {
    while (true) {
      const newline = this.#buffer.indexOf(0x0a);
      if (newline >= 0) {
        const line = this.#decoder.decode(this.#buffer.subarray(0, newline)).trim();
        this.#buffer = this.#buffer.subarray(newline + 1);
        if (!line) continue;
        try {
          return JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue; // a fragment of an earlier client's reply
        }
      }
      if (!(await this.#read(deadline))) return null;
    }
  }

  async #sync(socket: string, timeoutMs: number): Promise<void> {
    const id = crypto.getRandomValues(new Uint32Array(1))[0]! & 0x7fffffff;
    const deadline = Date.now() + timeoutMs;
    await this.#send("guest-sync-delimited", { id }, true);
    // The reply follows a 0xFF byte: whatever came before it is an earlier client's.
    while (true) {
      const at = this.#buffer.indexOf(DELIMITER);
      if (at >= 0) {
        this.#buffer = this.#buffer.subarray(at + 1);
        break;
      }
      this.#buffer = new Uint8Array();
      if (!(await this.#read(deadline))) throw new AgentSilentError(socket, timeoutMs);
    }
    while (true) {
      const reply = await this.#line(deadline);
      if (!reply) throw new AgentSilentError(socket, timeoutMs);
      if (reply.return === id) return;
    }
  }

  /** Runs one command and returns its `return` value. */
  async call<T = unknown>(
    execute: string,
    args?: Record<string, unknown>,
    timeoutMs = 30_000,
  ): Promise<T> {
    await this.#send(execute, args);
    const reply = await this.#line(Date.now() + timeoutMs);
    if (!reply) throw new Error(`guest agent "${execute}" did not answer within ${timeoutMs} ms`);
    if ("error" in reply) {
      const error = reply.error as { class?: string; desc?: string };
      throw new AgentCommandError(execute, error.class ?? "Error", error.desc ?? "");
    }
    return reply.return as T;
  }

  close(): void {
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }
}
