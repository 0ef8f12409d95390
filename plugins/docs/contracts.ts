/**
 * docs' context key: `docs.generated`, what `gini docs` made.
 *
 * @module
 */
import { z } from "zod";
import type { ContextKey, Plain } from "../../workers/sdk.ts";

const GeneratedSchema = z.strictObject({
  format: z.enum(["md", "html", "man"]),
  /** The folder the pages were written in; null when the Markdown went to standard output. */
  dir: z.string().nullable(),
  /** The pages, relative to `dir`, sorted. */
  files: z.array(z.string()),
  /** The Markdown printed when there is no folder. */
  text: z.string().nullable(),
});
export type Generated = Plain<z.infer<typeof GeneratedSchema>>;

/** What `gini docs` wrote (or printed). */
export const GENERATED: ContextKey<Generated> = "docs.generated";

/** Schemas by context key, checked by the kernel on every write. */
export const contracts = { "docs.generated": GeneratedSchema };
