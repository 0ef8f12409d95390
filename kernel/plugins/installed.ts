/**
 * Installed third-party plugins: what `<config>/plugins.lock` approves, loaded as exactly the
 * approved bytes. A package lives read-only in `<data>/plugins/packages/<sha256>.zip`; a
 * hand-placed folder (in `<data>/plugins` or `/usr/share/gini/plugins`) holds `plugin.toml` and
 * one bundled module. At every load both are hashed again; a mismatch refuses the plugin. A
 * folder not in the lock is listed as not approved and not loaded.
 *
 * @module
 */
import { join, resolve } from "../../workers/path.ts";
import { lockPath, type StartupEnv } from "../paths.ts";
import { readIfExists, sha256Hex } from "../ops/_fs.ts";
import type { Manifest } from "./manifest.ts";
import { checkModule, manifestOf, readPackage } from "./package.ts";
import { SYSTEM_PLUGIN_DIR } from "./discover.ts";
import { type LockEntry, type LockFile, readLock } from "./trust.ts";

export { lockPath };

/** Where installed packages are stored, named by their sha256. */
export function storeDir(env: StartupEnv): string {
  return join(env.dirs.data, "plugins", "packages");
}

/** The stored package of the given sha256. */
export function storedPackage(env: StartupEnv, sha256: string): string {
  return join(storeDir(env), `${sha256}.zip`);
}

/** A plugin on disk that Gini does not load, and why. */
export interface NotLoaded {
  plugin: string;
  /** Its folder or stored package. */
  path: string;
  reason: string;
  /** True for a hand-placed folder `gini plugins approve` can approve. */
  approvable: boolean;
}

/** The approved plugins, loaded; the others, with their reasons. */
export interface Installed {
  lock: LockFile;
  manifests: Manifest[];
  refused: NotLoaded[];
}

/** A hand-placed plugin folder, read but not trusted. */
export interface PluginFolder {
  dir: string;
  origin: "user" | "system";
  manifest?: Manifest;
  problem?: string;
  /** sha256 of its plugin.toml (with the schema file it names), and of its entry module. */
  sha256?: string;
  entrySha256?: string;
  code?: Uint8Array;
}

/** Reads a hand-placed folder: its manifest, entry module and their hashes. */
export async function readFolder(
  dir: string,
  origin: PluginFolder["origin"],
): Promise<PluginFolder> {
  const folder: PluginFolder = { dir, origin };
  try {
    const file = join(dir, "plugin.toml");
    const toml = (await readIfExists(file))!;
    const manifest = manifestOf(new TextDecoder().decode(toml), file, origin);
    for (const name of [manifest.plugin.entry, manifest.context.schemas ?? "x"]) {
      if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name)) {
        throw new Error(`"${name}" is not a file name in the plugin's own folder`);
      }
    }
    const code = await readIfExists(join(dir, manifest.plugin.entry));
    if (!code) throw new Error(`its entry "${manifest.plugin.entry}" is missing`);
    await checkModule(new TextDecoder().decode(code), join(dir, manifest.plugin.entry));
    const files: Record<string, string> = {};
    const schemas = manifest.context.schemas;
    // The folder's sha256 covers the manifest and the schema file it names, so editing either
    // un-approves it, as editing the module does.
    let approved = new TextDecoder().decode(toml);
    if (schemas) {
      files[schemas] = await Deno.readTextFile(join(dir, schemas));
      approved += `\0${schemas}\0${files[schemas]}`;
    }
    const entrySha256 = await sha256Hex(code);
    Object.assign(folder, {
      manifest: { ...manifest, bundle: { code, sha256: entrySha256, files } },
      sha256: await sha256Hex(approved),
      entrySha256,
      code,
    });
  } catch (error) {
    folder.problem = error instanceof Error ? error.message : String(error);
  }
  return folder;
}

/** Folders holding a plugin.toml directly below `dir`. */
async function foldersIn(dir: string): Promise<string[]> {
  const found: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isDirectory) continue;
      try {
        if ((await Deno.stat(join(dir, entry.name, "plugin.toml"))).isFile) {
          found.push(join(dir, entry.name));
        }
      } catch { /* not a plugin folder */ }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return found.sort();
}

/** Every hand-placed plugin folder, read. */
export async function handPlacedFolders(
  env: StartupEnv,
  systemDir = SYSTEM_PLUGIN_DIR,
): Promise<PluginFolder[]> {
  const folders: PluginFolder[] = [];
  for (const [dir, origin] of [[systemDir, "system"], [join(env.dirs.data, "plugins"), "user"]]) {
    for (const path of await foldersIn(dir!)) {
      folders.push(await readFolder(path, origin as PluginFolder["origin"]));
    }
  }
  return folders;
}

/** Loads one lock entry's package, or says why not. */
async function loadPackage(env: StartupEnv, entry: LockEntry): Promise<Manifest | string> {
  const path = storedPackage(env, entry.sha256);
  const bytes = await readIfExists(path);
  if (!bytes) return `its package ${path} is missing: install it again`;
  const sha256 = await sha256Hex(bytes);
  if (sha256 !== entry.sha256) {
    return `its package ${path} changed since it was approved (sha256 ${sha256}, approved ${entry.sha256}): remove it and install it again`;
  }
  try {
    const pkg = await readPackage(bytes, path);
    if (pkg.manifest.plugin.name !== entry.name || pkg.entrySha256 !== entry.entry_sha256) {
      return `its package ${path} is not the one approved for "${entry.name}"`;
    }
    return pkg.manifest;
  } catch (error) {
    return (error as Error).message;
  }
}

/** What the lock approves for a folder, or why the folder is not loaded. */
function folderVerdict(folder: PluginFolder, entry: LockEntry | undefined): string | undefined {
  if (folder.problem) return folder.problem;
  if (!entry || entry.kind !== "folder" || resolve(entry.source) !== resolve(folder.dir)) {
    return `not approved: run "gini plugins approve ${
      folder.manifest!.plugin.name
    }" to see what it may do and approve it`;
  }
  if (entry.sha256 !== folder.sha256 || entry.entry_sha256 !== folder.entrySha256) {
    return `its files changed since they were approved: run "gini plugins approve ${
      folder.manifest!.plugin.name
    }" to review and approve them again`;
  }
  return undefined;
}

/** The approved plugins, each checked against the lock, and every plugin not loaded with why. */
export async function loadInstalled(
  env: StartupEnv,
  systemDir = SYSTEM_PLUGIN_DIR,
): Promise<Installed> {
  const lock = await readLock(lockPath(env));
  const manifests: Manifest[] = [];
  const refused: NotLoaded[] = [];
  for (const entry of Object.values(lock.plugins)) {
    if (entry.kind !== "package") continue;
    const loaded = await loadPackage(env, entry);
    if (typeof loaded === "string") {
      refused.push({
        plugin: entry.name,
        path: storedPackage(env, entry.sha256),
        reason: loaded,
        approvable: false,
      });
    } else manifests.push(loaded);
  }
  for (const folder of await handPlacedFolders(env, systemDir)) {
    const name = folder.manifest?.plugin.name ?? folder.dir.split("/").pop()!;
    const reason = folderVerdict(folder, lock.plugins[name]);
    if (reason) {
      refused.push({ plugin: name, path: folder.dir, reason, approvable: !folder.problem });
    } else manifests.push(folder.manifest!);
  }
  return { lock, manifests, refused };
}
