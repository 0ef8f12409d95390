/**
 * Sizes as VM files write them ("8G", "512M"), apart from the VM file's schema so that a plugin
 * that only reads a size does not load zod.
 *
 * @module
 */

const SIZE = /^(\d+(?:\.\d+)?)\s*([KMGT])(?:i?B)?$/i;
const UNITS: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** Bytes of a size like "8G", "512M", "1.5T" (binary units). */
export function parseSize(text: string): number | undefined {
  const match = text.trim().match(SIZE);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * UNITS[match[2]!.toUpperCase()]!);
}
