/**
 * macos-recovery's context key: `session.macos_recovery`, the recovery image `prepare` fetched,
 * verified and converted for a macOS VM (null for other VMs). qemu-setup boots it as an overlay.
 *
 * @module
 */
import type { ContextKey } from "../../workers/sdk.ts";

/** A release's recovery image, converted to raw in the cache. */
export type RecoveryImage = {
  path: string;
  /** Null in a dry run before the image exists. */
  sizeBytes: number | null;
  /** The release's name ("sonoma"). */
  release: string;
  /** Whether the image was in the cache already. */
  cached: boolean;
};

/** The recovery image of the VM's release, or null for a VM that is not macOS. */
export const MACOS_RECOVERY: ContextKey<RecoveryImage | null> = "session.macos_recovery";
