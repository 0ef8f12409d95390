/**
 * Which initramfs generator and boot loader a host root uses, and the exact file
 * edits and rebuild commands that make them load vfio-pci early and pass the
 * kernel arguments. Pure over a {@linkcode Files} reader, so every distribution is
 * tested from a fixture root.
 *
 * @module
 */
import { UsageError } from "../../workers/sdk.ts";
import { withArgs } from "./_cmdline.ts";

/** Reads host files by host path; null when absent. */
export interface Files {
  read(path: string): Promise<string | null>;
  list(dir: string): Promise<string[] | null>;
}

/** One file to create or change. `before` null means it does not exist yet. */
export interface FileEdit {
  path: string;
  before: string | null;
  after: string;
  /** A directory to create first. */
  mkdir?: string;
}

/** What one initramfs generator or boot loader needs. */
export interface BootPlan {
  name: string;
  edits: FileEdit[];
  commands: string[][];
  /** The kernel command lines the configuration carries now (for status). */
  cmdlines: string[];
  notes: string[];
}

/** What the planners need to know about the host. */
export interface HostFacts {
  kernel: string;
  /** The kernel arguments to add. */
  args: string[];
  modules: string[];
}

export const MARK = "# Added by Gini for VFIO passthrough; `gini vfio undo` removes it";

/** `text` with a final newline. */
const nl = (text: string) => text === "" || text.endsWith("\n") ? text : `${text}\n`;

/** Applies `edit` to every line matching `re`; the match's group 2 is a command line. */
function editLines(text: string, re: RegExp, args: string[]): { text: string; found: string[] } {
  const found: string[] = [];
  const out = text.split("\n").map((line) => {
    const m = line.match(re);
    if (!m) return line;
    found.push(m[2]!);
    return `${m[1]}${withArgs(m[2]!, args)}${m[3] ?? ""}`;
  });
  return { text: out.join("\n"), found };
}

function edit(path: string, before: string | null, after: string): FileEdit[] {
  return before === after ? [] : [{ path, before, after }];
}

// ---------------------------------------------------------------------------------------------
// Initramfs generators

export const INITRAMFS = ["initramfs-tools", "dracut", "mkinitcpio", "booster"] as const;
export type Initramfs = (typeof INITRAMFS)[number];

async function detectInitramfs(files: Files): Promise<Initramfs[]> {
  const found: Initramfs[] = [];
  if (
    await files.read("/etc/initramfs-tools/initramfs.conf") !== null ||
    await files.read("/etc/initramfs-tools/modules") !== null
  ) found.push("initramfs-tools");
  if (
    await files.read("/etc/dracut.conf") !== null || await files.list("/etc/dracut.conf.d") !== null
  ) found.push("dracut");
  if (await files.read("/etc/mkinitcpio.conf") !== null) found.push("mkinitcpio");
  if (await files.read("/etc/booster.yaml") !== null) found.push("booster");
  return found;
}

async function planInitramfs(name: Initramfs, files: Files, host: HostFacts): Promise<BootPlan> {
  const plan: BootPlan = { name, edits: [], commands: [], cmdlines: [], notes: [] };
  if (name === "initramfs-tools") {
    const path = "/etc/initramfs-tools/modules";
    const before = await files.read(path);
    const listed = new Set(
      (before ?? "").split("\n").map((l) => l.trim().split(/\s+/)[0]!).filter((w) =>
        w && !w.startsWith("#")
      ),
    );
    const missing = host.modules.filter((m) => !listed.has(m));
    if (missing.length) {
      plan.edits.push({
        path,
        before,
        after: `${nl(before ?? "")}${MARK}\n${missing.join("\n")}\n`,
      });
    }
    plan.commands.push(["update-initramfs", "-u", "-k", "all"]);
  } else if (name === "dracut") {
    const path = "/etc/dracut.conf.d/gini-vfio.conf";
    const before = await files.read(path);
    const after = `${MARK}\nforce_drivers+=" ${host.modules.join(" ")} "\n`;
    const dir = await files.list("/etc/dracut.conf.d");
    plan.edits.push(
      ...edit(path, before, after).map((e) =>
        dir === null ? { ...e, mkdir: "/etc/dracut.conf.d" } : e
      ),
    );
    plan.commands.push(["dracut", "--force", "--regenerate-all"]);
  } else if (name === "mkinitcpio") {
    const path = "/etc/mkinitcpio.conf";
    const before = (await files.read(path))!;
    const re = /^MODULES=\(([^)]*)\)/m;
    const m = before.match(re);
    const current = m ? m[1]!.trim().split(/\s+/).filter(Boolean) : [];
    const missing = host.modules.filter((x) => !current.includes(x));
    // vfio's modules go first, ahead of any graphics driver listed there.
    const after = !missing.length
      ? before
      : m
      ? before.replace(re, `MODULES=(${[...missing, ...current].join(" ")})`)
      : `${nl(before)}${MARK}\nMODULES=(${missing.join(" ")})\n`;
    plan.edits.push(...edit(path, before, after));
    const hooks = before.match(/^HOOKS=\(([^)]*)\)/m)?.[1] ?? "";
    if (!/\bmodconf\b/.test(hooks)) {
      plan.notes.push(
        'HOOKS in /etc/mkinitcpio.conf lacks "modconf": the vfio-pci options will not be in the initramfs',
      );
    }
    plan.commands.push(["mkinitcpio", "-P"]);
  } else {
    const path = "/etc/booster.yaml";
    const before = (await files.read(path))!;
    const re = /^modules_force_load:[ \t]*(.*)$/m;
    const m = before.match(re);
    const current = m ? m[1]!.split(",").map((s) => s.trim()).filter(Boolean) : [];
    const missing = host.modules.filter((x) => !current.includes(x));
    const after = !missing.length
      ? before
      : m
      ? before.replace(re, `modules_force_load: ${[...missing, ...current].join(",")}`)
      : `${nl(before)}${MARK}\nmodules_force_load: ${missing.join(",")}\n`;
    plan.edits.push(...edit(path, before, after));
    const pkgbase = (await files.read(`/usr/lib/modules/${host.kernel}/pkgbase`))?.trim() ??
      "linux";
    plan.commands.push([
      "booster",
      "build",
      "--force",
      "--kernel-version",
      host.kernel,
      `/boot/booster-${pkgbase}.img`,
    ]);
  }
  return plan;
}

// ---------------------------------------------------------------------------------------------
// Boot loaders

export const BOOTLOADERS = [
  "grub",
  "grub-bls",
  "systemd-boot",
  "kernel-cmdline",
  "kernelstub",
  "refind",
  "limine",
] as const;
export type Bootloader = (typeof BOOTLOADERS)[number];

const ESPS = ["/boot", "/efi", "/boot/efi"];
const LIMINE = [
  "/boot/limine.conf",
  "/boot/limine/limine.conf",
  "/boot/EFI/BOOT/limine.conf",
  "/efi/limine.conf",
  "/boot/efi/limine.conf",
  "/boot/limine.cfg",
];

async function entries(files: Files, dir: string): Promise<string[]> {
  return ((await files.list(dir)) ?? []).filter((f) => f.endsWith(".conf")).sort().map((f) =>
    `${dir}/${f}`
  );
}

async function loaderEntries(files: Files): Promise<string[]> {
  const all: string[] = [];
  for (const esp of ESPS) {
    if (await files.read(`${esp}/loader/loader.conf`) === null) continue;
    all.push(...await entries(files, `${esp}/loader/entries`));
  }
  return all;
}

async function grubCfg(files: Files): Promise<string[] | null> {
  if (await files.read("/boot/grub2/grub.cfg") !== null) {
    return ["grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"];
  }
  if (await files.read("/boot/grub/grub.cfg") !== null) {
    return ["grub-mkconfig", "-o", "/boot/grub/grub.cfg"];
  }
  for (const vendor of (await files.list("/boot/efi/EFI")) ?? []) {
    const path = `/boot/efi/EFI/${vendor}/grub.cfg`;
    const text = await files.read(path);
    // A stub that only loads the real grub.cfg from /boot does not count.
    if (text !== null && !/^\s*configfile\b/m.test(text)) return ["grub-mkconfig", "-o", path];
  }
  return null;
}

async function detectBootloaders(files: Files): Promise<Bootloader[]> {
  const found: Bootloader[] = [];
  const stub = await files.read("/etc/kernelstub/configuration") !== null;
  if (stub) found.push("kernelstub");
  const grub = await files.read("/etc/default/grub");
  const bls = grub !== null && /^GRUB_ENABLE_BLSCFG=["']?true/m.test(grub) &&
    (await entries(files, "/boot/loader/entries")).length > 0;
  if (bls) found.push("grub-bls");
  else if (grub !== null && await grubCfg(files)) found.push("grub");
  const sdEntries = await loaderEntries(files);
  const sdBoot = !stub && !bls && sdEntries.length > 0;
  if (sdBoot) found.push("systemd-boot");
  if (!sdBoot && !stub && await files.read("/etc/kernel/cmdline") !== null) {
    found.push("kernel-cmdline");
  }
  if (await files.read("/boot/refind_linux.conf") !== null) found.push("refind");
  for (const path of LIMINE) {
    if (await files.read(path) !== null) {
      found.push("limine");
      break;
    }
  }
  return found;
}

/** Whether the initramfs generator also builds unified kernel images (which embed the cmdline). */
async function buildsUkis(files: Files, initramfs: Initramfs): Promise<boolean> {
  if (initramfs === "mkinitcpio") {
    for (const preset of (await files.list("/etc/mkinitcpio.d")) ?? []) {
      const text = await files.read(`/etc/mkinitcpio.d/${preset}`);
      if (text && /^[a-z]+_uki=/m.test(text)) return true;
    }
  }
  if (initramfs === "dracut") {
    const conf = [await files.read("/etc/dracut.conf") ?? ""];
    for (const f of (await files.list("/etc/dracut.conf.d")) ?? []) {
      conf.push(await files.read(`/etc/dracut.conf.d/${f}`) ?? "");
    }
    return conf.some((t) => /^uefi=["']?yes/m.test(t));
  }
  return false;
}

/** The plan for one boot loader, with what its edits read and add. */
interface BootEditor {
  plan: BootPlan;
  files: Files;
  args: string[];
}

/**
 * Adds the arguments to every command line in `path` that `re` matches (group 2); when none
 * matches, `missing` writes one.
 */
async function editFile(
  e: BootEditor,
  path: string,
  re: RegExp,
  missing?: (before: string) => string,
): Promise<void> {
  const before = await e.files.read(path);
  if (before === null) return;
  const { text, found } = editLines(before, re, e.args);
  e.plan.cmdlines.push(...found);
  const after = found.length === 0 && missing ? missing(before) : text;
  e.plan.edits.push(...edit(path, before, after));
}

/** Adds the arguments to /etc/kernel/cmdline, when the host has one. */
async function editKernelCmdline(e: BootEditor): Promise<void> {
  const path = "/etc/kernel/cmdline";
  const before = await e.files.read(path);
  if (before === null) return;
  const line = before.replace(/\n$/, "");
  e.plan.cmdlines.push(line);
  e.plan.edits.push(
    ...edit(
      path,
      before,
      before === "" ? `${withArgs("", e.args)}\n` : before.replace(line, withArgs(line, e.args)),
    ),
  );
}

/** GRUB: a drop-in or /etc/default/grub, the BLS entries for `grub-bls`, then grub-mkconfig. */
async function planGrub(e: BootEditor, name: "grub" | "grub-bls"): Promise<void> {
  const { plan, files, args } = e;
  const key = name === "grub" ? "GRUB_CMDLINE_LINUX_DEFAULT" : "GRUB_CMDLINE_LINUX";
  const dropInDir = name === "grub" ? await files.list("/etc/default/grub.d") : null;
  if (dropInDir !== null) {
    const path = "/etc/default/grub.d/gini-vfio.cfg";
    const before = await files.read(path);
    plan.edits.push(
      ...edit(path, before, `${MARK}\n${key}="$${key} ${args.join(" ")}"\n`),
    );
    plan.cmdlines.push(
      before?.match(new RegExp(`^${key}="\\$${key} (.*)"`, "m"))?.[1] ?? "",
    );
  } else {
    await editFile(
      e,
      "/etc/default/grub",
      new RegExp(`^(${key}=["']?)([^"']*)(["']?\\s*)$`),
      (before) => `${nl(before)}${key}="${args.join(" ")}"\n`,
    );
  }
  if (name === "grub-bls") {
    for (const path of await entries(files, "/boot/loader/entries")) {
      await editFile(e, path, /^(options\s+)(.*?)(\s*)$/);
    }
  }
  const mkconfig = await grubCfg(files);
  if (mkconfig) plan.commands.push(mkconfig);
  else plan.notes.push("No grub.cfg found: run grub-mkconfig yourself");
}

/** kernelstub: the `user.kernel_options` list in its JSON configuration. */
async function planKernelstub(e: BootEditor): Promise<void> {
  const { plan, files, args } = e;
  const path = "/etc/kernelstub/configuration";
  const before = (await files.read(path))!;
  let config: { user?: { kernel_options?: string[] } };
  try {
    config = JSON.parse(before);
  } catch (error) {
    throw new UsageError(`Cannot read ${path}: ${(error as Error).message}`, {
      hint: "Fix the JSON (kernelstub writes it), then plan again",
    });
  }
  const options = config.user?.kernel_options ?? [];
  plan.cmdlines.push(options.join(" "));
  const next = withArgs(options.join(" "), args).split(" ").filter(Boolean);
  if (next.join(" ") !== options.join(" ")) {
    config.user = { ...config.user, kernel_options: next };
    plan.edits.push({
      path,
      before,
      after: JSON.stringify(config, null, 2) + (before.endsWith("\n") ? "\n" : ""),
    });
  }
  plan.commands.push(["kernelstub"]);
}

async function planBootloader(
  name: Bootloader,
  files: Files,
  host: HostFacts,
  initramfs: Initramfs,
): Promise<BootPlan> {
  const plan: BootPlan = { name, edits: [], commands: [], cmdlines: [], notes: [] };
  const e: BootEditor = { plan, files, args: host.args };
  if (name === "grub" || name === "grub-bls") {
    await planGrub(e, name);
  } else if (name === "systemd-boot") {
    for (const path of await loaderEntries(files)) {
      await editFile(
        e,
        path,
        /^(options\s+)(.*?)(\s*)$/,
        (b) => `${nl(b)}options ${host.args.join(" ")}\n`,
      );
    }
    await editKernelCmdline(e);
  } else if (name === "kernel-cmdline") {
    await editKernelCmdline(e);
    if (!await buildsUkis(files, initramfs)) {
      plan.commands.push([
        "kernel-install",
        "add",
        host.kernel,
        `/usr/lib/modules/${host.kernel}/vmlinuz`,
      ]);
    }
  } else if (name === "kernelstub") {
    await planKernelstub(e);
  } else if (name === "refind") {
    await editFile(e, "/boot/refind_linux.conf", /^(\s*"[^"]*"\s+")([^"]*)(".*)$/);
  } else {
    for (const path of LIMINE) {
      await editFile(e, path, /^(\s*(?:kernel_)?cmdline:\s*|\s*(?:KERNEL_)?CMDLINE=)(.*?)(\s*)$/i);
    }
  }
  return plan;
}

function choose<T extends string>(
  kind: string,
  flag: string,
  known: readonly T[],
  found: T[],
  wanted: string | undefined,
): T {
  if (wanted !== undefined) {
    if (!known.includes(wanted as T)) {
      throw new UsageError(`Cannot use ${flag} "${wanted}": unknown ${kind}`, {
        hint: `Known: ${known.join(", ")}`,
      });
    }
    return wanted as T;
  }
  if (found.length === 1) return found[0]!;
  if (found.length === 0) {
    throw new UsageError(`Cannot find the host's ${kind}`, {
      hint: `Name it with ${flag} (one of ${known.join(", ")})`,
    });
  }
  throw new UsageError(`Cannot tell which ${kind} the host uses: found ${found.join(" and ")}`, {
    hint: `Choose one with ${flag} ${found[0]}`,
  });
}

/** The full boot configuration plan: initramfs generator and boot loader. */
export async function planBoot(
  files: Files,
  host: Omit<HostFacts, "args"> & { args: (dracut: boolean) => string[] },
  options: { initramfs?: string; bootloader?: string },
): Promise<{ initramfs: BootPlan; bootloader: BootPlan }> {
  const initramfs = choose(
    "initramfs generator",
    "--initramfs",
    INITRAMFS,
    await detectInitramfs(files),
    options.initramfs,
  );
  const bootloader = choose(
    "boot loader",
    "--bootloader",
    BOOTLOADERS,
    await detectBootloaders(files),
    options.bootloader,
  );
  const facts = { ...host, args: host.args(initramfs === "dracut") };
  return {
    initramfs: await planInitramfs(initramfs, files, facts),
    bootloader: await planBootloader(bootloader, files, facts, initramfs),
  };
}

/** The modules vfio needs in the initramfs; vfio_virqfd was merged into vfio in Linux 6.2. */
export function vfioModules(kernel: string): string[] {
  const [major = 0, minor = 0] = kernel.split(/[.-]/).map(Number);
  const old = major < 6 || (major === 6 && minor < 2);
  return ["vfio_pci", "vfio", "vfio_iommu_type1", ...(old ? ["vfio_virqfd"] : [])];
}
