/**
 * The versions `gini version` prints besides Gini's own, in a module that imports nothing: the
 * version command runs without loading the kernel.
 *
 * @module
 */

/** The kernel API version plugins declare compatibility with. */
export const KERNEL_API_VERSION = "1.0.0";

/** The worker protocol's version: bumped on any incompatible change to its messages. */
export const PROTOCOL_VERSION = 1;
