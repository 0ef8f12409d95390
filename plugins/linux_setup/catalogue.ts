/**
 * The cloud image catalogue (data, in catalogue.json) and checksum files in their
 * usual formats (`HASH  file`, `SHA256 (file) = HASH`). Public: `gini new` (qemu-setup) checks
 * `--image` against the catalogue.
 *
 * @module
 */
import { z } from "zod";
import catalogue from "./catalogue.json" with { type: "json" };

export const CatalogueEntrySchema = z.strictObject({
  description: z.string(),
  url: z.string().url(),
  checksumUrl: z.string().url(),
  algorithm: z.enum(["sha256", "sha512"]),
  format: z.enum(["qcow2", "raw"]),
  arch: z.literal("x86_64"),
  /**
   * The image's size when the catalogue was written, for the plan: "latest" URLs change, so the
   * plan says "about", and the download's progress shows the real size.
   */
  approxBytes: z.number().int().positive(),
});
export type CatalogueEntry = z.infer<typeof CatalogueEntrySchema>;

/** The catalogue, checked against its schema. */
export const CATALOGUE: Record<string, CatalogueEntry> = z.record(z.string(), CatalogueEntrySchema)
  .parse(catalogue);

/** The hash a checksum file gives for `fileName`, or undefined. */
export function findChecksum(text: string, fileName: string): string | undefined {
  for (const line of text.split("\n")) {
    const gnu = line.match(/^([0-9a-fA-F]{64,128})\s+\*?(.+)$/);
    if (gnu && gnu[2]!.trim().split("/").at(-1) === fileName) return gnu[1]!.toLowerCase();
    const bsd = line.match(/^SHA(?:256|512) \((.+)\) = ([0-9a-fA-F]{64,128})$/);
    if (bsd && bsd[1]!.split("/").at(-1) === fileName) return bsd[2]!.toLowerCase();
  }
  return undefined;
}
