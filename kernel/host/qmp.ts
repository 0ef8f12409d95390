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
 * Several commands on one connection, one after another (a VM's status asks three queries; one
 * greeting and handshake instead of three): their results in order. The first error ends it.
 */
export async function qmpCommands(
  socket: string,
  commands: { command: string; args?: Record<string, unknown> | undefined }[],
  timeoutMs = 10_000,
): Promise<unknown[]> {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  const cancelTimer = deadline(timeoutMs, () => conn.close());
  const decoder = new TextDecoder();
  let buffer = "";
  const reader = conn.readable.getReader();
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
      const { value, done } = await reader.read();
      if (done) throw new Error(`QMP socket "${socket}" closed`);
      buffer += decoder.decode(value, { stream: true });
    }
  };
  const send = async (execute: string, a?: Record<string, unknown>) => {
    const writer = conn.writable.getWriter();
    await writer.write(
      new TextEncoder().encode(JSON.stringify({ execute, ...(a ? { arguments: a } : {}) }) + "\n"),
    );
    writer.releaseLock();
    const reply = await next();
    if ("error" in reply) {
      const error = reply.error as { class?: string; desc?: string };
      throw new Error(`QMP "${execute}" failed: ${error.class ?? "Error"}: ${error.desc ?? ""}`);
    }
    return reply.return;
  };
  try {
    await next(); // greeting
    await send("qmp_capabilities");
    const results: unknown[] = [];
    for (const { command, args } of commands) results.push(await send(command, args));
    return results;
  } finally {
    cancelTimer();
    reader.releaseLock();
    try {
      conn.close();
    } catch { /* closed by the timer or by QEMU quitting */ }
  }
}
