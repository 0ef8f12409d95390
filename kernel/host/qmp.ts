/**
 * A minimal QMP client over a unix socket: greeting, capabilities, one command.
 *
 * @module
 */
import { deadline } from "../../workers/timer.ts";

/** Sends one QMP command and returns its `return` value. */
export async function qmpCommand(
  socket: string,
  command: string,
  args: Record<string, unknown> | undefined,
  timeoutMs = 10_000,
): Promise<unknown> {
  return (await qmpCommands(socket, [{ command, args }], timeoutMs))[0];
}

/**
 * Several commands on one connection (a VM's status asks five queries; one greeting and handshake
 * instead of five): their results in order. Once QEMU has greeted, the handshake and every command
 * are written at once, and QEMU answers them one after another: one round trip. QEMU runs them
 * all even when one fails, so send together only commands that do not depend on each other
 * (queries); the first error is the one thrown.
 */
export async function qmpCommands(
  socket: string,
  commands: { command: string; args?: Record<string, unknown> | undefined }[],
  timeoutMs = 10_000,
): Promise<unknown[]> {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  const cancelTimer = deadline(timeoutMs, () => conn.close());
  const decoder = new TextDecoder();
  const chunk = new Uint8Array(64 * 1024);
  let buffer = "";
  const next = async (): Promise<Record<string, unknown>> => {
    for (;;) {
      const newline = buffer.indexOf("\n");
      if (newline >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (!line) continue;
        const message = JSON.parse(line) as Record<string, unknown>;
        if ("event" in message) continue;
        return message;
      }
      const read = await conn.read(chunk);
      if (read === null) throw new Error(`QMP socket "${socket}" closed`);
      buffer += decoder.decode(chunk.subarray(0, read), { stream: true });
    }
  };
  const sent = [{ command: "qmp_capabilities", args: undefined }, ...commands];
  const bytes = new TextEncoder().encode(
    sent.map(({ command, args }) =>
      JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }) + "\n"
    ).join(""),
  );
  try {
    // Nothing is written before QEMU's greeting: its monitor takes one client at a time, and a
    // client still waiting for its turn that gave up would leave its commands queued to run later.
    await next(); // greeting
    for (let written = 0; written < bytes.length;) {
      written += await conn.write(bytes.subarray(written));
    }
    const results: unknown[] = [];
    for (const { command } of sent) {
      const reply = await next();
      if ("error" in reply) {
        const error = reply.error as { class?: string; desc?: string };
        throw new Error(`QMP "${command}" failed: ${error.class ?? "Error"}: ${error.desc ?? ""}`);
      }
      results.push(reply.return);
    }
    return results.slice(1);
  } finally {
    cancelTimer();
    try {
      conn.close();
    } catch { /* closed by the timer or by QEMU quitting */ }
  }
}
