/**
 * windows-setup's context key for other plugins: `session.windows_media`, what a Windows VM is
 * installed from (null for a VM without `[windows]`): the user's installation ISO, the virtio-win
 * ISO, and the FAT image holding `autounattend.xml`, the `$WinPEDriver$` folder and Gini's
 * first-logon files; and what marks the installation done.
 *
 * @module
 */
import { z } from "zod";
import type { ContextKey, Plain } from "../../workers/sdk.ts";

export const WindowsMediaSchema = z.object({
  /** The Windows installation ISO (the user's own, or downloaded and verified). */
  installer: z.string(),
  /** The virtio-win ISO the drivers were taken from. */
  drivers: z.string(),
  /** The FAT image with autounattend.xml (raw). */
  unattend: z.string(),
  /** The image installed: its index in sources/install.wim and its name (null in a dry run). */
  image: z.object({ index: z.number().int().positive(), name: z.string() }).nullable(),
  /** The answer file's profile ("11-24h2"…). */
  profile: z.string(),
  /**
   * The installation is done (deploy saw the done marker and wrote `record`): the VM boots from
   * its disk and gets no media; nothing was read or written for it.
   */
  installed: z.boolean(),
  /** The file deploy writes when the installation is done. */
  record: z.string(),
  /** What the installation CD's boot loader prints when it wants a key to boot from it. */
  prompt: z.string(),
  /** The line the first logon writes on COM1 when the installation is done. */
  done: z.string(),
  /** How long gini up waits for it, in minutes (`[windows] install_timeout`). */
  timeoutMinutes: z.number().int().positive(),
});
export type WindowsMedia = Plain<z.infer<typeof WindowsMediaSchema>>;

/** `session.windows_media`: the media of a Windows installation, or null. */
export const WINDOWS_MEDIA: ContextKey<WindowsMedia | null> = "session.windows_media";

export const contracts = {
  [WINDOWS_MEDIA]: WindowsMediaSchema.nullable(),
};
