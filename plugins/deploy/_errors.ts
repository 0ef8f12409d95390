/**
 * deploy's refusals: bad input or a VM in the wrong state, which the kernel shows as a usage error
 * (exit 2) with the hint. Plain, without the worker SDK, so any deploy module may throw one.
 *
 * @module
 */

/** A refusal with what to do instead. */
export function usage(message: string, hint: string): Error {
  return Object.assign(new Error(message), { code: "USAGE", hint });
}
