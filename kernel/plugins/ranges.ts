/**
 * Version ranges of plugin dependencies, checked without loading `semver` for the forms Gini's
 * own plugins write (`^1.0.0`, `~1.2.0`, `1.2.3`, `>=1.2.0` against a release version). `semver`
 * is a CommonJS package: the first one loaded costs about 25 ms of Node compatibility layer.
 * Any other range or version is left to `semver`, loaded by {@linkcode prepareRanges}.
 *
 * @module
 */
import type { Manifest } from "./manifest.ts";

const RELEASE = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/;
const SIMPLE = /^(\^|~|>=|=)?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/;

type Triple = [number, number, number];

function compare(a: Triple, b: Triple): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** Whether `version` is in `range`, or undefined when the form is not one of the simple ones. */
export function simpleSatisfies(version: string, range: string): boolean | undefined {
  const v = version.match(RELEASE);
  const r = range.trim().match(SIMPLE);
  if (!v || !r) return undefined;
  const have = [Number(v[1]), Number(v[2]), Number(v[3])] as Triple;
  const want = [Number(r[2]), Number(r[3]), Number(r[4])] as Triple;
  const [major, minor, patch] = want;
  const below = (limit: Triple) => compare(have, want) >= 0 && compare(have, limit) < 0;
  switch (r[1]) {
    case "^":
      return below(
        major > 0 ? [major + 1, 0, 0] : minor > 0 ? [0, minor + 1, 0] : [0, 0, patch + 1],
      );
    case "~":
      return below([major, minor + 1, 0]);
    case ">=":
      return compare(have, want) >= 0;
    default:
      return compare(have, want) === 0;
  }
}

let semver: { satisfies(version: string, range: string): boolean } | undefined;

/** Loads `semver` if any dependency range of `manifests` is not a simple one. */
export async function prepareRanges(manifests: Manifest[]): Promise<void> {
  if (semver) return;
  const versions = new Map(manifests.map((m) => [m.plugin.name, m.plugin.version]));
  const hard = manifests.some((m) =>
    [...Object.entries(m.dependencies), ...Object.entries(m.optional_dependencies)].some(
      ([name, range]) =>
        versions.has(name) && simpleSatisfies(versions.get(name)!, range) === undefined,
    )
  );
  if (hard) semver = (await import("semver")).default;
}

/** Whether `version` is in `range`; a range that is not simple needs {@linkcode prepareRanges}. */
export function satisfies(version: string, range: string): boolean {
  const simple = simpleSatisfies(version, range);
  if (simple !== undefined) return simple;
  if (!semver) throw new Error(`prepareRanges() was not called before checking "${range}"`);
  return semver.satisfies(version, range);
}
