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
import { LIBVIRT_XML, VM_DEFINITION, type VmDefinition } from "../qemu_setup/contracts.ts";
import { startScript } from "../qemu_setup/start_script.ts";
import { STARTED, type Started, STOPPED, VMS, type VmSummary } from "./contracts.ts";

/** The VM's definition, its domain XML and how it started: what `up --json` prints besides the plan. */
function deployed(view: CommandView) {
  const def = contextValue(view, VM_DEFINITION)!;
  const xml = contextValue(view, LIBVIRT_XML)!;
  const started = contextValue(view, STARTED) ?? null;
  return { def, xml, started, data: { vmDefinition: def, libvirtXml: xml, started } };
}

function upText(def: VmDefinition, xml: string, started: Started | null, dryRun: boolean) {
  if (dryRun) {
    return ["QEMU command line (start.sh):", startScript(def), "Domain XML (vm.xml):", xml];
  }
  const forwards = def.nics.flatMap((n) =>
    n.forwards.map((f) => `${f.protocol} ${f.address}:${f.host} → guest ${f.guest}`)
  );
  return [
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
    `  stop it:    gini down ${def.name}`,
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

/** The text of `gini ls`. */
export function renderVms(vms: VmSummary[]): string {
  return vms.length === 0
    ? 'No VMs yet: create one with "gini new NAME" and "gini up NAME.toml"'
    : vms.map((v) =>
      `${v.name.padEnd(20)} ${v.state.padEnd(8)} ${
        v.accel.padEnd(4)
      } ${v.vcpus} vCPU  ${v.memory}  ${v.backend}${v.pid ? `  pid ${v.pid}` : ""}`
    ).join("\n");
}

/** deploy's output for each command and verb it serves. */
export const commands: Record<string, CommandDefinition> = {
  up: {
    render(view) {
      const { def, xml, started, data } = deployed(view);
      return { text: upText(def, xml, started, view.dryRun).join("\n"), data };
    },
  },
  create: {
    render(view) {
      const { def, xml, data } = deployed(view);
      return { text: createText(def, xml, view.dryRun).join("\n"), data };
    },
  },
  down: {
    render(view) {
      const stopped = contextValue(view, STOPPED)!;
      const { name } = contextValue(view, TARGET_VM)!;
      return {
        text: stopped.how === "not-running"
          ? `VM "${name}" is not running`
          : `VM "${name}" stopped (${stopped.how === "acpi" ? "powered off" : "forced"})`,
        data: stopped,
      };
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
