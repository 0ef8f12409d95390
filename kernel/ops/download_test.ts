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
