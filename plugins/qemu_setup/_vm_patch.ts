/**
 * What an `on_pre_vm_start` reply may change in the VM definition. Every subscriber may patch
 * the hypervisor flags, the CPU model and features, and the display; each other part needs a
 * grant in the replier's manifest (`[events] vm_patch`), which the kernel attests with the reply
 * ({@linkcode EventReply}). Even granted, a file path stays inside the VM's folder or is one the
 * definition already named before any patch (the user's own file), and the emulator is an
 * absolute path to a `qemu-system-*` program. Name, uuid, paths and the VM file never change.
 *
 * @module
 */
import { basename, isAbsolute, normalize, relative } from "../../workers/path.ts";
import type { EventReply, Json, VmPatchScope } from "../../workers/sdk.ts";
import { type VmDefinition, VmDefinitionSchema } from "./contracts.ts";

type Definition = Omit<VmDefinition, "argv">;
type Key = keyof Definition;

/** The definition key each grant opens (TOML's snake_case to the definition's camelCase). */
const SCOPE_KEYS: Record<VmPatchScope, Key> = {
  cpu: "cpu",
  memory: "memory",
  disks: "disks",
  nics: "nics",
  firmware: "firmware",
  tpm: "tpm",
  usb: "usb",
  passthrough: "passthrough",
  kernel_boot: "kernelBoot",
  extra_args: "extraArgs",
  emulator: "emulator",
};
const SCOPE_OF = new Map<Key, VmPatchScope>(
  Object.entries(SCOPE_KEYS).map(([scope, key]) => [key, scope as VmPatchScope]),
);
/** What identifies the VM: no plugin changes it. */
const FIXED = new Set<Key>(["name", "uuid", "paths", "configFile"]);
/** What every subscriber may change (`cpu.model` and `cpu.features` too). */
const OPEN = new Set<Key>(["hypervisor", "display"]);
const CPU_MODEL = /^[\w.-]+$/;
const CPU_FEATURE = /^[+-]?[\w.-]+(=[\w.-]+)?$/;
const EMULATOR = /^qemu-system-[a-z0-9_]+$/;

/** An `on_pre_vm_start` patch the replying plugin may not apply. */
export class VmPatchRefusedError extends Error {
  readonly code = "VM_PATCH_REFUSED";
  readonly hint: string;
  constructor(plugin: string, reason: string, hint: string) {
    super(`Cannot apply the on_pre_vm_start patch of plugin "${plugin}": ${reason}`);
    this.name = "VmPatchRefusedError";
    this.hint = hint;
  }
}

/** RFC 7386 JSON merge patch: objects merge, null removes, anything else replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const base = target !== null && typeof target === "object" && !Array.isArray(target)
    ? { ...target }
    : {} as Record<string, Json>;
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete base[key];
    else base[key] = mergePatch(base[key] ?? null, value);
  }
  return base;
}

/** JSON with sorted keys, so that equal values compare equal whatever their key order. */
function canonical(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, v: unknown) =>
      v !== null && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
        : v,
  );
}

const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);

/**
 * Applies each reply's `{ patch }` in order, after checking it against what its plugin may
 * change; throws {@linkcode VmPatchRefusedError} naming the plugin at the first refusal.
 *
 * @example
 * ```ts
 * const replies = await ctx.emitAttested("on_pre_vm_start", { definition });
 * const final = applyVmPatches(definition, replies);
 * ```
 */
export function applyVmPatches(definition: Definition, replies: EventReply[]): Definition {
  let current = definition;
  for (const attested of replies) {
    const reply = attested.reply;
    if (reply === null || typeof reply !== "object" || Array.isArray(reply)) continue;
    const patch = reply.patch;
    if (patch === undefined) continue;
    if (patch === null || typeof patch !== "object" || Array.isArray(patch)) {
      throw refusal(attested, "its patch is not a JSON object", authorHint(attested));
    }
    const next = parsePatched(attested, mergePatch(current as Json, patch));
    checkPatch(attested, definition, current, next);
    current = next;
  }
  return current;
}

function refusal(reply: EventReply, reason: string, hint: string): VmPatchRefusedError {
  return new VmPatchRefusedError(reply.plugin, reason, hint);
}

function authorHint(reply: EventReply): string {
  return `This is an error in plugin "${reply.plugin}" (${reply.manifest}): ask its author for a fix, or remove the plugin`;
}

function parsePatched(reply: EventReply, patched: Json): Definition {
  const parsed = VmDefinitionSchema.omit({ argv: true }).safeParse(patched);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw refusal(
    reply,
    `the VM definition it makes is invalid at ${
      issue.path.join(".") || "the top"
    }: ${issue.message}`,
    authorHint(reply),
  );
}

/** Refuses the first change of `before` into `after` that `reply`'s plugin may not make. */
function checkPatch(
  reply: EventReply,
  original: Definition,
  before: Definition,
  after: Definition,
): void {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)] as Key[]);
  for (const key of keys) {
    if (same(before[key], after[key]) || OPEN.has(key)) continue;
    if (FIXED.has(key)) {
      throw refusal(
        reply,
        `it changes "${key}", which identifies the VM and no plugin may change`,
        "Rename or move the VM in its VM file; a plugin's patch must leave name, uuid, paths and configFile as they are",
      );
    }
    if (key === "cpu" && onlyModelAndFeatures(before.cpu, after.cpu)) {
      checkCpuWords(reply, before.cpu, after.cpu);
      continue;
    }
    const scope = SCOPE_OF.get(key);
    if (!scope) {
      throw refusal(
        reply,
        `it changes "${key}", which no vm_patch grant allows`,
        `Set "${key}" in the VM file instead; a plugin's patch may not change it`,
      );
    }
    if (!reply.grants.vm_patch.includes(scope)) {
      throw refusal(
        reply,
        `it changes "${key}", which its manifest does not grant`,
        `If you trust plugin "${reply.plugin}" with it, add "${scope}" to [events] vm_patch in ${reply.manifest} (an installed plugin is then approved again); otherwise remove the plugin`,
      );
    }
    if (key === "cpu") checkCpuWords(reply, before.cpu, after.cpu);
    checkOptionWords(reply, key, before, after);
    checkPaths(reply, key, original, after);
    checkDevices(reply, key, after);
  }
}

/** Each string below `value`, with its path (`disks[0].path`). */
function leaves(value: unknown, path: string): [string, string][] {
  if (typeof value === "string") return [[path, value]];
  if (Array.isArray(value)) return value.flatMap((v, i) => leaves(v, `${path}[${i}]`));
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([k, v]) => leaves(v, `${path}.${k}`));
}

/**
 * The definition's strings go inside QEMU's comma-separated options (`file=…,format=…`): a new
 * one with a comma would add options (a `helper=` that runs a program), so none may hold one,
 * nor a control character. Extra arguments are whole arguments, and the kernel command line one.
 */
function checkOptionWords(reply: EventReply, key: Key, before: Definition, after: Definition) {
  if (key === "extraArgs") return;
  const known = new Set(leaves(before[key], key).map(([, v]) => v));
  for (const [path, value] of leaves(after[key], key)) {
    if (known.has(value) || path === "kernelBoot.cmdline") continue;
    // deno-lint-ignore no-control-regex
    if (!/[,\x00-\x1f\x7f]/.test(value)) continue;
    throw refusal(
      reply,
      `${path} ${
        JSON.stringify(value)
      } holds a comma or a control character, which would add QEMU options`,
      authorHint(reply),
    );
  }
}

const PCI_ADDRESS = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i;
const HEX4 = /^[0-9a-f]{4}$/i;

/** Devices a granted patch passes through are named as the host names them, nothing else. */
function checkDevices(reply: EventReply, key: Key, after: Definition): void {
  const bad = key === "passthrough"
    ? after.passthrough.findIndex((p) =>
      !PCI_ADDRESS.test(p.address) || !HEX4.test(p.vendor) || !HEX4.test(p.device)
    )
    : key === "usb"
    ? after.usb.findIndex((u) => !HEX4.test(u.vendor) || !HEX4.test(u.product))
    : -1;
  if (bad < 0) return;
  throw refusal(
    reply,
    `${key}[${bad}] is not a device as the host names it (PCI "0000:01:00.0", IDs "10de")`,
    authorHint(reply),
  );
}

function onlyModelAndFeatures(a: Definition["cpu"], b: Definition["cpu"]): boolean {
  return same({ ...a, model: "", features: [] }, { ...b, model: "", features: [] });
}

/** A CPU model and features are one `-cpu` argument: no commas or spaces may widen it. */
function checkCpuWords(reply: EventReply, a: Definition["cpu"], b: Definition["cpu"]): void {
  if (b.model !== a.model && !CPU_MODEL.test(b.model)) {
    throw refusal(reply, `cpu.model "${b.model}" is not a CPU model name`, authorHint(reply));
  }
  const added = b.features.filter((f) => !a.features.includes(f));
  const bad = added.find((f) => !CPU_FEATURE.test(f));
  if (bad !== undefined) {
    throw refusal(
      reply,
      `cpu.features "${bad}" is not a CPU feature ("+name", "-name" or "name=value")`,
      authorHint(reply),
    );
  }
}

/** Whether `path` is absolute and, with `..` resolved, below `dir`. */
export function isInside(path: string, dir: string): boolean {
  if (!isAbsolute(path)) return false;
  const rel = relative(normalize(dir), normalize(path));
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel);
}

type Outside = (field: string, path: string, allowed: (string | null | undefined)[]) => void;

/**
 * The rule for a file a granted patch names: inside the VM's folder (but none of the files
 * Gini writes or listens on there) or one of `allowed`, the definition's own before any patch.
 */
function pathRule(reply: EventReply, original: Definition): Outside {
  const { dir, ...files } = original.paths;
  const gini = [...Object.values(files), original.tpm.socket, original.tpm.stateDir]
    .filter((f): f is string => f !== null).map((f) => normalize(f));
  return (field, path, allowed) => {
    if (allowed.includes(path)) return;
    if (isInside(path, dir) && !gini.some((f) => f === normalize(path) || isInside(path, f))) {
      return;
    }
    throw refusal(
      reply,
      isInside(path, dir)
        ? `${field} "${path}" is one of the files Gini keeps for the VM`
        : `${field} "${path}" is outside the VM's folder "${dir}" and not a file the VM already uses`,
      `Remove plugin "${reply.plugin}", or name the file in the VM file if the VM should use it: a plugin may point ${field} only at a file of its own inside the VM's folder`,
    );
  };
}

/** The path checks of the granted parts that name files or programs. */
function checkPaths(reply: EventReply, key: Key, original: Definition, after: Definition): void {
  const outside = pathRule(reply, original);
  switch (key) {
    case "disks":
      return checkDisks(reply, original, after, outside);
    case "firmware": {
      const fw = original.firmware;
      const pool = [fw.code, fw.varsTemplate, fw.vars];
      if (after.firmware.code) outside("firmware.code", after.firmware.code, pool);
      const template = after.firmware.varsTemplate;
      if (template) outside("firmware.varsTemplate", template, pool);
      if (after.firmware.vars) outside("firmware.vars", after.firmware.vars, [fw.vars]);
      return;
    }
    case "kernelBoot": {
      const boot = after.kernelBoot;
      const pool = [original.kernelBoot?.kernel, original.kernelBoot?.initrd];
      if (boot) outside("kernelBoot.kernel", boot.kernel, pool);
      if (boot?.initrd) outside("kernelBoot.initrd", boot.initrd, pool);
      return;
    }
    case "tpm":
      if (after.tpm.socket) outside("tpm.socket", after.tpm.socket, [original.tpm.socket]);
      if (after.tpm.stateDir) outside("tpm.stateDir", after.tpm.stateDir, [original.tpm.stateDir]);
      return;
    case "emulator":
      if (
        isAbsolute(after.emulator) && normalize(after.emulator) === after.emulator &&
        EMULATOR.test(basename(after.emulator))
      ) return;
      throw refusal(
        reply,
        `emulator "${after.emulator}" is not an absolute path to a qemu-system-* program`,
        'A plugin granted "emulator" must name QEMU by its absolute path (/usr/bin/qemu-system-x86_64)',
      );
  }
}

/**
 * Disks: a path outside the VM's folder must be one of the VM's own disks, no more powerful
 * than it was (not created over, not made writable, the same logical volume); a disk inside
 * the folder is a file. Backing images may also be the VM's own.
 */
function checkDisks(reply: EventReply, original: Definition, after: Definition, outside: Outside) {
  const own = original.disks.map((d) => d.path);
  const backings = original.disks.map((d) => d.backing?.path);
  after.disks.forEach((disk, i) => {
    outside(`disks[${i}].path`, disk.path, own);
    if (disk.backing) outside(`disks[${i}].backing.path`, disk.backing.path, [...own, ...backings]);
    const was = original.disks.find((d) => d.path === disk.path);
    const inside = isInside(disk.path, original.paths.dir);
    const widened = inside
      ? disk.backend !== "file" || disk.volumeGroup !== null || disk.logicalVolume !== null
      : !was || (disk.create && !was.create) || (was.readonly && !disk.readonly) ||
        disk.backend !== was.backend || disk.volumeGroup !== was.volumeGroup ||
        disk.logicalVolume !== was.logicalVolume;
    if (!widened) return;
    throw refusal(
      reply,
      `disks[${i}] "${disk.path}" would be created, made writable or moved to another volume`,
      "A plugin's patch may not widen what the VM does with a disk the VM file names; change it in the VM file",
    );
  });
}
