/**
 * The context keys qemu-setup produces, apart from their zod schemas (`contracts.ts`): a plugin
 * that only reads a key imports it from here, and its worker does not load zod.
 *
 * @module
 */
import type { ContextKey } from "../../workers/sdk.ts";
import type { VmDefinition } from "./contracts.ts";
import type { VmConfig } from "./vm_schema.ts";

/** `session.vm_definition`: the VM definition deploy turns into files and a running VM. */
export const VM_DEFINITION: ContextKey<VmDefinition> = "session.vm_definition";
/** `qemu_setup.config`: the VM file, checked and with its defaults (plugins that build a guest read it). */
export const VM_CONFIG: ContextKey<VmConfig> = "qemu_setup.config";
/** `session.libvirt_xml`: the libvirt domain of the VM definition. */
export const LIBVIRT_XML: ContextKey<string> = "session.libvirt_xml";
