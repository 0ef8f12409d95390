/**
 * What `gini vfio plan|apply` asks for: the flags the kernel parsed from the manifest's
 * `[[commands]]` entry and seeded as `session.command`.
 *
 * @module
 */
import type { ContextKey, StageContext } from "../../workers/sdk.ts";

/** `session.command` of `gini vfio plan|apply`, by flag name as the manifest declares them. */
type VfioCommand = {
  plugin: string;
  path: string;
  flags: {
    device?: string[];
    force?: boolean;
    "bind-now"?: boolean;
    initramfs?: string | null;
    bootloader?: string | null;
  };
};
const COMMAND: ContextKey<VfioCommand> = "session.command";

/** The devices and choices of one VFIO configuration. */
export interface VfioRequest {
  devices: string[];
  force: boolean;
  bindNow: boolean;
  initramfs?: string;
  bootloader?: string;
}

/**
 * The request of the running `gini vfio plan|apply`; empty when another command runs the stage
 * (`gini run vfio:configure`), which then stops at "Cannot plan VFIO without devices".
 */
export function vfioRequest(ctx: StageContext): VfioRequest {
  const command = ctx.get(COMMAND);
  // Only vfio's own commands carry a request: another plugin's command never steers it.
  const own = command?.plugin === "vfio" && ["vfio plan", "vfio apply"].includes(command.path);
  const flags = own ? command.flags : {};
  return {
    devices: flags.device ?? [],
    force: flags.force ?? false,
    bindNow: flags["bind-now"] ?? false,
    ...(flags.initramfs ? { initramfs: flags.initramfs } : {}),
    ...(flags.bootloader ? { bootloader: flags.bootloader } : {}),
  };
}
