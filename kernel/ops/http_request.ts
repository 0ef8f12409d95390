/**
 * `http.request`: one small HTTP exchange with a server in the plugin's download grant (an API
 * such as the macOS recovery protocol's session and image lookup). The body is at most 64 KiB
 * each way; the answer carries the status, the `Set-Cookie` values and the text. It changes
 * nothing on the host, but it talks to the network, so a dry run only describes it.
 *
 * @module
 */
import { z } from "zod";
import { concatBytes } from "../encoding.ts";
import { GiniError } from "../errors.ts";
import { defineOp } from "./types.ts";

const LIMIT = 64 * 1024;

const HttpArgs = z.strictObject({
  url: z.string().url(),
  method: z.enum(["GET", "POST"]).default("GET"),
  headers: z.record(z.string().regex(/^[A-Za-z0-9-]+$/), z.string()).default({}),
  body: z.string().max(LIMIT).optional(),
  timeoutMs: z.number().int().positive().max(120_000).default(30_000),
  label: z.string().max(200).optional(),
});
type HttpArgs = z.infer<typeof HttpArgs>;

export const httpRequest = defineOp<HttpArgs>({
  kind: "http.request",
  schema: HttpArgs as z.ZodType<HttpArgs>,
  pathArgs: [],
  describe: (a) => a.label ?? `${a.method} ${a.url}`,
  estimate: () => ({ bytes: 0, seconds: 0.5 }),
  permission: (a) => [{ grant: "download", url: a.url }],
  capture: () => Promise.resolve(null),
  conflicts: () => [],
  async execute(a, env) {
    // Its own time limit, and the op's signal (a stage timeout, a stop signal) too.
    const signal = env.signal
      ? AbortSignal.any([AbortSignal.timeout(a.timeoutMs), env.signal])
      : AbortSignal.timeout(a.timeoutMs);
    let response: Response;
    try {
      response = await fetch(a.url, {
        method: a.method,
        headers: a.headers,
        ...(a.body === undefined ? {} : { body: a.body }),
        signal,
      });
    } catch (error) {
      throw new GiniError(
        "HTTP_FAILED",
        `Cannot reach "${a.url}": ${error instanceof Error ? error.message : error}`,
        1,
        { hint: "Check the network (and any mirror set in the configuration)" },
      );
    }
    const bytes = await readLimited(response, a.url);
    return {
      status: response.status,
      cookies: response.headers.getSetCookie(),
      text: new TextDecoder().decode(bytes),
    };
  },
  simulate: () => ({ status: 0, cookies: [], text: "", simulated: true }),
  inverse: () => [],
});

/** The body, read as it arrives and refused as soon as it passes the limit. */
async function readLimited(response: Response, url: string): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of response.body ?? []) {
      total += chunk.byteLength;
      if (total > LIMIT) {
        throw new GiniError(
          "HTTP_FAILED",
          `Cannot use the answer of "${url}": more than ${LIMIT} bytes`,
          1,
          { hint: "Use the download op for files" },
        );
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof GiniError) throw error;
    throw new GiniError(
      "HTTP_FAILED",
      `Cannot read the answer of "${url}": ${error instanceof Error ? error.message : error}`,
      1,
      { hint: "Check the network (and any mirror set in the configuration)" },
    );
  } finally {
    await response.body?.cancel().catch(() => {});
  }
  return concatBytes(chunks);
}
