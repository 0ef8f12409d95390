/**
 * `image.create`: creates a disk image with qemu-img (qcow2 or raw, optionally an
 * overlay of a backing image), refusing to replace an existing file.
 *
 * @module
 */
import { dirname, resolve } from "../../workers/path.ts";
import { z } from "zod";
import { ConflictError } from "../errors.ts";
import { argvCheckNeed } from "./broker.ts";
import { hasProtocol, HEADERS_UNCHECKED } from "./argv.ts";
import { capturePath, type PathState } from "./_fs.ts";
import { defineOp, formatBytes } from "./types.ts";

const ImageCreateArgs = z.strictObject({
  path: z.string().min(1),
  format: z.enum(["qcow2", "raw"]),
  /** Optional for an overlay: without it, the overlay is the size of its backing image. */
  sizeBytes: z.number().int().positive().optional(),
  backing: z.strictObject({
    path: z.string().min(1).refine((p) => !hasProtocol(p), {
      message: 'expected a file, not a protocol (a ":" before the first "/")',
    }),
    format: z.string().min(1),
  }).optional(),
}).refine((a) => a.sizeBytes !== undefined || a.backing !== undefined, {
  path: ["sizeBytes"],
  message: "expected a size (only an overlay may take its backing image's)",
});
type ImageCreateArgs = z.infer<typeof ImageCreateArgs>;

/** qemu-img's argv for the op. */
export function imageCreateArgv(a: ImageCreateArgs): string[] {
  return [
    "qemu-img",
    "create",
    "-q",
    "-f",
    a.format,
    ...(a.backing ? ["-b", a.backing.path, "-F", a.backing.format] : []),
    ...(a.format === "qcow2" ? ["-o", "cluster_size=65536,lazy_refcounts=on"] : []),
    a.path,
    ...(a.sizeBytes === undefined ? [] : [String(a.sizeBytes)]),
  ];
}

export const imageCreate = defineOp<ImageCreateArgs>({
  kind: "image.create",
  schema: ImageCreateArgs,
  pathArgs: ["path"],
  describe: (a) =>
    `Create ${a.format} disk "${a.path}" (${
      a.sizeBytes === undefined ? "the size of its backing image" : formatBytes(a.sizeBytes)
    }${a.backing ? `, overlay of "${a.backing.path}"` : ""})`,
  // A new qcow2 holds only metadata (header, refcount table and block: three 64 KiB clusters,
  // and an L1 table of 8 bytes per 512 MiB); a raw image is sparse. Both may grow to the size.
  estimate: (a) => ({
    bytes: a.format === "qcow2" ? 3 * 65536 + Math.ceil((a.sizeBytes ?? 0) / 2 ** 29) * 8 : 0,
    virtualBytes: a.sizeBytes ?? 0,
    seconds: 0.2,
  }),
  // The overlay reads its backing image (resolved against the overlay's folder when relative).
  permission: (a) => [
    { grant: "write", path: a.path },
    { grant: "run", program: "qemu-img" },
    ...(a.backing
      ? [argvCheckNeed({ program: "qemu-img", input: resolve(dirname(a.path), a.backing.path) })]
      : []),
    // A backing image's header may name further files: only raw ones are read as given.
    ...(a.backing && a.backing.format !== "raw"
      ? [argvCheckNeed({ program: "qemu-img", unchecked: HEADERS_UNCHECKED })]
      : []),
  ],
  capture: async (a) => await capturePath(a.path),
  conflicts: (a, before) =>
    (before as PathState).exists ? [`"${a.path}" exists and would be replaced`] : [],
  async execute(a, env, before) {
    if ((before as PathState).exists) {
      throw new ConflictError(`Cannot create disk "${a.path}": it exists`, {
        hint:
          'Remove the VM with "gini rm" first, or point the disk at the existing image with path =',
      });
    }
    await env.host.run(imageCreateArgv(a), { timeoutMs: 120_000 });
    return { path: a.path, format: a.format, sizeBytes: a.sizeBytes ?? null };
  },
  simulate: (a) => ({
    path: a.path,
    format: a.format,
    sizeBytes: a.sizeBytes ?? null,
    simulated: true,
  }),
  inverse: (a) => [{ kind: "fs.remove", args: { path: a.path } }],
});
