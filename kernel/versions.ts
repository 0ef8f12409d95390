/**
 * The versions `gini version` prints besides Gini's own, and the kernel's other constants, in a
 * module that imports nothing: the version command runs without loading the kernel, and a
 * command whose manifests are cached runs without loading their schemas.
 *
 * @module
 */

/** The kernel API version plugins declare compatibility with. */
export const KERNEL_API_VERSION = "1.0.0";

/** The worker protocol's version: bumped on any incompatible change to its messages. */
export const PROTOCOL_VERSION = 1;

/** Context keys the kernel seeds from what the user typed: no plugin may produce them. */
export const KERNEL_SEEDS: readonly string[] = [
  "session.command",
  "session.user_vm_request",
  "session.target_vm",
  "session.plugins",
];
