/**
 * linux-setup's context keys for other plugins: `session.guest_base_image`, the image a Linux
 * guest's first disk is made from, and `session.guest_seed`, its cloud-init seed ISO (both null
 * for a VM without `[linux]`).
 *
 * @module
 */
import type { ContextKey } from "../../workers/sdk.ts";

/** A guest's base image: a catalogue image (downloaded and verified), a local file or a URL. */
export type GuestBaseImage = {
  path: string;
  /** "qcow2" or "raw", as `qemu-img info` says. */
  format: string;
  /** Null in a dry run before the image is downloaded. */
  virtualSize: number | null;
  /** The URL or path it came from. */
  source: string;
};

/** The base image of the VM's first disk, or null. */
export const GUEST_BASE_IMAGE: ContextKey<GuestBaseImage | null> = "session.guest_base_image";

/** The cloud-init NoCloud seed ISO (volume `cidata`) beside the VM, or null. */
export const GUEST_SEED: ContextKey<{ path: string } | null> = "session.guest_seed";
