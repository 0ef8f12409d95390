/**
 * custom-kexts' context key: `opencore.custom_kexts`, the user's own kexts that opencore's
 * `assemble` copies into the EFI tree and enables after its built-in ones.
 *
 * @module
 */
import type { ContextKey } from "../../workers/sdk.ts";

/** The kexts to enable (Kernel.Add entries) and the files to copy (to is a path in the tree). */
export type CustomKexts = {
  kexts: { bundle: string; executable: string; comment: string }[];
  copies: { from: string; to: string }[];
};

/** The user's kexts for the VM's OpenCore build (empty lists when it has none). */
export const CUSTOM_KEXTS: ContextKey<CustomKexts> = "opencore.custom_kexts";
