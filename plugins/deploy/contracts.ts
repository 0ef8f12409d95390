/**
 * deploy's context keys: what its stages did, which its commands print (and `--json` gives).
 *
 * @module
 */
import type { ContextKey } from "../../workers/sdk.ts";

/** `deploy.started`: the VM `start` started, with QEMU's pid or libvirt's URI. */
export type Started = { name: string; backend: string; pid?: number | null; uri?: string };
export const STARTED: ContextKey<Started> = "deploy.started";

/** `deploy.stopped`: how `power-down` ended the VM. */
export type Stopped = { name: string; how: "not-running" | "acpi" | "quit" };
export const STOPPED: ContextKey<Stopped> = "deploy.stopped";

/** `deploy.removed`: the VM `remove` deleted. */
export const REMOVED: ContextKey<{ name: string }> = "deploy.removed";

/** One line of `gini ls`. */
export type VmSummary = {
  name: string;
  state: "running" | "stopped";
  pid: number | null;
  accel: string;
  vcpus: number;
  memory: string;
  backend: string;
  dir: string;
  configFile: string;
};
/** `deploy.vms`: the VMs under `<data>/vms`, by name, with their state (`gini ls`). */
export const VMS: ContextKey<VmSummary[]> = "deploy.vms";
