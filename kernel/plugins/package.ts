/**
 * Plugin packages: a zip holding `plugin.toml`, one self-contained ES module (`plugin.js`, built
 * with `deno bundle`), the JSON Schema file its `[context] schemas` names, and optionally
 * `README.md` and `LICENSE`. The same sources give the same bytes (fixed times, fixed order), so
 * a package's sha256 names it.
 *
 * @module
 */
import { unzipSync, zipSync } from "fflate";
import { init as lexerReady, parse as lexImports } from "es-module-lexer";
import { ManifestError } from "../errors.ts";
import { sha256Hex } from "../ops/_fs.ts";
import { type Manifest, parseManifest } from "./manifest.ts";

/** The entry module's name inside a package. */
export const PACKAGE_ENTRY = "plugin.js";
/** The most a package may hold once unpacked (a zip bomb stops here). */
export const MAX_PACKAGE_BYTES = 64 * 1024 * 1024;
/** Node built-ins a bundle may import: pure helpers that reach nothing outside the worker. */
export const ALLOWED_BUILTINS = [
  "node:path",
  "node:url",
  "node:buffer",
  "node:util",
  "node:events",
  "node:string_decoder",
  "node:assert",
  "node:crypto",
];
const OTHER_FILES = ["README.md", "LICENSE"];
/** Zip entries carry this time, so that a rebuild gives the same bytes. */
const FIXED_TIME = new Date("1980-01-01T00:00:00Z");

/** What a package holds, read and checked. */
export interface PluginPackage {
  manifest: Manifest;
  /** The manifest's text, as stored. */
  manifestText: string;
  /** The entry module's bytes. */
  code: Uint8Array;
  /** sha256 of the whole package, and of the entry module. */
  sha256: string;
  entrySha256: string;
}

/** Raised when a package or its module is not what Gini accepts. */
export class PackageError extends ManifestError {}

function packageError(file: string, message: string, hint: string, key?: string): PackageError {
  return new PackageError(message, { location: { file, ...(key ? { key } : {}) }, hint });
}

// Where V8 reads the keyword `import` or `export`, no identifier character touches it; every ASCII
// identifier character is one, so this finds every such keyword (and also the word in strings,
// comments and names), whatever a lexer makes of the text around it.
const MODULE_WORD = /(?<![\w$])(import|export)(?![\w$])/g;
const WS = "[ \\t\\n\\r]*";
const NAME = "[A-Za-z_$][\\w$]*";
const NAMES = `\\{[\\w$ \\t\\n\\r,]*\\}`;
const CLAUSE = `(?:${NAME}${WS},${WS})?(?:${NAMES}|\\*${WS}as[ \\t\\n\\r]+${NAME})|${NAME}`;
/** `import.meta`, or a plain static import whose specifier is a string without escapes. */
const IMPORT_META = /import\.meta(?![\w$])/y;
const PLAIN_IMPORT = new RegExp(
  `import${WS}(?:(?:${CLAUSE})${WS}from${WS})?(?:"([^"\\\\\\n\\r]*)"|'([^'\\\\\\n\\r]*)')`,
  "y",
);
/** An export of its own names: `export { a as default };`, `export default …`, `export const …`. */
const LOCAL_EXPORT = new RegExp(
  `export${WS}(?:${NAMES}${WS}(?:;|$)|(?:default|const|let|var|function|class|async)(?![\\w$]))`,
  "y",
);

function lineOf(code: string, at: number): number {
  return code.slice(0, at).split("\n").length;
}

/**
 * Every `import` and `export` word the lexer's reading may not account for: the lexer guesses
 * where regular expressions and strings start, and a module can make it guess wrong (a regex
 * after a no-break space or a class body) and hide an `import()` or `export … from` from it. V8
 * cannot be led that way: each occurrence of the word must be `import.meta`, a plain static
 * import of an allowed built-in, or an export of the module's own names, wherever it stands
 * (a string or comment holding the word is refused too).
 */
function wordProblems(code: string, reported: Set<number>): string[] {
  const problems: string[] = [];
  for (const match of code.matchAll(MODULE_WORD)) {
    const at = match.index;
    if (reported.has(at)) continue;
    const where = `line ${lineOf(code, at)}`;
    const text = code.slice(at, at + 60).replace(/\s+/g, " ");
    if (match[1] === "export") {
      LOCAL_EXPORT.lastIndex = at;
      if (!LOCAL_EXPORT.test(code)) {
        problems.push(`${where}: "export" that is not an export of its own names (${text})`);
      }
      continue;
    }
    IMPORT_META.lastIndex = at;
    if (IMPORT_META.test(code)) continue;
    PLAIN_IMPORT.lastIndex = at;
    const plain = PLAIN_IMPORT.exec(code);
    const specifier = plain?.[1] ?? plain?.[2];
    if (specifier === undefined || !ALLOWED_BUILTINS.includes(specifier)) {
      problems.push(`${where}: "import" that is not a plain import of a built-in (${text})`);
    }
  }
  return problems;
}

/**
 * Why the module may not run as a plugin: each import it makes that is not an allowed Node
 * built-in (a file, a URL, `npm:`/`jsr:`, a text/bytes/JSON import), every dynamic `import()`,
 * and every `import` or `export` word that is not plainly one of the allowed forms (see
 * {@linkcode wordProblems}). Empty when it imports nothing else.
 */
export async function importProblems(code: string): Promise<string[]> {
  await lexerReady;
  // Text that was not UTF-8: what the lexer reads and what V8 runs must be the same characters.
  if (code.includes("\uFFFD")) {
    return ["it holds bytes that are not UTF-8 (or the character U+FFFD)"];
  }
  let imports;
  try {
    [imports] = lexImports(code);
  } catch (error) {
    return [`it is not a JavaScript module Gini can read (${(error as Error).message})`];
  }
  const problems: string[] = [];
  const reported = new Set<number>();
  for (const found of imports) {
    const line = lineOf(code, found.ss);
    const text = code.slice(found.ss, found.se).replace(/\s+/g, " ").slice(0, 80);
    if (found.t === 3) continue; // import.meta
    if (found.d > -1) {
      problems.push(`line ${line}: a dynamic import (${text})`);
      reported.add(found.ss);
    } else if (found.a > -1) {
      problems.push(`line ${line}: an import with attributes (${text})`);
      reported.add(found.ss);
    } else {
      // The specifier as written: the lexer decodes it with eval, which Gini's V8 flags forbid,
      // so a specifier holding an escape is refused rather than decoded.
      const specifier = code.slice(found.s, found.e);
      if (!ALLOWED_BUILTINS.includes(specifier)) {
        problems.push(`line ${line}: an import of "${specifier}"`);
        reported.add(found.ss);
      }
    }
  }
  return [...problems, ...wordProblems(code, reported)];
}

/** Refuses a module that imports anything outside itself; `file` names it in the error. */
export async function checkModule(code: string, file: string): Promise<void> {
  const problems = await importProblems(code);
  if (problems.length === 0) return;
  throw packageError(
    file,
    `Cannot accept the plugin module ${file}: a plugin may import nothing outside its own bundle, and it has ${
      problems.slice(0, 5).join("; ")
    }${problems.length > 5 ? ` and ${problems.length - 5} more` : ""}`,
    `Build the package with "gini plugins bundle DIR", which inlines what the plugin imports; Node built-ins allowed: ${
      ALLOWED_BUILTINS.join(", ")
    }. The words import and export may appear nowhere else, strings and comments included: reword them`,
  );
}

/** Files of a package, by name; refuses names Gini does not expect and oversized content. */
function unpack(bytes: Uint8Array, file: string): Record<string, Uint8Array> {
  let total = 0;
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes, {
      filter: (f) => {
        total += f.originalSize;
        if (total > MAX_PACKAGE_BYTES) {
          throw new Error(`it unpacks to more than ${MAX_PACKAGE_BYTES} bytes`);
        }
        return true;
      },
    });
  } catch (error) {
    throw packageError(
      file,
      `Cannot read the plugin package ${file}: ${(error as Error).message}`,
      "A package is the zip written by gini plugins bundle",
    );
  }
  for (const name of Object.keys(entries)) {
    const allowed = name === "plugin.toml" || name === PACKAGE_ENTRY ||
      OTHER_FILES.includes(name) || /^[A-Za-z0-9_.-]+\.json$/.test(name);
    if (!allowed) {
      throw packageError(
        file,
        `Cannot read the plugin package ${file}: it holds "${name}", which is not plugin.toml, ${PACKAGE_ENTRY}, a JSON schema, README.md or LICENSE`,
        "Rebuild it with gini plugins bundle",
      );
    }
  }
  return entries;
}

/**
 * Reads a package: unpacks it, validates the manifest (as a third-party plugin's), checks the
 * module imports nothing outside itself. `file` names the package in errors.
 */
export async function readPackage(
  bytes: Uint8Array,
  file: string,
  origin: Manifest["origin"] = "user",
): Promise<PluginPackage> {
  const entries = unpack(bytes, file);
  const toml = entries["plugin.toml"];
  const code = entries[PACKAGE_ENTRY];
  if (!toml || !code) {
    throw packageError(
      file,
      `Cannot read the plugin package ${file}: it lacks ${toml ? PACKAGE_ENTRY : "plugin.toml"}`,
      "Rebuild it with gini plugins bundle",
    );
  }
  const manifestText = new TextDecoder().decode(toml);
  const manifest = manifestOf(manifestText, `${file}#plugin.toml`, origin);
  if (manifest.plugin.entry !== PACKAGE_ENTRY) {
    throw packageError(
      `${file}#plugin.toml`,
      `Cannot read the plugin package ${file}: its manifest names the entry "${manifest.plugin.entry}", not ${PACKAGE_ENTRY}`,
      "Rebuild it with gini plugins bundle, which sets the entry",
      "plugin.entry",
    );
  }
  await checkModule(new TextDecoder().decode(code), `${file}#${PACKAGE_ENTRY}`);
  const schemas = manifest.context.schemas;
  const files: Record<string, string> = {};
  if (schemas) {
    const schema = entries[schemas];
    if (!schema) {
      throw packageError(
        `${file}#plugin.toml`,
        `Cannot read the plugin package ${file}: [context] schemas names "${schemas}", which it does not hold`,
        "Rebuild it with gini plugins bundle",
        "context.schemas",
      );
    }
    files[schemas] = new TextDecoder().decode(schema);
  }
  const sha256 = await sha256Hex(bytes);
  const entrySha256 = await sha256Hex(code);
  return {
    manifest: { ...manifest, bundle: { code, sha256: entrySha256, files } },
    manifestText,
    code,
    sha256,
    entrySha256,
  };
}

/** Parses a manifest or throws its first problem. */
export function manifestOf(text: string, file: string, origin: Manifest["origin"]): Manifest {
  const parsed = parseManifest(text, file, origin);
  if (!parsed.ok) throw parsed.errors[0]!;
  if (parsed.manifest.plugin.core) {
    throw packageError(
      file,
      `Cannot accept plugin "${parsed.manifest.plugin.name}" as core: only plugins shipped with Gini may set core = true`,
      "Set core = false",
      "plugin.core",
    );
  }
  return parsed.manifest;
}

/** The manifest text with its entry set to the package's module. */
export function withPackageEntry(text: string): string {
  const lines = text.split("\n");
  let table = "";
  let header = -1;
  for (const [i, line] of lines.entries()) {
    const t = line.match(/^\s*\[([^\]]+)\]\s*(#.*)?$/);
    if (t) {
      table = t[1]!.trim();
      if (table === "plugin") header = i;
      continue;
    }
    if (table === "plugin" && /^\s*entry\s*=/.test(line)) {
      lines[i] = `entry = "${PACKAGE_ENTRY}"`;
      return lines.join("\n");
    }
  }
  lines.splice(header + 1, 0, `entry = "${PACKAGE_ENTRY}"`);
  return lines.join("\n");
}

/** The package's bytes from its parts; the same parts give the same bytes. */
export function zipPackage(files: Record<string, Uint8Array>): Uint8Array {
  const names = Object.keys(files).sort((a, b) =>
    a === "plugin.toml" ? -1 : b === "plugin.toml" ? 1 : a < b ? -1 : a > b ? 1 : 0
  );
  const ordered: Record<string, [Uint8Array, { mtime: Date; level: 9 }]> = {};
  for (const name of names) ordered[name] = [files[name]!, { mtime: FIXED_TIME, level: 9 }];
  return zipSync(ordered);
}
