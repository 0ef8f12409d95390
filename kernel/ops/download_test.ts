import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../tests/_assert.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { PermissionDeniedError } from "../errors.ts";
import { HostRunner } from "../host/run.ts";
import { resolveStartupEnv } from "../paths.ts";
import type { Grants } from "./broker.ts";
import { DownloadError } from "./download.ts";
import { OpEngine } from "./engine.ts";

/** Deterministic content: byte i of a file of `size` bytes, produced in chunks. */
function* content(size: number, from = 0, chunk = 256 * 1024): Generator<Uint8Array> {
  for (let start = from; start < size; start += chunk) {
    const part = new Uint8Array(Math.min(chunk, size - start));
    for (let i = 0; i < part.length; i++) part[i] = ((start + i) * 31 + ((start + i) >> 9)) & 255;
    yield part;
  }
}

function sha(size: number): string {
  const hash = createHash("sha256");
  for (const part of content(size)) hash.update(part);
  return hash.digest("hex");
}

function stream(size: number, from: number, options: { cutAt?: number; corrupt?: boolean } = {}) {
  const parts = content(size, from);
  let sent = from;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = parts.next();
      if (next.done) return controller.close();
      let part = next.value;
      if (options.corrupt && sent === 0) part = part.map((b, i) => i === 10 ? b ^ 0xff : b);
      if (options.cutAt !== undefined && sent + part.length > options.cutAt) {
        controller.enqueue(part.subarray(0, options.cutAt - sent));
        return controller.error(new Error("connection cut"));
      }
      sent += part.length;
      controller.enqueue(part);
    },
  });
}

/** A real HTTP server on 127.0.0.1 with Range support and misbehaving paths. */
function startServer(size: number) {
  const requests: { path: string; range: string | null }[] = [];
  let cutOnce = true;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const url = new URL(req.url);
    const range = req.headers.get("range");
    requests.push({ path: url.pathname, range });
    const from = Number(range?.match(/^bytes=(\d+)-$/)?.[1] ?? 0);
    switch (url.pathname) {
      case "/file.bin":
      case "/cut.bin": {
        const cutAt = url.pathname === "/cut.bin" && cutOnce ? Math.floor(size / 2) : undefined;
        if (cutAt !== undefined) cutOnce = false;
        const headers = {
          "content-length": String(size - from),
          ...(from ? { "content-range": `bytes ${from}-${size - 1}/${size}` } : {}),
        };
        return new Response(stream(size, from, cutAt === undefined ? {} : { cutAt }), {
          status: from ? 206 : 200,
          headers,
        });
      }
      case "/norange.bin":
        return new Response(stream(size, 0), { headers: { "content-length": String(size) } });
      case "/corrupt.bin":
        return new Response(stream(size, 0, { corrupt: true }), {
          headers: { "content-length": String(size) },
        });
      default:
        return new Response("not found", { status: 404 });
    }
  });
  return { server, base: `http://127.0.0.1:${server.addr.port}`, requests };
}

async function setup() {
  const root = await Deno.makeTempDir({ prefix: "gini-download-" });
  const startup = resolveStartupEnv({ cacheDir: join(root, "cache") }, {
    HOME: root,
    PATH: Deno.env.get("PATH"),
  }, root);
  const grants: Grants = {
    plugin: "t",
    write: [],
    read: [],
    run: new Set(),
    lvm: false,
    download: ["127.0.0.1", "file"],
  };
  const engine = new OpEngine("live", { startup, host: new HostRunner(startup.path) });
  return { root, startup, grants, engine, cache: join(root, "cache/downloads") };
}

const SIZE = 3 * 1024 * 1024 + 12345;

Deno.test("download: a full transfer lands in the content-addressed cache, verified", async () => {
  const { server, base } = startServer(SIZE);
  try {
    const { grants, engine, cache } = await setup();
    const result = await engine.request(grants, "s", {
      kind: "download",
      args: { url: `${base}/file.bin`, sha256: sha(SIZE) },
    }) as {
      path: string;
      bytes: number;
    };
    assertEquals(result.path, join(cache, `sha256-${sha(SIZE)}`));
    assertEquals((await Deno.stat(result.path)).size, SIZE);
    const again = await engine.request(grants, "s", {
      kind: "download",
      args: { url: `${base}/file.bin`, sha256: sha(SIZE) },
    });
    assertEquals((again as { cached: boolean }).cached, true);
  } finally {
    await server.shutdown();
  }
});

Deno.test("download: a connection cut mid-way is resumed with Range and verified as a whole", async () => {
  const { server, base, requests } = startServer(SIZE);
  try {
    const { grants, engine } = await setup();
    const result = await engine.request(grants, "s", {
      kind: "download",
      args: { url: `${base}/cut.bin`, sha256: sha(SIZE) },
    });
    assertEquals((result as { bytes: number }).bytes, SIZE);
    assertEquals(requests.length, 2);
    assertEquals(requests[0]!.range, null);
    // It resumes from what actually arrived before the cut (at most half the file).
    const resumedAt = Number(requests[1]!.range?.match(/^bytes=(\d+)-$/)?.[1]);
    assert(resumedAt > 0 && resumedAt <= SIZE / 2, `resumed at ${requests[1]!.range}`);
  } finally {
    await server.shutdown();
  }
});

Deno.test("download: a server that ignores Range restarts the file from zero", async () => {
  const { server, base, requests } = startServer(SIZE);
  try {
    const { grants, engine, cache } = await setup();
    // An earlier, interrupted run left a partial file behind.
    await Deno.mkdir(join(cache, "partial"), { recursive: true });
    const partial = join(
      cache,
      "partial",
      `${createHash("sha256").update(`${base}/norange.bin`).digest("hex")}.part`,
    );
    await Deno.writeFile(partial, content(SIZE).next().value!);
    const result = await engine.request(grants, "s", {
      kind: "download",
      args: { url: `${base}/norange.bin`, sha256: sha(SIZE) },
    });
    assertEquals((result as { bytes: number }).bytes, SIZE);
    assertEquals(requests.at(-1)!.range, "bytes=262144-");
  } finally {
    await server.shutdown();
  }
});

Deno.test("download: a corrupted body is refused with URL, expected and actual hash, and nothing is cached", async () => {
  const { server, base } = startServer(SIZE);
  try {
    const { grants, engine, cache } = await setup();
    const error = await assertRejects(
      () =>
        engine.request(grants, "s", {
          kind: "download",
          args: { url: `${base}/corrupt.bin`, sha256: sha(SIZE) },
        }),
      DownloadError,
    );
    assertStringIncludes(error.message, `Cannot use "${base}/corrupt.bin": its sha256 is `);
    assertStringIncludes(error.message, `expected ${sha(SIZE)}`);
    assertEquals(await Array.fromAsync(Deno.readDir(join(cache, "partial"))), []);
    assertEquals((await Array.fromAsync(Deno.readDir(cache))).map((e) => e.name), ["partial"]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("download: a 404 fails at once with the URL; hosts outside the grant are refused", async () => {
  const { server, base, requests } = startServer(SIZE);
  try {
    const { grants, engine } = await setup();
    await assertRejects(
      () =>
        engine.request(grants, "s", { kind: "download", args: { url: `${base}/missing.qcow2` } }),
      DownloadError,
      `Cannot download "${base}/missing.qcow2": the server says 404`,
    );
    assertEquals(requests.length, 1, "a 404 is not retried");
    await assertRejects(
      () =>
        engine.request({ ...grants, download: ["cloud.debian.org"] }, "s", {
          kind: "download",
          args: { url: `${base}/file.bin` },
        }),
      PermissionDeniedError,
      '"127.0.0.1" is not in the plugin\'s download grant',
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("download: file:// URLs go through the same verified path", async () => {
  const { root, grants, engine } = await setup();
  const local = join(root, "local.img");
  const file = await Deno.open(local, { write: true, create: true });
  for (const part of content(SIZE)) await file.write(part);
  file.close();
  // The "file" download grant alone is not enough: the source needs a read grant too.
  await Deno.writeTextFile(join(root, "secret.txt"), "canary\n");
  await assertRejects(
    () =>
      engine.request({ ...grants, read: [join(root, "images")] }, "s", {
        kind: "download",
        args: { url: `file://${join(root, "secret.txt")}` },
      }),
    PermissionDeniedError,
    "outside the plugin's read grant",
  );
  assertEquals(await Array.fromAsync(Deno.readDir(join(root, "cache"))).catch(() => []), []);
  const result = await engine.request({ ...grants, read: [root] }, "s", {
    kind: "download",
    args: { url: `file://${local}`, sha256: sha(SIZE) },
  });
  assertEquals((result as { bytes: number }).bytes, SIZE);
});

Deno.test("download: memory stays flat for a file of several hundred MiB", async () => {
  const big = 320 * 1024 * 1024;
  const { server, base } = startServer(big);
  try {
    const { grants, engine } = await setup();
    const before = Deno.memoryUsage().rss;
    const result = await engine.request(grants, "s", {
      kind: "download",
      args: { url: `${base}/file.bin` },
    }) as { bytes: number; path: string };
    const grown = Deno.memoryUsage().rss - before;
    assertEquals(result.bytes, big);
    assert(
      grown < 96 * 1024 * 1024,
      `RSS grew by ${(grown / 1024 / 1024).toFixed(0)} MiB for a ${big / 1024 / 1024} MiB download`,
    );
    await Deno.remove(result.path);
  } finally {
    await server.shutdown();
  }
});

/**
 * A raw HTTP server on 127.0.0.1 for what Deno.serve cannot do on purpose: answer late, stop
 * sending mid-body, or send without end. Counts what it managed to send.
 */
function rawServer(behaviour: "silent" | "stall" | "endless", sent = 64 * 1024) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections: Deno.Conn[] = [];
  const stats = { requests: 0, bytesSent: 0, hungUp: 0 };
  const serve = async (conn: Deno.Conn) => {
    const buffer = new Uint8Array(4096);
    await conn.read(buffer);
    stats.requests++;
    if (behaviour === "stall") {
      const head = `HTTP/1.1 200 OK\r\ncontent-length: ${sent * 4}\r\n\r\n`;
      await conn.write(new TextEncoder().encode(head));
      await conn.write(new Uint8Array(sent).fill(7));
      stats.bytesSent += sent;
    } else if (behaviour === "endless") {
      await conn.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n"));
      const chunk = new Uint8Array(64 * 1024).fill(9);
      // Sends until the client hangs up: the write fails then.
      while (stats.bytesSent < 1024 ** 3) {
        stats.bytesSent += await conn.write(chunk);
      }
    }
    while ((await conn.read(buffer)) !== null) { /* ignore */ }
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      connections.push(conn);
      serve(conn).catch(() => {}).finally(() => stats.hungUp++);
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/image.qcow2`,
    stats,
    async close() {
      listener.close();
      for (const conn of connections) {
        try {
          conn.close();
        } catch { /* closed by the client */ }
      }
      await accepting;
    },
  };
}

function partialOf(cache: string, url: string): string {
  return join(cache, "partial", `${createHash("sha256").update(url).digest("hex")}.part`);
}

Deno.test("download: a server that stops sending mid-body fails at the idle timeout, naming the URL and the timeout", async () => {
  const server = rawServer("stall");
  try {
    const { grants, engine, cache } = await setup();
    const begun = performance.now();
    const error = await assertRejects(
      () =>
        engine.request(grants, "s", {
          kind: "download",
          args: { url: server.url, idleTimeoutMs: 300 },
        }),
      DownloadError,
    );
    assertStringIncludes(
      error.message,
      `Cannot download "${server.url}": no data arrived within the idle timeout of 300 ms (after 4 attempts)`,
    );
    assertEquals(server.stats.requests, 4, "each attempt asked again");
    assert(performance.now() - begun < 20_000);
    // What arrived is kept for the next run to resume, and nothing reached the cache.
    assertEquals((await Deno.stat(partialOf(cache, server.url))).size, 64 * 1024);
    assertEquals((await Array.fromAsync(Deno.readDir(cache))).map((e) => e.name), ["partial"]);
  } finally {
    await server.close();
  }
});

Deno.test("download: a server that never answers fails at the connect timeout", async () => {
  const server = rawServer("silent");
  try {
    const { grants, engine } = await setup();
    await assertRejects(
      () =>
        engine.request(grants, "s", {
          kind: "download",
          args: { url: server.url, connectTimeoutMs: 200 },
        }),
      DownloadError,
      `Cannot download "${server.url}": the server did not answer within the connect timeout of 200 ms`,
    );
  } finally {
    await server.close();
  }
});

Deno.test("download: a body longer than the expected size is cut off there and refused, nothing kept", async () => {
  const server = rawServer("endless");
  try {
    const { grants, engine, cache } = await setup();
    const expected = 1024 * 1024;
    const before = Deno.memoryUsage().rss;
    await assertRejects(
      () =>
        engine.request(grants, "s", {
          kind: "download",
          args: { url: server.url, sizeBytes: expected },
        }),
      DownloadError,
      `Cannot download "${server.url}": the server sends more than the expected ${expected} bytes`,
    );
    assertEquals(server.stats.requests, 1, "not retried");
    // The client stopped reading: the server could send no more than its socket buffers hold.
    assert(
      server.stats.bytesSent < 64 * 1024 * 1024,
      `the server sent ${server.stats.bytesSent} bytes`,
    );
    assert(Deno.memoryUsage().rss - before < 64 * 1024 * 1024);
    assertEquals(await Array.fromAsync(Deno.readDir(join(cache, "partial"))), []);
  } finally {
    await server.close();
  }
});

Deno.test("download: an op whose signal aborts stops the request and removes its partial file", async () => {
  const server = rawServer("stall");
  try {
    const { startup, cache } = await setup();
    const controller = new AbortController();
    const { downloadOp } = await import("./download.ts");
    const env = {
      startup,
      host: new HostRunner(startup.path),
      signal: controller.signal,
      report: (message: { type: string; phase?: string }) => {
        // Cancelled once the body has started to arrive.
        if (message.type === "progress" && message.phase === "start") {
          setTimeout(() => controller.abort(new Error("cancelled by the test")), 100);
        }
      },
    };
    await assertRejects(
      () => downloadOp.execute({ url: server.url }, env, { cached: false }),
      Error,
      "cancelled by the test",
    );
    assertEquals(await Array.fromAsync(Deno.readDir(join(cache, "partial"))), []);
    assertEquals(server.stats.requests, 1);
  } finally {
    await server.close();
  }
});

Deno.test("http.request: an answer longer than 64 KiB is refused as it arrives, not read whole", async () => {
  const server = rawServer("endless");
  try {
    const { grants, engine } = await setup();
    await assertRejects(
      () => engine.request(grants, "s", { kind: "http.request", args: { url: server.url } }),
      Error,
      `Cannot use the answer of "${server.url}": more than 65536 bytes`,
    );
    assert(
      server.stats.bytesSent < 64 * 1024 * 1024,
      `the server sent ${server.stats.bytesSent} bytes`,
    );
  } finally {
    await server.close();
  }
});
