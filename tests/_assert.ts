/**
 * std-style assertion names over `node:assert` (JSR's @std/assert is unreachable here).
 *
 * @module
 */
import nodeAssert from "node:assert/strict";

export function assert(value: unknown, message?: string): asserts value {
  nodeAssert.ok(value, message);
}

export function assertEquals<T>(
  actual: unknown,
  expected: T,
  message?: string,
): asserts actual is T {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

export function assertMatch(actual: string, pattern: RegExp, message?: string): void {
  nodeAssert.match(actual, pattern, message);
}

export function assertStringIncludes(actual: string, expected: string, message?: string): void {
  nodeAssert.ok(
    actual.includes(expected),
    message ?? `Expected to find ${JSON.stringify(expected)} in:\n${actual.slice(0, 4000)}`,
  );
}

/** Awaits a promise that must reject; returns the error. */
export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  errorClass?: new (...args: never[]) => E,
  includes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (error) {
    if (errorClass) {
      nodeAssert.ok(error instanceof errorClass, `Expected ${errorClass.name}, got ${error}`);
    }
    if (includes) assertStringIncludes((error as Error).message, includes);
    return error as E;
  }
  throw new nodeAssert.AssertionError({ message: "Expected the function to reject" });
}

/** Calls a function that must throw; returns the error. */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  errorClass?: new (...args: never[]) => E,
  includes?: string,
): E {
  try {
    fn();
  } catch (error) {
    if (errorClass) {
      nodeAssert.ok(error instanceof errorClass, `Expected ${errorClass.name}, got ${error}`);
    }
    if (includes) assertStringIncludes((error as Error).message, includes);
    return error as E;
  }
  throw new nodeAssert.AssertionError({ message: "Expected the function to throw" });
}
