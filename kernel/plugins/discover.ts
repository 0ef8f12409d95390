/**
 * Finds plugin manifests in source folders: core plugins shipped with Gini and any extra
 * directories given with `--plugin-dir`. Third-party plugins installed for use are loaded from
 * `plugins.lock` (installed.ts).
 *
 * @module
 */
import { join } from "../../workers/path.ts";
import { fromFileUrl } from "../url.ts";
import { ManifestError } from "../errors.ts";
import { type Manifest, parseManifest } from "./manifest.ts";

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

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** The plugin folders in `dir`: the folder itself if it has a plugin.toml, else its children that do. */
async function pluginFolders(dir: string): Promise<string[]> {
  if (await isFile(join(dir, "plugin.toml"))) return [dir];
  const found: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isDirectory && !entry.isSymlink) continue;
      if (await isFile(join(dir, entry.name, "plugin.toml"))) found.push(join(dir, entry.name));
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return found.sort();
}

/** Reads and validates every manifest in the given sources. */
export async function discoverPlugins(sources: PluginSource[]): Promise<Discovery> {
  const manifests: Manifest[] = [];
  const errors: ManifestError[] = [];
  for (const source of sources) {
    for (const folder of await pluginFolders(source.dir)) {
      const file = join(folder, "plugin.toml");
      const text = await Deno.readTextFile(file);
      const parsed = parseManifest(text, file, source.origin);
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
