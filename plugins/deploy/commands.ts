/**
 * How deploy presents the kernel's verbs it serves (`up`, `create`, `down`, `rm`) and its own
 * `ls`: the text a person reads and the data `--json` prints.
 *
 * @module
 */
import {
  type CommandDefinition,
  type CommandView,
  contextValue,
  TARGET_VM,
} from "../../workers/sdk.ts";
import type { VmDefinition } from "../qemu_setup/contracts.ts";
import { LIBVIRT_XML, VM_DEFINITION } from "../qemu_setup/keys.ts";
import { startScript } from "../qemu_setup/start_script.ts";
import {
  CONVERGE,
  type Converge,
  HISTORY,
  INSTALLED,
  POWER_CHANGE,
  type PowerChange,
  STARTED,
  type Started,
  STATUS,
  type VmHistory,
  VMS,
  type VmStatus,
  type VmSummary,
} from "./contracts.ts";
import { changeLine } from "./_converge.ts";
import { accessCommands } from "./_access.ts";

/** Commands whose `render` is in a module imported when one of them is first rendered. */
function later(
  paths: string[],
  load: () => Promise<Record<string, CommandDefinition>>,
): Record<string, CommandDefinition> {
  return Object.fromEntries(paths.map((path) => [path, {
    render: async (view: CommandView) => {
      const command = (await load())[path];
      if (!command) throw new Error(`deploy: the module for "${path}" does not render it`);
      return await command.render(view);
    },
  }]));
}

/** The VM's definition, its domain XML and how it started: what `up --json` prints besides the plan. */
function deployed(view: CommandView) {
  const def = contextValue(view, VM_DEFINITION)!;
  const xml = contextValue(view, LIBVIRT_XML)!;
  const started = contextValue(view, STARTED) ?? null;
  return { def, xml, started, data: { vmDefinition: def, libvirtXml: xml, started } };
}

/** What `up` does to a VM that exists: the changes, like `terraform plan`. */
function convergeText(plan: Converge | undefined, dryRun: boolean): string[] {
  if (!plan || plan.kind === "new") return [];
  if (plan.kind === "unchanged") {
    return [
      plan.state === "stopped"
        ? `VM "${plan.name}" exists and its file is unchanged: ${
          dryRun ? "up would start" : "started"
        } it`
        : `VM "${plan.name}" is ${plan.state} and its file is unchanged: nothing to do`,
    ];
  }
  return [
    `VM "${plan.name}" exists; ${
      dryRun ? "up would apply" : "applied"
    } ${plan.changes.length} change(s) from its file:`,
    ...plan.changes.map(changeLine),
    "",
  ];
}

function upText(
  def: VmDefinition,
  xml: string,
  started: Started | null,
  dryRun: boolean,
  plan: Converge | undefined,
) {
  const changes = convergeText(plan, dryRun);
  if (dryRun) {
    return [
      ...changes,
      "QEMU command line (start.sh):",
      startScript(def),
      "Domain XML (vm.xml):",
      xml,
    ];
  }
  if (plan && plan.kind === "unchanged" && plan.state !== "stopped") return changes;
  const forwards = def.nics.flatMap((n) =>
    n.forwards.map((f) => `${f.protocol} ${f.address}:${f.host} → guest ${f.guest}`)
  );
  return [
    ...changes,
    `VM "${def.name}" started${
      started?.pid ? ` (pid ${started.pid})` : ""
    } under ${def.accel.toUpperCase()}`,
    `  serial log: ${def.paths.serialLog}`,
    def.backend === "libvirt"
      ? `  libvirt:    virsh -c ${def.libvirtUri} dominfo ${def.name} (or virt-manager)`
      : `  QMP:        ${def.paths.qmpSocket}`,
    ...(forwards.length ? [`  forwards:   ${forwards.join(", ")}`] : []),
    ...(def.display.type === "vnc"
      ? [`  display:    VNC on 127.0.0.1:${5900 + (def.display.port ?? 0)}`]
      : def.display.type === "spice"
      ? [`  display:    SPICE on 127.0.0.1:${def.display.port ?? 5930}`]
      : []),
    `  stop it:    gini stop ${def.name}`,
  ];
}

function createText(def: VmDefinition, xml: string, dryRun: boolean) {
  if (dryRun) {
    return ["QEMU command line (start.sh):", startScript(def), "Domain XML (vm.xml):", xml];
  }
  return [
    `VM "${def.name}" created, not started`,
    `  files: ${def.paths.dir}`,
    def.backend === "libvirt"
      ? `  start it: virsh -c ${def.libvirtUri} start ${def.name}`
      : `  start it: ${def.paths.startScript}`,
  ];
}

/** The text of `gini ls`: a table, one VM a line. */
export function renderVms(vms: VmSummary[]): string {
  if (vms.length === 0) {
    return 'No VMs yet: create one with "gini new NAME" and "gini up NAME.toml"';
  }
  const rows = [
    ["NAME", "STATE", "BACKEND", "CPU", "MEMORY", "PORTS", "GET IN"],
    ...vms.map((v) => [
      v.name,
      `${v.state}${v.pid ? ` (${v.pid})` : ""}`,
      `${v.backend}/${v.accel}`,
      String(v.vcpus),
      v.memory,
      v.ports.join(" ") || "-",
      v.ssh ?? "-",
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd())
    .join("\n");
}

/** Bytes in words: "512 MiB", "1.2 GiB". */
function size(bytes: number): string {
  const gib = bytes / 1024 ** 3;
  return gib >= 1
    ? `${Number.isInteger(gib) ? gib : gib.toFixed(1)} GiB`
    : `${Math.round(bytes / 1024 ** 2)} MiB`;
}

/** How long ago an ISO time was, in words: "3 min", "2 h 5 min". */
function since(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h} h ${m % 60} min` : `${Math.floor(h / 24)} days`;
}

/** The text of `gini status NAME`. */
export function renderStatus(s: VmStatus): string {
  const lines = [
    `VM "${s.name}": ${s.state}${s.pid ? ` (pid ${s.pid})` : ""}${
      s.since ? `, up ${since(s.since)} (since ${s.since})` : ""
    }`,
    `  ${s.vcpus} vCPU, ${
      Math.round(s.memoryBytes / 1024 ** 2)
    } MiB, ${s.backend} under ${s.accel.toUpperCase()}`,
    ...s.disks.map((d) =>
      `  disk ${d.id}: ${d.path} (${d.format}${d.readonly ? ", read-only" : ""}) ${
        d.allocatedBytes === null ? "" : `${size(d.allocatedBytes)} used of `
      }${size(d.virtualBytes)}`
    ),
    ...s.forwards.map((f) => `  forward: ${f.protocol} ${f.address}:${f.host} → guest ${f.guest}`),
    ...(s.display ? [`  display: ${s.display}`] : []),
    ...(s.addresses?.length ? [`  addresses: ${s.addresses.join(", ")}`] : []),
    `  serial log: ${s.serialLog}`,
    ...(s.qmpSocket ? [`  QMP: ${s.qmpSocket}`] : []),
    `  file: ${s.configFile}`,
  ];
  if (s.savedState) {
    lines.push(`  saved state: ${s.savedState} (gini start ${s.name} resumes it where it was)`);
  }
  if (s.state === "crashed") {
    lines.push(
      `  ! its kernel panicked (the pvpanic device said so); QEMU keeps it paused for inspection: gini restart ${s.name} boots it again, gini kill ${s.name} stops it`,
    );
  }
  if (s.unrecordedExit) {
    lines.push(
      `  ! its history says it was running: it ended without Gini (a crash, a kill, or the guest powered off); see gini history ${s.name}`,
    );
  }
  if (s.historyBroken) {
    lines.push(
      `  ! its history is broken at line ${s.historyBroken.line}: ${s.historyBroken.reason}`,
    );
  }
  return lines.join("\n");
}

/** The text of `gini history NAME`. */
export function renderHistory(h: VmHistory): string {
  const detail = (d: unknown) => {
    if (d === null || typeof d !== "object") return "";
    const changes = (d as { changes?: { key: string }[] }).changes;
    if (changes) return ` (${changes.map((c) => c.key).join(", ")})`;
    return ` ${JSON.stringify(d)}`;
  };
  const lines = h.records.map((r) =>
    `${String(r.seq).padStart(4)}  ${r.at}  ${r.event}${detail(r.detail)}`
  );
  if (!lines.length) lines.push(`No history for VM "${h.name}" yet`);
  if (h.broken) {
    lines.push(
      `! The log is broken at line ${h.broken.line}: ${h.broken.reason}; the records after it are not shown`,
    );
  }
  return lines.join("\n");
}

const POWER_WORDS: Record<PowerChange["outcome"], string> = {
  started: "started",
  "already-running": "is already running",
  "powered-off": "stopped (powered off)",
  forced: "stopped (forced after the timeout)",
  "not-running": "is not running",
  restarted: "restarted",
  killed: "killed",
  paused: "paused",
  "already-paused": "is already paused",
  resumed: "resumed",
  saved: "saved (its memory and devices are in saved.state; gini start or restore brings it back)",
  restored: "restored from its saved state",
  waiting: "waits for its state (it runs once gini migrate --to sends it)",
};

/** The output of a lifecycle command: what happened, or in a dry run what would. */
function powerOutput(view: Parameters<CommandDefinition["render"]>[0]) {
  const change = contextValue(view, POWER_CHANGE)!;
  const verb = view.dryRun ? `would ${change.action}` : POWER_WORDS[change.outcome];
  const text = view.dryRun && !["already-running", "not-running", "already-paused"].includes(
      change.outcome,
    )
    ? `VM "${change.name}" is ${change.before}: gini ${verb} it`
    : `VM "${change.name}" ${POWER_WORDS[change.outcome]}${
      change.pid ? ` (pid ${change.pid})` : ""
    }`;
  return { text, data: change };
}

/** deploy's output for each command and verb it serves. */
export const commands: Record<string, CommandDefinition> = {
  ...accessCommands,
  // Rendered by modules imported when first needed: a status evaluates none of their code.
  ...later(
    ["snapshot create", "snapshot revert", "snapshot delete", "snapshot list"],
    async () => (await import("./_snapshots.ts")).snapshotCommands,
  ),
  ...later(
    ["attach", "detach", "forward"],
    async () => (await import("./_hotplug.ts")).hotplugCommands,
  ),
  ...later(["migrate"], async () => (await import("./_migrate.ts")).migrateCommands),
  up: {
    render(view) {
      const { def, xml, started, data } = deployed(view);
      const plan = contextValue(view, CONVERGE);
      return {
        text: upText(def, xml, started, view.dryRun, plan).join("\n"),
        data: { ...data, converge: plan ?? null },
      };
    },
  },
  create: {
    render(view) {
      const { def, xml, data } = deployed(view);
      return { text: createText(def, xml, view.dryRun).join("\n"), data };
    },
  },
  settle: {
    render(view) {
      const installed = contextValue(view, INSTALLED) ?? null;
      if (!installed) return { text: "", data: null };
      const text = !installed.done
        ? `VM "${installed.name}": its installation is not done`
        : installed.minutes || installed.keySent
        ? `VM "${installed.name}" is installed (${installed.minutes} min): its installation media are detached; log in with gini ssh ${installed.name}`
        : `VM "${installed.name}" is installed`;
      return { text, data: installed };
    },
  },
  down: { render: powerOutput },
  start: { render: powerOutput },
  stop: { render: powerOutput },
  restart: { render: powerOutput },
  kill: { render: powerOutput },
  pause: { render: powerOutput },
  resume: { render: powerOutput },
  save: { render: powerOutput },
  restore: { render: powerOutput },
  status: {
    render(view) {
      const status = contextValue(view, STATUS)!;
      return { text: renderStatus(status), data: status };
    },
  },
  history: {
    render(view) {
      const history = contextValue(view, HISTORY)!;
      return { text: renderHistory(history), data: history };
    },
  },
  rm: {
    render(view) {
      const { name } = contextValue(view, TARGET_VM)!;
      return `VM "${name}" removed`;
    },
  },
  ls: {
    render(view) {
      const vms = contextValue(view, VMS) ?? [];
      return { text: renderVms(vms), data: vms };
    },
  },
};
