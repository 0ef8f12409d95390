/**
 * The documentation as a format-free model: pages of headings, paragraphs, tables, lists, code
 * and Mermaid diagrams, built from `session.plugins` and the VM file's JSON Schema. The Markdown,
 * HTML and roff writers render the same pages, so the three formats never say different things.
 *
 * Inline text may hold `code` spans and links `[text](page:NAME)` to another page.
 *
 * @module
 */
import type {
  CatalogueCommand,
  CataloguePlugin,
  CatalogueValue,
  PluginCatalogue,
} from "../../workers/sdk.ts";

/** One block of a page. */
export type Block =
  | { kind: "heading"; level: 2 | 3; text: string }
  | { kind: "paragraph"; text: string }
  | { kind: "table"; head: string[]; rows: string[][] }
  | { kind: "list"; items: string[] }
  | { kind: "code"; text: string }
  | { kind: "mermaid"; text: string; caption: string };

/** One page: `name` is its file name without extension (`index`, `plugin-env-check`). */
export interface Page {
  name: string;
  title: string;
  blocks: Block[];
}

/** A command with the plugin that provides it (or the kernel). */
export interface ListedCommand extends CatalogueCommand {
  provider: string;
}

/** Every runnable command: the kernel's, then each plugin's in load order; groups left out. */
export function allCommands(catalogue: PluginCatalogue): ListedCommand[] {
  return [
    ...catalogue.commands.map((c) => ({ ...c, provider: "kernel" })),
    ...catalogue.plugins.flatMap((p) => p.commands.map((c) => ({ ...c, provider: p.name }))),
  ].filter((c) => c.mode !== "group");
}

function valueWord(v: CatalogueValue): string {
  return (v.value ?? v.name).toUpperCase().replace(/-/g, "_");
}

/** `gini plugins info NAME [--json]`: the command's synopsis. */
export function usage(command: CatalogueCommand): string {
  const words = [`gini ${command.path}`];
  for (const a of command.arguments) {
    const word = `${valueWord(a)}${a.repeatable ? "…" : ""}`;
    words.push(a.required ? word : `[${word}]`);
  }
  for (const f of command.flags) {
    const flag = `${f.short ? `-${f.short}|` : ""}--${f.name}${
      f.type === "boolean" ? "" : ` ${valueWord(f)}${f.repeatable ? "…" : ""}`
    }`;
    words.push(f.required ? flag : `[${flag}]`);
  }
  return words.join(" ");
}

/** A value's line: its summary, with choices, default, repetition and file access. */
export function valueSummary(v: CatalogueValue): string {
  const extras = [
    ...(v.choices && !v.summary.includes(v.choices.join(", "))
      ? [`one of: ${v.choices.join(", ")}`]
      : []),
    ...(v.default !== undefined ? [`default ${JSON.stringify(v.default)}`] : []),
    ...(v.repeatable ? ["repeatable"] : []),
    ...(v.required ? ["required"] : []),
    ...(v.access
      ? [`the plugin may ${v.access} ${v.type === "dir" ? "in this folder" : "this file"}`]
      : []),
  ];
  return extras.length ? `${v.summary} (${extras.join("; ")})` : v.summary;
}

/** A command's arguments and flags as table rows: name, meaning. */
export function valueRows(command: CatalogueCommand): string[][] {
  return [
    ...command.arguments.map((a) => [`\`${valueWord(a)}\``, valueSummary(a)]),
    ...command.flags.map((f) => [
      `\`${f.short ? `-${f.short}, ` : ""}--${f.name}${
        f.type === "boolean" ? "" : ` ${valueWord(f)}`
      }\``,
      valueSummary(f),
    ]),
  ];
}

const PLACES: Record<string, string> = {
  "{data}": "Gini's data folder",
  "{config}": "Gini's configuration folder",
  "{cache}": "Gini's cache folder",
  "{state}": "Gini's state folder",
};

/** A grant path in words: `{data}/vms` is "`{data}/vms` (in Gini's data folder)". */
function place(grant: string): string {
  const root = Object.keys(PLACES).find((p) => grant.startsWith(p));
  return root ? `\`${grant}\` (in ${PLACES[root]})` : `\`${grant}\``;
}

function words(list: string[], fmt = (s: string) => `\`${s}\``): string {
  return list.map(fmt).join(", ");
}

/** What a plugin may do, in sentences: its worker's permissions, then the kernel's ops for it. */
export function grantsInWords(p: CataloguePlugin): string[] {
  const out: string[] = [];
  const { read, net, env, sys } = p.permissions;
  out.push(
    read.length
      ? `Its worker may read: ${words(read, place)}.`
      : "Its worker may read no file of the host itself.",
  );
  if (net.length) out.push(`Its worker may connect to: ${words(net)}.`);
  if (env.length) out.push(`Its worker may read the environment variables ${words(env)}.`);
  if (sys.length) out.push(`Its worker may ask the system for: ${words(sys)}.`);
  out.push(
    "Its worker never runs programs, writes files, loads native code or imports code from elsewhere: those go through the kernel as operations.",
  );
  const ops = p.ops;
  if (ops.write.length) out.push(`The kernel may write for it under: ${words(ops.write, place)}.`);
  if (ops.run.length) out.push(`The kernel may run for it: ${words(ops.run)}.`);
  if (ops.download.length) {
    out.push(
      `The kernel may download for it from: ${
        words(ops.download, (h) => h === "file" ? "local files (`file://`)" : `\`${h}\``)
      }.`,
    );
  }
  if (ops.sysfs.length) {
    out.push(`The kernel may write these sysfs files for it: ${words(ops.sysfs)}.`);
  }
  if (ops.lvm) out.push("The kernel may create and remove LVM logical volumes for it.");
  if (ops.request_files) out.push("The kernel may read it small files next to the VM file.");
  if (ops.checkpoint) out.push("The kernel records journal checkpoints for it (resumable runs).");
  const named = p.commands.flatMap((c) =>
    [...c.arguments, ...c.flags].filter((v) => v.access).map((v) =>
      `\`gini ${c.path}\` ${v.access}s ${
        v.type === "dir" ? "in the folder" : "the file"
      } given as \`${c.arguments.includes(v) ? valueWord(v) : `--${v.name}`}\`, for that run only`
    )
  );
  if (named.length) out.push(`${named.join("; ")}.`);
  if (p.vmPatch.length) {
    out.push(`Its \`on_pre_vm_start\` replies may change: ${words(p.vmPatch)}.`);
  }
  if (
    !ops.write.length && !ops.run.length && !ops.download.length && !ops.sysfs.length &&
    !ops.lvm && !named.length
  ) {
    out.push("The kernel changes nothing on the host for it.");
  }
  return out;
}

function nodeId(text: string): string {
  return text.replace(/[^A-Za-z0-9_]/g, "_");
}

function label(text: string): string {
  return `"${text.replace(/"/g, "#quot;")}"`;
}

/** Mermaid: an arrow from each plugin to the plugins it depends on (dotted: optional). */
export function dependencyDiagram(catalogue: PluginCatalogue): string {
  const lines = ["flowchart LR"];
  for (const p of catalogue.plugins) {
    lines.push(`  ${nodeId(`p_${p.name}`)}[${label(`${p.name} ${p.version}`)}]`);
  }
  for (const e of catalogue.graph.plugins) {
    lines.push(`  ${nodeId(`p_${e.to}`)} ${e.optional ? "-.->" : "-->"} ${nodeId(`p_${e.from}`)}`);
  }
  return lines.join("\n");
}

/**
 * Mermaid: the stage DAG, a box per plugin; an arrow is `after`, or labelled with the context key
 * one stage produces and the next reads. `only` keeps one plugin's stages and their neighbours.
 */
export function stageDiagram(catalogue: PluginCatalogue, only?: string): string {
  const edges = catalogue.graph.stages.filter((e) =>
    !only || e.from.startsWith(`${only}:`) || e.to.startsWith(`${only}:`)
  );
  const shown = new Set(edges.flatMap((e) => [e.from, e.to]));
  // The whole DAG is long: top to bottom keeps it readable on a page.
  const lines = [only ? "flowchart LR" : "flowchart TB"];
  for (const p of catalogue.plugins) {
    const stages = p.stages.filter((s) => !only ? true : p.name === only || shown.has(s.id));
    if (!stages.length) continue;
    lines.push(`  subgraph ${nodeId(`p_${p.name}`)}[${label(p.name)}]`);
    for (const s of stages) {
      lines.push(`    ${nodeId(s.id)}[${label(s.id.slice(p.name.length + 1))}]`);
    }
    lines.push("  end");
  }
  for (const e of edges) {
    lines.push(
      `  ${nodeId(e.from)} -->${e.via === "after" ? "" : `|${label(e.via)}|`} ${nodeId(e.to)}`,
    );
  }
  return lines.join("\n");
}

/** One row of the VM file reference. */
export interface VmKey {
  /** `cpu.cores`; an array of tables is `disks[].size`. */
  key: string;
  type: string;
  default: string;
  description: string;
}

type JsonSchema = {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
};

function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (s.anyOf) return s.anyOf.map(typeOf).join(" or ");
  if (s.type === "array") {
    const item = s.items ?? {};
    return item.properties ? "array of tables" : `array of ${typeOf(item)}`;
  }
  if (s.type === "object") return "table";
  const base = Array.isArray(s.type) ? s.type.join(" or ") : s.type ?? "any";
  if (s.minimum !== undefined && s.maximum !== undefined) {
    return `${base} ${s.minimum}–${s.maximum}`;
  }
  return base;
}

function defaultOf(s: JsonSchema, required: boolean): string {
  if (required) return "required";
  if (s.default === undefined) return "";
  if (typeof s.default === "object" && s.default !== null && !Array.isArray(s.default)) return "";
  return `\`${JSON.stringify(s.default)}\``;
}

/** Every key of the VM file, depth first, from its JSON Schema. */
export function vmKeys(schema: unknown): VmKey[] {
  const out: VmKey[] = [];
  const walk = (node: JsonSchema, prefix: string) => {
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      const key = prefix ? `${prefix}.${name}` : name;
      out.push({
        key,
        type: typeOf(child),
        default: defaultOf(child, node.required?.includes(name) ?? false),
        description: child.description ?? "",
      });
      if (child.properties) walk(child, key);
      if (child.type === "array" && child.items?.properties) walk(child.items, `${key}[]`);
    }
  };
  walk(schema as JsonSchema, "");
  return out;
}
