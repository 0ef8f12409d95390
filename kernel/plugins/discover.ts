/**
 * Finds plugin manifests in source folders: core plugins shipped with Gini and any extra
 * directories given with `--plugin-dir`. Third-party plugins installed for use are loaded from
 * `plugins.lock` (installed.ts).
 *
 * @module
 */
import { dirname, join, resolve } from "../../workers/path.ts";
import { fromFileUrl } from "../url.ts";
import { ManifestError } from "../errors.ts";
import type { Manifest } from "./manifest.ts";
import { prepareRanges } from "./ranges.ts";
import { KERNEL_API_VERSION } from "../versions.ts";
import denoJson from "../../deno.json" with { type: "json" };
import { importLater } from "../lazy.ts";

const giniVersion = denoJson.version;

/** The folder of core plugins inside Gini (also inside the compiled binary). */
export const CORE_PLUGIN_DIR = fromFileUrl(new URL("../../plugins/", import.meta.url));
/** Where distributions install plugins for every user. */
export const SYSTEM_PLUGIN_DIR = "/usr/share/gini/plugins";

/** A place to look for plugins. */
export interface PluginSource {
  dir: string;
  origin: Manifest["origin"];
}

/** What discovery found: valid manifests and the problems of the others. */
export interface Discovery {
  manifests: Manifest[];
  errors: ManifestError[];
}

// Discovery reads small files and folders synchronously: it runs before every command, and each
// async call is a trip through the event loop (together about 8 ms).
function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** The plugin folders in `dir`: the folder itself if it has a plugin.toml, else its children that do. */
function pluginFolders(dir: string): string[] {
  if (isFile(join(dir, "plugin.toml"))) return [dir];
  const found: string[] = [];
  try {
    for (const entry of Deno.readDirSync(dir)) {
      if (!entry.isDirectory && !entry.isSymlink) continue;
      if (isFile(join(dir, entry.name, "plugin.toml"))) found.push(join(dir, entry.name));
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return found.sort();
}

/** A manifest checked before: reused while its file holds the same text. */
interface CachedManifest {
  origin: Manifest["origin"];
  text: string;
  manifest: Manifest;
}

/** Bumped when what the cache holds changes shape. */
const CACHE_FORMAT = "manifests-1";

/** What the manifest cache was written by: this Gini, its checking code and its executable. */
let stampOfThisGini: string | undefined;

function cacheStamp(): string {
  return stampOfThisGini ??= computeStamp();
}

function computeStamp(): string {
  const stamp = (url: URL | string) => {
    try {
      const info = Deno.statSync(url);
      return `${info.size}:${info.mtime?.getTime() ?? ""}`;
    } catch {
      return "-";
    }
  };
  return [
    CACHE_FORMAT,
    giniVersion,
    KERNEL_API_VERSION,
    stamp(Deno.execPath()),
    ...["./manifest.ts", "../ops/argv.ts", "../toml.ts", "../versions.ts"].map((m) =>
      stamp(new URL(m, import.meta.url))
    ),
  ].join(" ");
}

/**
 * A cached entry as the manifest of `file` now: its text must still be the file's, and where it
 * is (`file`, `dir`) and where it came from (`origin`) are the current discovery's, never the
 * cache's (the same text may sit in another folder; a cache is no authority on core status).
 */
function asFound(entry: CachedManifest, file: string, origin: Manifest["origin"]): Manifest {
  return { ...entry.manifest, file, dir: dirname(file), origin };
}

/**
 * The core plugins' manifests in the cache at `file`, if this Gini wrote it, each only while its
 * plugin.toml (inside Gini's core plugin folder) still holds the cached text.
 */
export function cachedCoreManifests(file: string): Manifest[] {
  const found: Manifest[] = [];
  for (const [path, entry] of Object.entries(readCache(file, cacheStamp()))) {
    if (entry.origin !== "core" || !path.startsWith(CORE_PLUGIN_DIR)) continue;
    try {
      if (Deno.readTextFileSync(path) === entry.text) found.push(asFound(entry, path, "core"));
    } catch {
      // Gone: not a plugin any more.
    }
  }
  return found;
}

/** The cache as last read, by file: a command reads it first to start a worker ahead, then to load. */
let lastRead:
  | { file: string; size: number; mtime: number; entries: Record<string, CachedManifest> }
  | undefined;

function readCache(file: string, stamp: string): Record<string, CachedManifest> {
  try {
    const info = Deno.statSync(file);
    const mtime = info.mtime?.getTime() ?? 0;
    if (lastRead?.file === file && lastRead.size === info.size && lastRead.mtime === mtime) {
      return lastRead.entries;
    }
    const data = JSON.parse(Deno.readTextFileSync(file));
    if (data?.stamp === stamp && typeof data.entries === "object" && data.entries !== null) {
      lastRead = { file, size: info.size, mtime, entries: data.entries };
      return data.entries;
    }
  } catch {
    // No cache yet, or one this Gini cannot use.
  }
  return {};
}

/**
 * Manifests checked in an earlier run, by file. Checking a manifest takes zod and its schemas
 * (about 30 ms at start-up); a manifest whose text, origin and checking code are unchanged is
 * the same manifest. The cache lives in `{state}`, where no plugin's grant may reach (the
 * manifests it holds carry permissions), and a cache that cannot be read is no cache. It is
 * written only when a live run starts ({@linkcode saveCheckedManifests}): a plan, a query or a
 * dry run writes nothing.
 */
class ManifestCache {
  #path: string | undefined;
  #stamp = cacheStamp();
  #entries: Record<string, CachedManifest> = {};
  #used: Record<string, CachedManifest> = {};
  #changed = false;

  constructor(path: string | undefined) {
    this.#path = path;
    // No cache yet, or one this Gini cannot use: every manifest is checked.
    if (path) this.#entries = readCache(path, this.#stamp);
  }

  async parse(text: string, given: string, origin: Manifest["origin"]) {
    // By absolute path: a relative --plugin-dir names another folder from another working folder.
    const file = resolve(given);
    const hit = Object.hasOwn(this.#entries, file) ? this.#entries[file] : undefined;
    if (hit && hit.text === text && hit.origin === origin) {
      this.#used[file] = hit;
      return { ok: true as const, manifest: asFound(hit, file, origin) };
    }
    const { parseManifest } = await importLater<typeof import("./manifest.ts")>(
      "./manifest.ts",
      import.meta.url,
    );
    const parsed = parseManifest(text, given, origin);
    if (parsed.ok) {
      this.#used[file] = { origin, text, manifest: JSON.parse(JSON.stringify(parsed.manifest)) };
      this.#changed = true;
    }
    return parsed;
  }

  /** What to write for the next run, if this one used other manifests than it read. */
  pending(): (() => void) | undefined {
    const dropped = Object.keys(this.#entries).some((file) => !Object.hasOwn(this.#used, file));
    const path = this.#path;
    if (!path || (!this.#changed && !dropped)) return undefined;
    const text = JSON.stringify({ stamp: this.#stamp, entries: this.#used });
    return () => {
      try {
        Deno.mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
        const temp = `${path}.${Deno.pid}.tmp`;
        Deno.writeTextFileSync(temp, text, { mode: 0o600 });
        Deno.renameSync(temp, path);
        lastRead = undefined;
      } catch {
        // A read-only state folder only costs the next run the checking.
      }
    };
  }
}

let unsaved: (() => void) | undefined;

/** Keeps the manifests the last discovery checked for the next run (a live run calls it). */
export function saveCheckedManifests(): void {
  unsaved?.();
  unsaved = undefined;
}

/**
 * Reads and validates every manifest in the given sources, reusing those `cacheFile` holds;
 * {@linkcode saveCheckedManifests} then keeps them there.
 */
export async function discoverPlugins(
  sources: PluginSource[],
  cacheFile?: string,
): Promise<Discovery> {
  const manifests: Manifest[] = [];
  const errors: ManifestError[] = [];
  const checked = new ManifestCache(cacheFile);
  for (const source of sources) {
    for (const folder of pluginFolders(source.dir)) {
      const file = join(folder, "plugin.toml");
      const text = Deno.readTextFileSync(file);
      const parsed = await checked.parse(text, file, source.origin);
      if (!parsed.ok) {
        errors.push(...parsed.errors);
        continue;
      }
      if (parsed.manifest.plugin.core && source.origin !== "core") {
        errors.push(
          new ManifestError(
            `Cannot load plugin "${parsed.manifest.plugin.name}" as core: only plugins shipped with Gini may set core = true`,
            { location: { file, key: "plugin.core" }, hint: "Set core = false" },
          ),
        );
        continue;
      }
      manifests.push(parsed.manifest);
    }
  }
  unsaved = checked.pending();
  await prepareRanges(manifests);
  return { manifests, errors };
}

/**
 * The sources read as source folders: core plugins, then `--plugin-dir` (for authors). Installed
 * plugins come from `plugins.lock` instead (installed.ts).
 */
export function defaultSources(extra: string[]): PluginSource[] {
  return [
    { dir: CORE_PLUGIN_DIR, origin: "core" },
    ...extra.map((dir) => ({ dir, origin: "extra" as const })),
  ];
}
