/**
 * Shapes of plain data, checked without a schema library: the worker protocol is parsed by every
 * worker and by the kernel for every message, and zod alone costs a worker about 15 ms to load.
 * A shape checks a value and returns a fresh copy holding only the declared keys (unknown keys
 * are dropped, as zod's `object` drops them), or the path and the reason it was refused.
 *
 * @example
 * ```ts
 * import { check, lit, obj, opt, str } from "./shape.ts";
 *
 * const Hello = obj({ type: lit("hello"), name: str({ max: 20 }), note: opt(str()) });
 * check(Hello, { type: "hello", name: "ada", extra: 1 }); // { ok: true, value: { type: "hello", name: "ada" } }
 * ```
 *
 * @module
 */

/** A refusal: where in the value (keys and indexes) and why. */
export interface ShapeIssue {
  path: (string | number)[];
  message: string;
}

/** A checker of values of type `T`. */
export interface Shape<T> {
  /** The checked copy, or the issue. */
  parse(value: unknown, path: (string | number)[]):
    | { ok: true; value: T }
    | ShapeIssue & {
      ok: false;
    };
  /** Marks an optional key of an object shape. */
  readonly optional?: boolean;
  /** The only values a `lit()` or `oneOf()` accepts, for `tagged()`. */
  readonly literals?: readonly unknown[];
}

/** The type a shape checks. */
export type Infer<S> = S extends Shape<infer T> ? T : never;

type Result<T> = ReturnType<Shape<T>["parse"]>;

const fail = (path: (string | number)[], message: string) =>
  ({ ok: false, path, message }) as const;
const pass = <T>(value: T) => ({ ok: true, value }) as const;

const kind = (value: unknown) =>
  value === null ? "null" : Array.isArray(value) ? "array" : typeof value;

/**
 * A string: at least `min` and at most `max` characters, starting with `startsWith`, matching
 * `pattern` (`what` says what that expects).
 */
export function str(
  limits: { min?: number; max?: number; startsWith?: string; pattern?: RegExp; what?: string } = {},
): Shape<string> {
  return {
    parse(value, path) {
      if (typeof value !== "string") return fail(path, `expected a string, got ${kind(value)}`);
      if (limits.min !== undefined && value.length < limits.min) {
        return fail(path, `expected at least ${limits.min} character(s)`);
      }
      if (limits.pattern && !limits.pattern.test(value)) {
        return fail(path, limits.what ?? `expected a string matching ${limits.pattern}`);
      }
      if (limits.max !== undefined && value.length > limits.max) {
        return fail(path, `expected at most ${limits.max} characters`);
      }
      if (limits.startsWith !== undefined && !value.startsWith(limits.startsWith)) {
        return fail(path, `expected a string starting with "${limits.startsWith}"`);
      }
      return pass(value);
    },
  };
}

/** A finite number; `int` for an integer, with inclusive bounds. */
export function num(limits: { int?: boolean; min?: number; max?: number } = {}): Shape<number> {
  return {
    parse(value, path) {
      if (typeof value !== "number" || !Number.isFinite(value)) {
        return fail(
          path,
          typeof value === "number"
            ? "expected a finite number"
            : `expected a number, got ${kind(value)}`,
        );
      }
      // As zod's int(): a safe integer (beyond 2^53 two ids could be the same number).
      if (limits.int && !Number.isSafeInteger(value)) return fail(path, "expected an integer");
      if (limits.min !== undefined && value < limits.min) {
        return fail(path, `expected a number ≥ ${limits.min}`);
      }
      if (limits.max !== undefined && value > limits.max) {
        return fail(path, `expected a number ≤ ${limits.max}`);
      }
      return pass(value);
    },
  };
}

/** true or false. */
export function bool(): Shape<boolean> {
  return {
    parse: (value, path) =>
      typeof value === "boolean"
        ? pass(value)
        : fail(path, `expected a boolean, got ${kind(value)}`),
  };
}

/** Exactly `literal`. */
export function lit<const T extends string | number | boolean>(literal: T): Shape<T> {
  return {
    literals: [literal],
    parse: (value, path) =>
      value === literal ? pass(literal) : fail(
        path,
        `expected ${JSON.stringify(literal)}, got ${JSON.stringify(value) ?? kind(value)}`,
      ),
  };
}

/** One of `choices`. */
export function oneOf<const T extends string>(choices: readonly T[]): Shape<T> {
  return {
    literals: choices,
    parse: (value, path) =>
      (choices as readonly unknown[]).includes(value)
        ? pass(value as T)
        : fail(path, `expected one of ${choices.map((c) => `"${c}"`).join(", ")}`),
  };
}

/** An array of `item`, of at least `min` and at most `max` items. */
export function arr<T>(item: Shape<T>, limits: { min?: number; max?: number } = {}): Shape<T[]> {
  return {
    parse(value, path) {
      if (!Array.isArray(value)) return fail(path, `expected an array, got ${kind(value)}`);
      if (limits.min !== undefined && value.length < limits.min) {
        return fail(path, `expected at least ${limits.min} item(s)`);
      }
      if (limits.max !== undefined && value.length > limits.max) {
        return fail(path, `expected at most ${limits.max} item(s)`);
      }
      const out: T[] = [];
      for (let i = 0; i < value.length; i++) {
        const r = item.parse(value[i], [...path, i]);
        if (!r.ok) return r;
        out.push(r.value);
      }
      return pass(out);
    },
  };
}

/** A plain object: its prototype Object's or none (not an array, a Uint8Array, a Map…). */
const isRecord = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};

/** Sets a key on a copy without ever touching its prototype (a key named "__proto__"). */
const put = (target: Record<string, unknown>, key: string, value: unknown) =>
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });

/** An object with any string keys, each value `item`. */
export function rec<T>(item: Shape<T>): Shape<Record<string, T>> {
  return {
    parse(value, path) {
      if (!isRecord(value)) return fail(path, `expected an object, got ${kind(value)}`);
      const out: Record<string, T> = {};
      for (const [key, v] of Object.entries(value)) {
        const r = item.parse(v, [...path, key]);
        if (!r.ok) return r;
        put(out, key, r.value);
      }
      return pass(out);
    },
  };
}

/** The key may be absent (or undefined); absent in the copy then. */
export function opt<T>(shape: Shape<T>): Shape<T | undefined> & { readonly optional: true } {
  return {
    parse: (value, path) => value === undefined ? pass(undefined) : shape.parse(value, path),
    optional: true,
  };
}

/** The key may be absent; `fallback` in the copy then. */
export function withDefault<T>(
  shape: Shape<T>,
  fallback: () => T,
): Shape<T> & { readonly optional: true; readonly defaulted: true } {
  return {
    parse: (value, path) => value === undefined ? pass(fallback()) : shape.parse(value, path),
    optional: true,
    defaulted: true,
  };
}

type Optional<S> = S extends { defaulted: true } ? false : S extends { optional: true } ? true
: false;
type ObjectOf<F extends Record<string, Shape<unknown>>> =
  & { [K in keyof F as Optional<F[K]> extends true ? never : K]: Infer<F[K]> }
  & { [K in keyof F as Optional<F[K]> extends true ? K : never]?: Infer<F[K]> };

type Simplify<T> = { [K in keyof T]: T[K] } & unknown;

/** An object with these keys; others are dropped from the copy (refused, when `strict`). */
export function obj<F extends Record<string, Shape<unknown>>>(
  fields: F,
  options: { strict?: boolean } = {},
): Shape<Simplify<ObjectOf<F>>> & { fields: F } {
  const entries = Object.entries(fields);
  return {
    fields,
    parse(value, path) {
      if (!isRecord(value)) return fail(path, `expected an object, got ${kind(value)}`);
      if (options.strict) {
        const unknown = Object.keys(value).find((key) => !Object.hasOwn(fields, key));
        if (unknown !== undefined) return fail([...path, unknown], "unrecognized key");
      }
      const out: Record<string, unknown> = {};
      for (const [key, shape] of entries) {
        const given = Object.hasOwn(value, key) ? value[key] : undefined;
        if (given === undefined && !shape.optional) return fail([...path, key], "required");
        const r = shape.parse(given, [...path, key]);
        if (!r.ok) return r;
        if (r.value !== undefined) put(out, key, r.value);
      }
      return pass(out as Simplify<ObjectOf<F>>);
    },
  };
}

/** One of several object shapes, chosen by the literal of their `type` key. */
export function tagged<S extends Shape<{ type: string }> & { fields: { type: Shape<string> } }>(
  variants: readonly S[],
): Shape<Infer<S>> {
  const byType = new Map<unknown, S>();
  for (const variant of variants) {
    const accepted = variant.fields.type.literals;
    if (!accepted) throw new Error("tagged(): a variant's type must be lit() or oneOf()");
    for (const candidate of accepted) {
      if (byType.has(candidate)) throw new Error(`tagged(): two variants of type "${candidate}"`);
      byType.set(candidate, variant);
    }
  }
  return {
    parse(value, path) {
      if (!isRecord(value)) return fail(path, `expected an object, got ${kind(value)}`);
      const variant = byType.get(value.type);
      if (!variant) {
        return fail(
          [...path, "type"],
          `expected one of ${[...byType.keys()].map((t) => `"${t}"`).join(", ")}`,
        );
      }
      return variant.parse(value, path) as Result<Infer<S>>;
    },
  };
}

/** Plain JSON: null, booleans, finite numbers, strings, arrays and objects of JSON. */
export const json: Shape<Json> = {
  parse(value, path) {
    if (value === null || typeof value === "boolean" || typeof value === "string") {
      return pass(value);
    }
    if (typeof value === "number") {
      return Number.isFinite(value) ? pass(value) : fail(path, "expected a finite number");
    }
    if (Array.isArray(value)) return arr(json).parse(value, path);
    if (isRecord(value)) return rec(json).parse(value, path);
    return fail(path, `expected JSON, got ${kind(value)}`);
  },
};

/** Plain JSON-like data, as context values and op arguments are. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Checks `value` against `shape`. */
export function check<T>(shape: Shape<T>, value: unknown) {
  return shape.parse(value, []);
}

/**
 * `shape` with zod's `safeParse`, for what takes either (an op kind's arguments): the kernel's
 * busiest ops check theirs without loading zod.
 */
export function zodLike<T>(shape: Shape<T>): {
  safeParse(
    value: unknown,
  ):
    | { success: true; data: T }
    | { success: false; error: { issues: { path: (string | number)[]; message: string }[] } };
} {
  return {
    safeParse(value) {
      const result = shape.parse(value, []);
      return result.ok
        ? { success: true, data: result.value }
        : { success: false, error: { issues: [{ path: result.path, message: result.message }] } };
    },
  };
}
