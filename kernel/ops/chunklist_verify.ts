/**
 * `chunklist.verify`: checks an image against an Apple chunklist (the CNKL format macOS recovery
 * images come with): the header, each chunk's size and SHA-256 read from the image in order,
 * nothing left over, and the RSA-2048 signature (PKCS#1 v1.5, SHA-256 of header and chunk
 * table, stored little-endian) against one of the given public keys (moduli, hex; e = 65537).
 * The image is streamed, never held in memory. Nothing changes on the host.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { GiniError } from "../errors.ts";
import { defineOp, formatBytes } from "./types.ts";

const VerifyArgs = z.strictObject({
  image: z.string().min(1),
  chunklist: z.string().min(1),
  /** RSA moduli (hex) the signature may verify with. */
  keys: z.array(z.string().regex(/^[0-9A-Fa-f]{256,1024}$/)).min(1),
});
type VerifyArgs = z.infer<typeof VerifyArgs>;

/** A chunklist that does not match, with what is wrong. */
export class ChunklistError extends GiniError {
  constructor(message: string, hint: string) {
    super("CHUNKLIST_MISMATCH", message, 1, { hint });
  }
}

/** The largest chunklist read (one 36-byte entry per 10 MiB: 16 MiB covers 4.5 TiB). */
const CHUNKLIST_LIMIT = 16 * 1024 * 1024;
const HEADER = 0x24;
const CHUNK = 0x24;
// DigestInfo of SHA-256 (RFC 8017, 9.2 note 1).
const DIGEST_INFO = "3031300d060960864801650304020105000420";

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  base %= modulus;
  while (exponent > 0n) {
    if (exponent & 1n) result = (result * base) % modulus;
    base = (base * base) % modulus;
    exponent >>= 1n;
  }
  return result;
}

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** The parsed chunk table and whether its signature verifies with one of `keys`. */
export function parseChunklist(
  data: Uint8Array,
  keys: string[],
): { chunks: { size: number; sha256: string }[]; signed: boolean } {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const bad = (why: string) =>
    new ChunklistError(`Cannot use the chunklist: ${why}`, "Download it again; it may be damaged");
  if (data.byteLength < HEADER || new TextDecoder().decode(data.subarray(0, 4)) !== "CNKL") {
    throw bad("it does not start with CNKL");
  }
  const headerSize = view.getUint32(4, true);
  const [version, chunkMethod, signatureMethod] = [data[8], data[9], data[10]];
  const count = Number(view.getBigUint64(12, true));
  const chunkOffset = Number(view.getBigUint64(20, true));
  const signatureOffset = Number(view.getBigUint64(28, true));
  if (headerSize !== HEADER || version !== 1 || chunkMethod !== 1) throw bad("unknown version");
  if (chunkOffset !== HEADER || signatureOffset !== HEADER + CHUNK * count || count === 0) {
    throw bad("its chunk table is inconsistent");
  }
  if (signatureMethod !== 1) throw bad(`signature method ${signatureMethod} is not RSA-2048`);
  if (data.byteLength !== signatureOffset + 256) throw bad("its signature is missing or too long");
  const chunks = [];
  for (let i = 0; i < count; i++) {
    const at = HEADER + i * CHUNK;
    chunks.push({
      size: view.getUint32(at, true),
      sha256: hex(data.subarray(at + 4, at + CHUNK)),
    });
  }
  const digest = createHash("sha256").update(data.subarray(0, signatureOffset)).digest("hex");
  const signature = BigInt(`0x${hex(data.subarray(signatureOffset).slice().reverse())}`);
  const signed = keys.some((key) => {
    const modulus = BigInt(`0x${key}`);
    const bytes = key.length / 2;
    const tail = `00${DIGEST_INFO}${digest}`;
    const expected = `0001${"ff".repeat(bytes - 3 - tail.length / 2 + 1)}${tail}`;
    return modPow(signature, 65537n, modulus).toString(16).padStart(bytes * 2, "0") ===
      expected.padStart(bytes * 2, "0");
  });
  return { chunks, signed };
}

export const chunklistVerify = defineOp<VerifyArgs>({
  kind: "chunklist.verify",
  schema: VerifyArgs,
  pathArgs: ["image", "chunklist"],
  describe: (a) => `Verify "${a.image}" against its signed chunklist`,
  estimate: () => ({ bytes: 0, seconds: 2 }),
  permission: (a) => [{ grant: "read", path: a.image }, { grant: "read", path: a.chunklist }],
  capture: () => Promise.resolve(null),
  conflicts: () => [],
  async execute(a) {
    // A chunklist lists one 36-byte entry per 10 MiB chunk: a few KiB for a recovery image.
    const size = (await Deno.stat(a.chunklist)).size;
    if (size > CHUNKLIST_LIMIT) {
      throw new ChunklistError(
        `Cannot verify "${a.image}": its chunklist "${a.chunklist}" is ${size} bytes, more than ${CHUNKLIST_LIMIT}`,
        "Delete both files and download them again",
      );
    }
    const { chunks, signed } = parseChunklist(await Deno.readFile(a.chunklist), a.keys);
    if (!signed) {
      throw new ChunklistError(
        `Cannot trust "${a.chunklist}": its signature does not verify with Apple's key`,
        "The chunklist was altered or is not Apple's; nothing was converted. Download it again",
      );
    }
    const file = await Deno.open(a.image, { read: true });
    try {
      const buffer = new Uint8Array(1024 * 1024);
      for (const [i, chunk] of chunks.entries()) {
        const hash = createHash("sha256");
        let left = chunk.size;
        while (left > 0) {
          const n = await file.read(buffer.subarray(0, Math.min(left, buffer.byteLength)));
          if (n === null) {
            throw new ChunklistError(
              `Cannot use "${a.image}": it ends inside chunk ${i + 1} of ${chunks.length}`,
              "The download is incomplete; run the command again to resume it",
            );
          }
          hash.update(buffer.subarray(0, n));
          left -= n;
        }
        if (hash.digest("hex") !== chunk.sha256) {
          throw new ChunklistError(
            `Cannot use "${a.image}": chunk ${i + 1} of ${chunks.length} (${
              formatBytes(chunk.size)
            }) does not match its SHA-256 in the chunklist`,
            "The image was corrupted; remove it from the cache and download it again",
          );
        }
      }
      if ((await file.read(buffer.subarray(0, 1))) !== null) {
        throw new ChunklistError(
          `Cannot use "${a.image}": it is longer than its chunklist says`,
          "Remove it from the cache and download it again",
        );
      }
    } finally {
      file.close();
    }
    return { image: a.image, chunks: chunks.length, verified: true };
  },
  simulate: (a) => ({ image: a.image, chunks: 0, verified: true, simulated: true }),
  inverse: () => [],
});
