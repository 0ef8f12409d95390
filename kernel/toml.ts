/**
 * TOML files checked against zod schemas, with errors that name the file, the
 * line and column, the key, what was expected, and "did you mean" for typos.
 *
 * @module
 */
import { parse, TomlError } from "smol-toml";
import type { z } from "zod";
import { didYouMean, type GiniError, type GiniErrorOptions } from "./errors.ts";

/** Makes the error a caller wants (`ManifestError`, `ConfigError`). */
export type ErrorFactory = (message: string, options: GiniErrorOptions) => GiniError;

interface Located {
  path: string;
  line: number;
  column: number;
}

/** Every table header and key in a TOML source, with its position. Dotted paths; arrays of tables indexed. */
function indexKeys(source: string): Located[] {
  const found: Located[] = [];
  const arrayCounts = new Map<string, number>();
  let table: string[] = [];
  const lines = source.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!;
    const arrayHeader = text.match(/^\s*\[\[\s*([^\]]+?)\s*\]\]/);
    const header = arrayHeader ? undefined : text.match(/^\s*\[\s*([^\]]+?)\s*\]/);
    if (arrayHeader) {
      const name = arrayHeader[1]!.replaceAll('"', "");
      const index = arrayCounts.get(name) ?? 0;
      arrayCounts.set(name, index + 1);
      table = [...name.split("."), String(index)];
      found.push({ path: table.join("."), line: i + 1, column: text.indexOf("[") + 1 });
      continue;
    }
    if (header) {
      table = header[1]!.replaceAll('"', "").split(".");
      found.push({ path: table.join("."), line: i + 1, column: text.indexOf("[") + 1 });
      continue;
    }
    const key = text.match(/^(\s*)("([^"]+)"|[A-Za-z0-9_\-.]+)\s*=/);
    if (key) {
      const name = key[3] ?? key[2]!;
      found.push({ path: [...table, name].join("."), line: i + 1, column: key[1]!.length + 1 });
    }
  }
  return found;
}

/** The line and column of the deepest existing prefix of `path` in `source`. */
export function locateKey(
  source: string,
  path: readonly PropertyKey[],
): { line: number; column: number } | undefined {
  const keys = indexKeys(source);
  for (let length = path.length; length > 0; length--) {
    const wanted = path.slice(0, length).map(String).join(".");
    const hit = keys.find((k) => k.path === wanted);
    if (hit) return { line: hit.line, column: hit.column };
  }
  return undefined;
}

function describeExpectation(issue: z.core.$ZodIssue, value: unknown): string {
  switch (issue.code) {
    case "invalid_type":
      return value === undefined
        ? `is missing: expected ${issue.expected}`
        : `expected ${issue.expected}, found ${Array.isArray(value) ? "array" : typeof value}`;
    case "invalid_value":
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    default:
      return issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
  }
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let current = data;
  for (const part of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<PropertyKey, unknown>)[part];
  }
  return current;
}

/** Turns one zod issue into an error naming file, line, key and expectation. */
export function issueToError(
  issue: z.core.$ZodIssue,
  data: unknown,
  source: string,
  file: string,
  make: ErrorFactory,
  knownKeys?: (path: readonly PropertyKey[]) => string[],
): GiniError {
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0]!;
    const path = [...issue.path, key];
    const where = locateKey(source, path);
    const known = knownKeys?.(issue.path) ?? [];
    const tableName = issue.path.length ? `[${issue.path.map(String).join(".")}]` : "the top level";
    return make(`Cannot use unknown key "${path.map(String).join(".")}" in ${tableName}`, {
      location: { file, key: path.map(String).join("."), ...where },
      hint: didYouMean(key, known) ??
        (known.length ? `Known keys here: ${known.join(", ")}` : "Remove the key"),
    });
  }
  const value = valueAt(data, issue.path);
  const key = issue.path.map(String).join(".") || "(file)";
  const where = locateKey(source, issue.path);
  return make(`Cannot use "${key}": ${describeExpectation(issue, value)}`, {
    location: { file, key, ...where },
    hint: `Fix "${key}" in ${file}${where ? ` at line ${where.line}` : ""}`,
  });
}

/**
 * Parses TOML and checks it against a schema. Returns every problem, not just the first.
 */
export function parseTomlFile<S extends z.ZodType>(
  source: string,
  file: string,
  schema: S,
  make: ErrorFactory,
  knownKeys?: (path: readonly PropertyKey[]) => string[],
): { ok: true; value: z.output<S> } | { ok: false; errors: GiniError[] } {
  let data: unknown;
  try {
    data = parse(source);
  } catch (error) {
    if (error instanceof TomlError) {
      const firstLine = error.message.split("\n")[0] ?? error.message;
      return {
        ok: false,
        errors: [make(`Cannot parse TOML: ${firstLine}`, {
          location: { file, line: error.line, column: error.column },
          hint: "Check the quoting and brackets on that line",
        })],
      };
    }
    throw error;
  }
  const result = schema.safeParse(data);
  if (result.success) return { ok: true, value: result.data };
  return {
    ok: false,
    errors: result.error.issues.map((issue) =>
      issueToError(issue, data, source, file, make, knownKeys)
    ),
  };
}

/** The keys a zod object schema allows at `path`, for "did you mean". */
export function schemaKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  // deno-lint-ignore no-explicit-any
  let current: any = schema;
  const unwrap = () => {
    while (
      current?.def &&
      ["optional", "default", "nullable", "pipe", "prefault"].includes(current.def.type)
    ) {
      current = current.def.type === "pipe" ? current.def.in : current.def.innerType;
    }
  };
  unwrap();
  for (const part of path) {
    if (current?.def?.type === "object") current = current.def.shape[part as string];
    else if (current?.def?.type === "array") current = current.def.element;
    else if (current?.def?.type === "record") current = current.def.valueType;
    else return [];
    unwrap();
  }
  return current?.def?.type === "object" ? Object.keys(current.def.shape) : [];
}
