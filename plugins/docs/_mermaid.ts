/**
 * The Mermaid renderer the HTML pages load: `dist/mermaid.min.js` of the `mermaid` npm package.
 * The kernel downloads the package's tarball from the npm registry into Gini's cache (pinned by
 * sha256, once); the worker reads it there (its one read grant) and takes the file out.
 *
 * @module
 */
import { Gunzip } from "fflate";

/** The pinned package: the tarball the npm registry serves for mermaid 12.3.0. */
export const MERMAID = {
  version: "12.3.0",
  url: "https://registry.npmjs.org/mermaid/-/mermaid-12.3.0.tgz",
  sha256: "be0684e8d20bfc874df12c0f04927a5c482f57f2200eec54cca52a4583fd4040",
  sizeBytes: 26_280_147,
  member: "package/dist/mermaid.min.js",
} as const;

function octal(bytes: Uint8Array): number {
  const s = new TextDecoder().decode(bytes).replace(/\0.*$/s, "").trim();
  return s ? parseInt(s, 8) : 0;
}

/**
 * One member of a gzipped tar file, read as a stream (the tarball is 26 MB, unpacked 120 MB);
 * null if the archive has no such member. A truncated archive throws.
 */
export async function tarMember(path: string, member: string): Promise<Uint8Array | null> {
  let buffered = new Uint8Array(0);
  let found: Uint8Array | null = null;
  let skip = 0;
  let want: { size: number; chunks: Uint8Array[]; got: number } | null = null;
  let done = false;
  const take = (data: Uint8Array) => {
    let chunk = data;
    while (chunk.length && !done) {
      if (skip) {
        const n = Math.min(skip, chunk.length);
        if (want) {
          want.chunks.push(chunk.slice(0, Math.min(n, want.size - want.got)));
          want.got += Math.min(n, want.size - want.got);
          if (want.got >= want.size) {
            const out = new Uint8Array(want.size);
            let at = 0;
            for (const c of want.chunks) {
              out.set(c, at);
              at += c.length;
            }
            found = out;
            done = true;
          }
        }
        skip -= n;
        chunk = chunk.subarray(n);
        continue;
      }
      const joined = new Uint8Array(buffered.length + chunk.length);
      joined.set(buffered);
      joined.set(chunk, buffered.length);
      if (joined.length < 512) {
        buffered = joined;
        return;
      }
      const head = joined.subarray(0, 512);
      buffered = new Uint8Array(0);
      chunk = joined.subarray(512);
      if (head.every((b) => b === 0)) continue;
      const name = new TextDecoder().decode(head.subarray(0, 100)).replace(/\0.*$/s, "");
      const prefix = new TextDecoder().decode(head.subarray(345, 500)).replace(/\0.*$/s, "");
      const full = prefix ? `${prefix}/${name}` : name;
      const size = octal(head.subarray(124, 136));
      skip = Math.ceil(size / 512) * 512;
      want = full === member && head[156] !== 0x35 ? { size, chunks: [], got: 0 } : null;
      if (want && size === 0) {
        found = new Uint8Array(0);
        done = true;
      }
    }
  };
  const gunzip = new Gunzip((data) => take(data));
  const file = await Deno.open(path);
  try {
    for await (const chunk of file.readable) {
      gunzip.push(chunk);
      if (done) break;
    }
    // The last push says the stream ended: Gunzip then inflates what it held back, and a
    // truncated archive is an error instead of a member silently missing or cut short.
    if (!done) gunzip.push(new Uint8Array(0), true);
  } finally {
    try {
      file.close();
    } catch { /* closed by the stream */ }
  }
  return found;
}
