/**
 * `gini plugins bundle DIR`: a plugin's source folder made into a package. `deno bundle` inlines
 * everything the entry imports (the SDK included) into one minified module; the package holds
 * it with the manifest (its entry set to that module), the JSON Schema file the manifest names,
 * and README.md and LICENSE when present. The same sources give the same bytes.
 *
 * @module
 */
import { basename, join, resolve } from "../../workers/path.ts";
import { HostRunner } from "../host/run.ts";
import { ManifestError } from "../errors.ts";
import { readIfExists, sha256Hex } from "../ops/_fs.ts";
import {
  checkModule,
  manifestOf,
  PACKAGE_ENTRY,
  readPackage,
  withPackageEntry,
  zipPackage,
} from "./package.ts";
import { signPackage } from "./trust.ts";

/** What `bundle` wrote. */
export interface Bundled {
  name: string;
  version: string;
  file: string;
  sha256: string;
  bytes: number;
  /** The detached signature written beside it, when signed. */
  signature?: string;
}

/** The Deno that bundles: this one when Gini runs from source, else `deno` on PATH. */
export function denoForBundling(path: string): string | undefined {
  if (/^deno(\.exe)?$/.test(basename(Deno.execPath()))) return Deno.execPath();
  return new HostRunner(path).which("deno") ?? undefined;
}

async function runBundler(deno: string, dir: string, entry: string, out: string): Promise<void> {
  const result = await new Deno.Command(deno, {
    args: ["bundle", "--quiet", "--platform", "deno", "--minify", entry, "--output", out],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  if (result.code !== 0) {
    const detail = new TextDecoder().decode(result.stderr).trim().split("\n").slice(0, 12).join(
      "\n",
    );
    throw new ManifestError(`Cannot bundle ${join(dir, entry)}: deno bundle failed:\n${detail}`, {
      location: { file: join(dir, "plugin.toml"), key: "plugin.entry" },
      hint: "Fix the error above; the entry and what it imports must type-check and resolve",
    });
  }
}

/** Builds the package of the plugin in `dir`. */
export async function bundlePlugin(
  dir: string,
  options: { cwd: string; output?: string; signingKey?: string; path: string },
): Promise<Bundled> {
  const folder = resolve(options.cwd, dir);
  const manifestFile = join(folder, "plugin.toml");
  const text = await Deno.readTextFile(manifestFile);
  const manifest = manifestOf(text, manifestFile, "user");
  const deno = denoForBundling(options.path);
  if (!deno) {
    throw new ManifestError(
      `Cannot bundle ${folder}: it needs Deno (deno bundle), which is not on PATH`,
      {
        location: { file: manifestFile },
        hint: "Install Deno (https://deno.com), or run: npx -y deno@2.9.6 bundle …",
      },
    );
  }
  const temp = await Deno.makeTempDir({ prefix: "gini-bundle-" });
  try {
    const out = join(temp, PACKAGE_ENTRY);
    await runBundler(deno, folder, manifest.plugin.entry, out);
    const code = await Deno.readFile(out);
    await checkModule(new TextDecoder().decode(code), join(folder, manifest.plugin.entry));
    const files: Record<string, Uint8Array> = {
      "plugin.toml": new TextEncoder().encode(withPackageEntry(text)),
      [PACKAGE_ENTRY]: code,
    };
    const schemas = manifest.context.schemas;
    if (schemas) files[schemas] = await Deno.readFile(join(folder, schemas));
    for (const name of ["README.md", "LICENSE"]) {
      const bytes = await readIfExists(join(folder, name));
      if (bytes) files[name] = bytes;
    }
    const zip = zipPackage(files);
    const file = resolve(
      options.cwd,
      options.output ?? `${manifest.plugin.name}-${manifest.plugin.version}.zip`,
    );
    await readPackage(zip, file); // the package must read back as Gini will read it
    await Deno.writeFile(file, zip);
    const bundled: Bundled = {
      name: manifest.plugin.name,
      version: manifest.plugin.version,
      file,
      sha256: await sha256Hex(zip),
      bytes: zip.length,
    };
    if (options.signingKey) {
      const key = JSON.parse(await Deno.readTextFile(options.signingKey)) as JsonWebKey;
      bundled.signature = `${file}.sig`;
      await Deno.writeTextFile(bundled.signature, await signPackage(zip, key));
    }
    return bundled;
  } finally {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
  }
}
