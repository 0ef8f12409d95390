/**
 * POSIX paths, as `node:path` handles them, without `node:path`: importing any `node:` module
 * loads Deno's Node compatibility layer, about 5 ms in every worker and more in the kernel, and
 * Gini runs on Linux only. `path_test.ts` holds these to `node:path`'s answers.
 *
 * @example
 * ```ts
 * import { join, relative } from "./path.ts";
 *
 * join("/var/lib", "../gini", "vms"); // "/var/gini/vms"
 * relative("/a/b", "/a/c/d"); // "../c/d"
 * ```
 *
 * @module
 */

/** The separator. */
export const sep = "/";

/** `path` with "." and ".." segments and repeated slashes resolved; a trailing slash kept. */
export function normalize(path: string): string {
  if (path === "") return ".";
  const absolute = path.startsWith("/");
  const trailing = path.endsWith("/");
  const out: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (out.length && out.at(-1) !== "..") out.pop();
      else if (!absolute) out.push("..");
      continue;
    }
    out.push(segment);
  }
  let result = out.join("/");
  if (result === "" && !absolute) result = ".";
  if (result !== "" && trailing && result !== ".") result += "/";
  else if (result === "." && trailing) result = "./";
  return absolute ? `/${result}` : result;
}

/** Whether `path` starts at the root. */
export function isAbsolute(path: string): boolean {
  return path.startsWith("/");
}

/** The parts joined with "/" and normalized; "." for none. */
export function join(...parts: string[]): string {
  const kept = parts.filter((p) => p !== "");
  return kept.length ? normalize(kept.join("/")) : ".";
}

/** The absolute path the parts lead to, from the working folder; no trailing slash. */
export function resolve(...parts: string[]): string {
  let resolved = "";
  for (let i = parts.length - 1; i >= 0 && !resolved.startsWith("/"); i--) {
    const part = parts[i]!;
    if (part === "") continue;
    resolved = resolved ? `${part}/${resolved}` : part;
  }
  if (!resolved.startsWith("/")) resolved = resolved ? `${Deno.cwd()}/${resolved}` : Deno.cwd();
  const normal = normalize(resolved);
  return normal.length > 1 && normal.endsWith("/") ? normal.slice(0, -1) : normal;
}

/** The folder part of `path` ("." for a bare name). */
export function dirname(path: string): string {
  if (path === "") return ".";
  let end = path.length;
  while (end > 1 && path[end - 1] === "/") end--;
  const slash = path.lastIndexOf("/", end - 1);
  if (slash === -1) return ".";
  if (slash === 0) return "/";
  // As node:path: the slashes before the last part are cut once, the others kept ("a//b" → "a/").
  return slash === 1 && path[0] === "/" ? "//" : path.slice(0, slash);
}

/** The last part of `path`, without `suffix` if it ends with it (and is more than it). */
export function basename(path: string, suffix?: string): string {
  let end = path.length;
  while (end > 0 && path[end - 1] === "/") end--;
  if (end === 0) return "";
  const base = path.slice(path.lastIndexOf("/", end - 1) + 1, end);
  return suffix !== undefined && suffix !== base && base.endsWith(suffix)
    ? base.slice(0, base.length - suffix.length)
    : base;
}

/** The extension of the last part, with its dot ("" if none). */
export function extname(path: string): string {
  const base = basename(path);
  const dot = base.lastIndexOf(".");
  return dot <= 0 || base === ".." ? "" : base.slice(dot);
}

/** The path from `from` to `to` (both resolved first); "" when they are the same. */
export function relative(from: string, to: string): string {
  const a = resolve(from).split("/").filter(Boolean);
  const b = resolve(to).split("/").filter(Boolean);
  let common = 0;
  while (common < a.length && common < b.length && a[common] === b[common]) common++;
  return [...a.slice(common).map(() => ".."), ...b.slice(common)].join("/");
}

/** The same functions as one object, as `node:path`'s `posix`. */
export const posix = {
  sep,
  normalize,
  isAbsolute,
  join,
  resolve,
  dirname,
  basename,
  extname,
  relative,
};
