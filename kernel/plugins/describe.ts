/**
 * What `gini plugins list|info|graph` show: plain data for `--json` and text.
 *
 * @module
 */
import { join } from "../../workers/path.ts";
import { didYouMean, UsageError } from "../errors.ts";
import { sha256Hex } from "../ops/_fs.ts";
import type { Manifest, VmPatchScope } from "./manifest.ts";
import type { Resolution } from "./resolve.ts";

/** One plugin as `gini plugins list --json` prints it. */
export interface PluginSummary {
  name: string;
  version: string;
  description: string;
  author: string;
  core: boolean;
  origin: Manifest["origin"];
  priority: string;
  file: string;
  dependencies: Record<string, string>;
  optionalDependencies: Record<string, string>;
  permissions: Manifest["permissions"];
  ops: Manifest["ops"];
  stages: { id: string; after: string[]; reads: string[]; writes: string[]; timeoutMs: number }[];
  events: string[];
  /** The parts of the VM definition its `on_pre_vm_start` patches may change beyond the open ones. */
  vmPatch: VmPatchScope[];
  hooks: string[];
  /** Command paths the plugin adds (`vfio plan`). */
  commands: string[];
}

/** The summary of a manifest. */
export function pluginSummary(m: Manifest): PluginSummary {
  return {
    name: m.plugin.name,
    version: m.plugin.version,
    description: m.plugin.description,
    author: m.plugin.author,
    core: m.plugin.core,
    origin: m.origin,
    priority: m.plugin.priority.text,
    file: m.file,
    dependencies: m.dependencies,
    optionalDependencies: m.optional_dependencies,
    permissions: m.permissions,
    ops: m.ops,
    stages: m.stages.map((s) => ({
      id: `${m.plugin.name}:${s.name}`,
      after: s.after,
      reads: s.reads,
      writes: s.writes,
      timeoutMs: s.timeout_ms ?? m.plugin.timeout_ms,
    })),
    events: m.events.subscribe,
    vmPatch: m.events.vm_patch,
    hooks: [
      ...(m.hooks.pre_stage ? ["pre-stage"] : []),
      ...(m.hooks.post_stage ? ["post-stage"] : []),
    ],
    commands: m.commands.filter((c) => c.mode !== "group").map((c) => c.path),
  };
}

/** One command's line in `plugins info`: its mode, what it runs, the files it may touch. */
function commandLine(m: Manifest, command: Manifest["commands"][number]): string {
  const flags = new Set<unknown>(command.flags);
  const named = [...command.arguments, ...command.flags].filter((v) => v.access)
    .map((v) =>
      `${v.access}s ${v.type === "dir" ? "in the folder" : "the file"} given as ${
        flags.has(v) ? `--${v.name}` : `<${v.name}>`
      }`
    );
  const runs = command.mode === "undo"
    ? `rolls back the last "gini ${command.undoes}"`
    : command.stages.map((s) => `${m.plugin.name}:${s}`).join(", ");
  return `    gini ${command.path} (${command.mode}${
    command.mode === "change" && !command.ask ? ", without asking" : ""
  }): ${runs}${named.length ? `; ${named.join("; ")}` : ""}`;
}

/** What each `[events] vm_patch` grant lets a plugin's `on_pre_vm_start` patch change, in words. */
const VM_PATCH_WORDS: Record<VmPatchScope, string> = {
  cpu: "the CPU topology (sockets, cores, threads)",
  memory: "the memory size and hugepages",
  disks: "the disks (new files only inside the VM's folder)",
  nics: "the network interfaces: bridges, taps, port forwards",
  firmware: "the firmware (files only inside the VM's folder, or the VM's own)",
  tpm: "the TPM (its socket and state inside the VM's folder)",
  usb: "the USB devices passed through",
  passthrough: "the PCI devices passed through (VFIO)",
  kernel_boot: "the direct kernel boot: kernel, initrd (inside the VM's folder) and command line",
  extra_args: "any extra QEMU argument (QEMU can run programs with the rights it runs with)",
  emulator: "the QEMU program (an absolute path to a qemu-system-* program)",
};

/** The `plugins info` lines on what the plugin's `on_pre_vm_start` patches may change. */
function vmPatchLines(m: Manifest): string[] {
  const grants = m.events.vm_patch;
  if (!grants.length && !m.events.subscribe.includes("on_pre_vm_start")) return [];
  const open = "hypervisor flags, CPU model and features, display";
  return [
    "  VM definition patches (on_pre_vm_start):",
    grants.length ? `    ${open}; with [events] vm_patch also:` : `    ${open} only`,
    ...grants.map((g) => `    ${g}: ${VM_PATCH_WORDS[g]}`),
  ];
}

function list(values: string[]): string {
  return values.length ? values.join(", ") : "none";
}

/** `gini plugins info NAME`. */
export async function describePlugin(
  loaded: Resolution,
  name: string,
): Promise<{ data: PluginSummary & { entrySha256: string }; text: string }> {
  const m = loaded.plugins.find((p) => p.plugin.name === name);
  if (!m) {
    const names = loaded.plugins.map((p) => p.plugin.name);
    throw new UsageError(`Cannot show plugin "${name}": it is not loaded`, {
      hint: didYouMean(name, names) ?? `Loaded plugins: ${list(names)}`,
    });
  }
  const summary = pluginSummary(m);
  const entrySha256 = await sha256Hex(await Deno.readFile(join(m.dir, m.plugin.entry)));
  const lines = [
    `${summary.name} ${summary.version} (${summary.origin}${summary.core ? ", core" : ""})`,
    `  ${summary.description}`,
    `  author:       ${summary.author}`,
    `  priority:     ${summary.priority}`,
    `  manifest:     ${summary.file}`,
    `  entry sha256: ${entrySha256}`,
    `  depends on:   ${list(Object.entries(summary.dependencies).map(([k, v]) => `${k} ${v}`))}`,
    "  worker permissions (Deno):",
    `    read: ${list(summary.permissions.read)}; net: ${list(summary.permissions.net)}; env: ${
      list(summary.permissions.env)
    }; sys: ${list(summary.permissions.sys)}; run, write, ffi, import: never`,
    "  ops the kernel may perform for it:",
    `    write under: ${list(summary.ops.write)}`,
    `    run: ${list(summary.ops.run)}`,
    `    download from: ${list(summary.ops.download)}; sysfs: ${list(summary.ops.sysfs)}; lvm: ${
      summary.ops.lvm ? "yes" : "no"
    }${summary.ops.checkpoint ? "; journal checkpoints: yes" : ""}`,
    ...vmPatchLines(m),
    "  stages:",
    ...summary.stages.map((s) =>
      `    ${s.id}${s.after.length ? ` after ${s.after.join(", ")}` : ""}${
        s.reads.length ? `; reads ${s.reads.join(", ")}` : ""
      }${s.writes.length ? `; writes ${s.writes.join(", ")}` : ""}`
    ),
    ...(summary.stages.length ? [] : ["    none"]),
    "  commands:",
    ...m.commands.filter((c) => c.mode !== "group").map((c) => commandLine(m, c)),
    ...(summary.commands.length ? [] : ["    none"]),
  ];
  return { data: { ...summary, entrySha256 }, text: lines.join("\n") };
}

function nodeId(text: string): string {
  return text.replace(/[^A-Za-z0-9_]/g, "_");
}

/** `gini plugins graph`: one Mermaid flowchart with a subgraph per plugin. */
export function pluginGraph(loaded: Resolution): {
  mermaid: string;
  data: {
    plugins: { from: string; to: string; optional: boolean }[];
    stages: { from: string; to: string; via: string }[];
  };
} {
  const pluginEdges = loaded.plugins.flatMap((m) => [
    ...Object.keys(m.dependencies).map((d) => ({ from: d, to: m.plugin.name, optional: false })),
    ...Object.keys(m.optional_dependencies)
      .filter((d) => loaded.plugins.some((p) => p.plugin.name === d))
      .map((d) => ({ from: d, to: m.plugin.name, optional: true })),
  ]);
  const stageEdges: { from: string; to: string; via: string }[] = [];
  for (const stage of loaded.stages.values()) {
    for (const dep of stage.after) {
      if (loaded.stages.has(dep)) stageEdges.push({ from: dep, to: stage.id, via: "after" });
    }
    for (const key of stage.reads) {
      const producer = loaded.producers.get(key);
      if (producer && producer !== stage.id) {
        stageEdges.push({ from: producer, to: stage.id, via: key });
      }
    }
  }
  const lines = ["flowchart LR"];
  for (const m of loaded.plugins) {
    lines.push(
      `  subgraph ${nodeId(`p_${m.plugin.name}`)}["${m.plugin.name} ${m.plugin.version}"]`,
    );
    for (const s of m.stages) {
      lines.push(`    ${nodeId(`${m.plugin.name}:${s.name}`)}["${s.name}"]`);
    }
    if (m.stages.length === 0) {
      lines.push(`    ${nodeId(`p_${m.plugin.name}_none`)}(("no stages"))`);
    }
    lines.push("  end");
  }
  for (const e of stageEdges) {
    lines.push(`  ${nodeId(e.from)} -->${e.via === "after" ? "" : `|${e.via}|`} ${nodeId(e.to)}`);
  }
  for (const e of pluginEdges) {
    lines.push(
      `  ${nodeId(`p_${e.from}`)} -.->|${e.optional ? "optional dependency" : "dependency"}| ${
        nodeId(`p_${e.to}`)
      }`,
    );
  }
  return { mermaid: lines.join("\n"), data: { plugins: pluginEdges, stages: stageEdges } };
}
