/**
 * `fs.edit`: replaces a file's content only if it still has the content the plan
 * was made from (by sha256), so a file changed behind our back is never clobbered.
 *
 * @module
 */
import { createTwoFilesPatch } from "diff";
import { z } from "zod";
import { ConflictError } from "../errors.ts";
import { atomicWrite, capturePath, pathContent, type PathState, sha256Hex } from "./_fs.ts";
import { restorePath, writeBytes } from "./fs_write.ts";
import { defineOp } from "./types.ts";
import type { Json } from "../../workers/protocol.ts";

/** `expectSha256` value meaning "the file must not exist yet". */
export const ABSENT = "absent";

const FsEditArgs = z.strictObject({
  path: z.string().min(1),
  /** sha256 of the content being replaced, or "absent" to create the file. */
  expectSha256: z.union([z.string().regex(/^[0-9a-f]{64}$/), z.literal(ABSENT)]),
  content: z.string().optional(),
  contentBase64: z.string().optional(),
  mode: z.number().int().min(0).max(0o7777).optional(),
}).refine((a) => (a.content === undefined) !== (a.contentBase64 === undefined), {
  message: "expected exactly one of content or contentBase64",
});
type FsEditArgs = z.infer<typeof FsEditArgs>;

/** Files up to this size are also read as text, for the plan's diff. */
const PREVIEW_LIMIT = 1024 * 1024;

/** The path's state, plus its text when it is small enough to show a diff of. */
type EditCapture = PathState & { text?: string };

function mismatch(a: FsEditArgs, before: PathState): string | undefined {
  const actual = pathContent(before);
  return actual === a.expectSha256 ? undefined : actual;
}

export const fsEdit = defineOp<FsEditArgs>({
  kind: "fs.edit",
  schema: FsEditArgs as z.ZodType<FsEditArgs>,
  pathArgs: ["path"],
  describe: (a) =>
    a.expectSha256 === ABSENT
      ? `Create file "${a.path}"`
      : `Edit file "${a.path}" (was sha256 ${a.expectSha256.slice(0, 12)}…)`,
  estimate: (a) => ({ bytes: writeBytes(a).byteLength, seconds: 0.001 }),
  permission: (a) => [{ grant: "write", path: a.path }],
  async capture(a) {
    const state: EditCapture = await capturePath(a.path);
    if (state.exists && state.type === "file" && state.size <= PREVIEW_LIMIT) {
      state.text = await Deno.readTextFile(a.path);
    }
    return state as Json;
  },
  conflicts(a, before) {
    const actual = mismatch(a, before as PathState);
    return actual === undefined ? [] : [
      `"${a.path}" changed since the plan was made (expected ${
        a.expectSha256.slice(0, 12)
      }…, found ${actual.slice(0, 12)}…)`,
    ];
  },
  async execute(a, _env, before) {
    const state = before as PathState;
    const actual = mismatch(a, state);
    if (actual !== undefined) {
      throw new ConflictError(
        `Cannot edit "${a.path}": it changed since the plan was made (expected sha256 ${a.expectSha256}, found ${actual})`,
        { hint: "Run the plan again to see the current content" },
      );
    }
    const data = writeBytes(a);
    await atomicWrite(a.path, data, a.mode ?? (state.exists ? state.mode : null));
    return { path: a.path, sha256: await sha256Hex(data), bytes: data.byteLength };
  },
  simulate: (a) => ({ path: a.path, sha256: "", bytes: writeBytes(a).byteLength, simulated: true }),
  preview(a, before) {
    const state = before as EditCapture;
    if (state.exists && state.text === undefined) return undefined;
    const old = state.text ?? "";
    const next = new TextDecoder().decode(writeBytes(a));
    if (old.includes("\0") || next.includes("\0")) return undefined;
    return createTwoFilesPatch(
      state.exists ? `a${a.path}` : "/dev/null",
      `b${a.path}`,
      old,
      next,
      undefined,
      undefined,
      { context: 3 },
    ).split("\n").slice(1).join("\n").trimEnd();
  },
  inverse(a, before) {
    const state = before as PathState;
    if (!state.exists) return [{ kind: "fs.remove", args: { path: a.path } }];
    return restorePath(a.path, state, writeBytes(a));
  },
});
