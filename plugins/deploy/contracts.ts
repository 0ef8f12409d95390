/**
 * deploy's context keys: what its stages did, which its commands print (and `--json` gives).
 *
 * @module
 */
import type { Installed } from "./_install.ts";
import type { ContextKey } from "../../workers/sdk.ts";
import type { Json } from "../../workers/protocol.ts";

/** `deploy.started`: the VM `start` started, with QEMU's pid or libvirt's URI. */
export type Started = {
  name: string;
  backend: string;
  pid?: number | null;
  uri?: string;
};
export const STARTED: ContextKey<Started> = "deploy.started";

/** `deploy.installed`: what the install stage saw through (null: nothing to install). */
export const INSTALLED: ContextKey<Installed> = "deploy.installed";

/** `deploy.removed`: the VM `remove` deleted. */
export const REMOVED: ContextKey<{ name: string }> = "deploy.removed";

/** One line of `gini ls`. */
export type VmSummary = {
  name: string;
  state: "running" | "paused" | "stopped" | "crashed";
  pid: number | null;
  accel: string;
  vcpus: number;
  memory: string;
  backend: string;
  /** Its port forwards: "127.0.0.1:2222->22/tcp". */
  ports: string[];
  /** How to get in, when it forwards a port to the guest's ssh. */
  ssh: string | null;
  dir: string;
  configFile: string;
};
/** `deploy.vms`: the VMs under `<data>/vms`, by name, with their state (`gini ls`). */
export const VMS: ContextKey<VmSummary[]> = "deploy.vms";

/** `deploy.power`: what a lifecycle command (`start`, `stop`, `kill`, …) did to a VM. */
export type PowerChange = {
  name: string;
  action: "start" | "stop" | "restart" | "kill" | "pause" | "resume" | "save" | "restore";
  /** The state before: "running", "paused", "stopped" or "crashed". */
  before: string;
  outcome:
    | "started"
    | "already-running"
    | "powered-off"
    | "forced"
    | "not-running"
    | "restarted"
    | "killed"
    | "paused"
    | "already-paused"
    | "resumed"
    | "saved"
    | "restored"
    | "waiting";
  /** QEMU's pid, when it started one. */
  pid?: number | null;
};
export const POWER_CHANGE: ContextKey<PowerChange> = "deploy.power";

/** One disk in `gini status`. */
export type DiskStatus = {
  id: string;
  path: string;
  format: string;
  virtualBytes: number;
  /** Bytes allocated on the host (QEMU's actual-size; a stopped VM's file size), if known. */
  allocatedBytes: number | null;
  readonly: boolean;
};

/** `deploy.status`: `gini status NAME`, the history's replay checked against QEMU or libvirt. */
export type VmStatus = {
  name: string;
  state: "running" | "paused" | "stopped" | "crashed";
  backend: string;
  pid: number | null;
  /** When it last started (ISO), from its history. */
  since: string | null;
  vcpus: number;
  memoryBytes: number;
  accel: string;
  disks: DiskStatus[];
  forwards: { protocol: string; address: string; host: number; guest: number }[];
  /** Where its display listens ("vnc://127.0.0.1:5900"), if it has one. */
  display: string | null;
  serialLog: string;
  qmpSocket: string | null;
  /** The guest's addresses its agent reports ("eth0 10.0.2.15/24"); null without an agent. */
  addresses: string[] | null;
  /** The file holding its saved memory and devices (gini save), which start restores. */
  savedState: string | null;
  /** Its history says it runs, but it does not: it ended without Gini (crash, kill, poweroff). */
  unrecordedExit: boolean;
  /** Where its history's checksum chain breaks, if it does. */
  historyBroken: { line: number; reason: string } | null;
  configFile: string;
};
export const STATUS: ContextKey<VmStatus> = "deploy.status";

/** `deploy.history`: `gini history NAME`. */
export type VmHistory = {
  name: string;
  records: { seq: number; at: string; event: string; detail: Json }[];
  broken: { line: number; reason: string } | null;
};
export const HISTORY: ContextKey<VmHistory> = "deploy.history";

/** One difference between a VM's saved definition and its file now. */
export type VmChange = {
  /** The definition's key: "memory.bytes", "disks[root].sizeBytes", "nics[net0].forwards". */
  key: string;
  from: Json;
  to: Json;
  /** apply: taken at the next start; create: a new disk; grow: resized in place; refuse: cannot. */
  how: "apply" | "create" | "grow" | "refuse";
  why?: string;
};

/** `deploy.converge`: what `gini up` of a VM that exists does to it. */
export type Converge = {
  name: string;
  /** new: deployed now; unchanged; changed: the changes are applied. */
  kind: "new" | "unchanged" | "changed";
  /** Its power state before this run. */
  state: "running" | "paused" | "stopped" | "crashed";
  changes: VmChange[];
};
export const CONVERGE: ContextKey<Converge> = "deploy.converge";
