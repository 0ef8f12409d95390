/**
 * A VM's definition made again after a change of devices: its argv and domain XML. Apart from
 * `_vm.ts` because it loads QEMU's and libvirt's builders, which only a change needs (a status
 * or a start loads neither).
 *
 * @module
 */
import type { StageContext } from "../../workers/sdk.ts";
import type { VmDefinition } from "../qemu_setup/contracts.ts";
import { libvirtXml, qemuArgv } from "../qemu_setup/hotplug.ts";
import { own } from "./_files.ts";
import { writeDefinition } from "./_vm.ts";

/** The definition with another set of disks, NICs or USB devices, its argv made again. */
export function redefine(
  def: VmDefinition,
  change: Partial<Pick<VmDefinition, "disks" | "nics" | "usb">>,
): VmDefinition {
  const { argv: _argv, ...rest } = { ...def, ...change };
  return { ...rest, argv: qemuArgv(rest) } as VmDefinition;
}

/**
 * Writes a changed definition again ({@linkcode writeDefinition}), its domain XML made with the
 * NVRAM format the saved one has (libvirt 9.2.0 or later reads qcow2 variables).
 */
export async function rewriteDefinition(ctx: StageContext, def: VmDefinition): Promise<void> {
  const oldXml = await own.readText(def.paths.domainXml).catch(() => "");
  const nvramFormat = oldXml.includes('<nvram format="qcow2">');
  await writeDefinition(ctx, def, libvirtXml(def, { nvramFormat }));
}
