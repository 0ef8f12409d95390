/**
 * File URL helpers that need no permission and no current directory, and no `node:url` (a
 * `node:` import loads Deno's Node compatibility layer). `url_test.ts` holds them to `node:url`.
 *
 * @module
 */
import { resolve } from "../workers/path.ts";

/** The path of a `file:` URL. */
export function fromFileUrl(url: URL | string): string {
  const parsed = url instanceof URL ? url : new URL(url);
  if (parsed.protocol !== "file:") throw new TypeError(`Not a file: URL: ${parsed.href}`);
  if (parsed.hostname !== "" && parsed.hostname !== "localhost") {
    throw new TypeError(`A file: URL on another host cannot be read: ${parsed.href}`);
  }
  if (/%2f/i.test(parsed.pathname)) {
    throw new TypeError(`A file: URL path must not hold an encoded "/": ${parsed.href}`);
  }
  return decodeURIComponent(parsed.pathname);
}

/** The `file:` URL of a path (a relative one from the working folder). */
export function toFileUrl(path: string): URL {
  const url = new URL("file:///");
  if (!path.startsWith("/")) path = resolve(path) + (path.endsWith("/") ? "/" : "");
  // The URL parser encodes spaces, "#", "?" and non-ASCII itself; these it would read otherwise.
  url.pathname = path.replace(/%/g, "%25").replace(/\\/g, "%5C").replace(/\n/g, "%0A")
    .replace(/\r/g, "%0D").replace(/\t/g, "%09");
  return url;
}
