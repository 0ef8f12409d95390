/**
 * opencore: a macOS VM's OpenCore boot disk, built locally from pinned components.
 *
 * gather → edit → (custom-kexts:add-kexts) → branding → assemble → compile. Every file and
 * program goes through kernel ops, so `gini plan` shows the whole build and a failure is
 * rolled back.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { basename, join } from "../../workers/path.ts";
import { unzipSync } from "fflate";
import {
  type BaseContext,
  type ContextKey,
  definePlugin,
  type Plain,
  type StageContext,
  stageError,
} from "../../workers/sdk.ts";
import { VM_CONFIG } from "../qemu_setup/keys.ts";
import type { VmConfig } from "../qemu_setup/vm_schema.ts";
import { ENVIRONMENT_DATA } from "../env_check/contracts.ts";
import { CUSTOM_KEXTS, type CustomKexts } from "../custom_kexts/contracts.ts";
import { findRelease, type MacRelease, parseResolution } from "./releases.ts";
import { identityProblems, type MacIdentity, newIdentity } from "./_smbios.ts";
import { MACHINE_ID_FILES, machineId, seededRandom, vmSeed } from "./vm_seed.ts";
import { buildConfig, configXml, kernelAdd, type KextEntry, type PlistValue } from "./_config.ts";
import { setOvmfResolution } from "./_ovmf.ts";
import { listReleases, makeVmFile, versionsCommand, vmFileRequested } from "./commands.ts";
import builtin from "./catalogue.json" with { type: "json" };

/** Pinned components (`catalogue.json`, or the one `<config-dir>/macos.toml` names). */
export interface Catalogue {
  opencore: { version: string; url: string; sha256: string; files: Record<string, string> };
  kexts: {
    name: string;
    version: string;
    url: string;
    sha256: string;
    bundles: Record<string, string>;
    /**
     * The files of each bundle (by its zip path), inside it: what a plan lists when the zip is
     * not downloaded yet. A deploy warns when the zip holds others.
     */
    contents?: Record<string, string[]>;
  }[];
}

interface Sources {
  release: string;
  catalogue: Catalogue;
  /** Cached zips by component name; null in a dry run before they are in the cache. */
  zips: Record<string, string | null>;
  ovmfVars: string;
}

interface Edited {
  plist: Record<string, PlistValue>;
  identity: MacIdentity;
  kexts: KextEntry[];
}

/** What each stage hands the next (null for a VM that is not macOS). */
const SOURCES: ContextKey<Plain<Sources> | null> = "opencore.sources";
const EDITED: ContextKey<Plain<Edited> | null> = "opencore.config";
const BRANDING: ContextKey<
  { name: string; volumeLabel: string; picker: Record<string, PlistValue> } | null
> = "opencore.branding";
const TREE: ContextKey<{ root: string; files: string[] } | null> = "opencore.tree";
const IMAGE: ContextKey<{ path: string; vars: string; release: string } | null> = "opencore.image";

const config = (ctx: StageContext) => ctx.get(VM_CONFIG)!;
const vmDir = (ctx: BaseContext, name: string) => join(ctx.dirs.data, "vms", name);

function macRelease(c: VmConfig): MacRelease | null {
  if (c.guest !== "macos" || !c.macos) return null;
  return findRelease(c.macos.version) ?? null;
}

async function readCatalogue(ctx: BaseContext): Promise<Catalogue> {
  const file = join(ctx.dirs.config, "opencore.json");
  let text: string;
  try {
    text = await ctx.host.readText(file);
  } catch {
    return builtin as Catalogue;
  }
  try {
    return JSON.parse(text) as Catalogue;
  } catch (error) {
    throw stageError(
      `Cannot read the OpenCore catalogue "${file}": ${
        error instanceof Error ? error.message : error
      }`,
      "Fix it, or remove it to use the built-in catalogue",
      "CONFIG_INVALID",
    );
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function readZip(path: string | null, what: string): Promise<Record<string, Uint8Array>> {
  if (!path) return {};
  try {
    return unzipSync(await Deno.readFile(path));
  } catch (error) {
    throw stageError(
      `Cannot open the ${what} zip "${path}": ${error instanceof Error ? error.message : error}`,
      "Remove it from the cache and run the command again",
      "OPENCORE_FAILED",
    );
  }
}

/**
 * A new VM's Mac identity: derived from the VM's seed, so that a plan and the deploy agree; drawn
 * at random on a host without a machine id (the plan then shows another one).
 */
async function vmIdentity(ctx: BaseContext, name: string, model: string): Promise<MacIdentity> {
  const machine = await machineId(ctx);
  if (!machine) {
    ctx.ui.warn(
      `No machine id in ${
        MACHINE_ID_FILES.join(" or ")
      }: the Mac identity of "${name}" is drawn at random, and a plan shows another one than the deploy`,
    );
    return newIdentity(model);
  }
  return newIdentity(model, seededRandom(vmSeed(machine, ctx.dirs.data, name), "mac identity"));
}

const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

/** The FAT volume label for a VM name: 11 characters, upper case, letters, digits and '-'. */
export function volumeLabel(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9-]+/g, "").slice(0, 11) || "OPENCORE";
}

/** Records a file of the OpenCore tree, with where it comes from. */
type Want = (to: string, bytes: Uint8Array | null, source: string) => void;
type Kext = Plain<Sources>["catalogue"]["kexts"][number];

/** The catalogue's files from the OpenCorePkg zip (contentless in a plan made before it). */
async function wantOpenCore(sources: Plain<Sources>, want: Want): Promise<void> {
  const oc = await readZip(sources.zips.OpenCorePkg ?? null, "OpenCorePkg");
  for (const [from, to] of Object.entries(sources.catalogue.opencore.files)) {
    if (sources.zips.OpenCorePkg && !oc[from]) {
      throw stageError(
        `Cannot build OpenCore: ${sources.catalogue.opencore.url} has no ${from}`,
        "The catalogue's file list does not match the release; fix the catalogue",
        "OPENCORE_FAILED",
      );
    }
    want(to, oc[from] ?? null, `${basename(sources.catalogue.opencore.url)}: ${from}`);
  }
}

/**
 * Every file of a kext's bundles from its zip; before the download, the files the catalogue
 * pins, without content.
 */
async function wantKext(
  ctx: StageContext,
  kext: Kext,
  zipPath: string | null,
  want: Want,
): Promise<void> {
  const zip = await readZip(zipPath, kext.name);
  for (const [from, bundle] of Object.entries(kext.bundles)) {
    const entries = Object.entries(zip).filter(([p, d]) =>
      p.startsWith(`${from}/`) && !p.endsWith("/") && d.byteLength >= 0
    );
    if (zipPath && !entries.some(([p]) => p === `${from}/Contents/Info.plist`)) {
      throw stageError(
        `Cannot build OpenCore: ${kext.url} has no ${from}/Contents/Info.plist`,
        "The catalogue's bundle path does not match the release; fix the catalogue",
        "OPENCORE_FAILED",
      );
    }
    const zipName = basename(kext.url);
    const pinned = kext.contents?.[from] ?? ["Contents/Info.plist"];
    if (entries.length === 0) {
      for (const file of pinned) {
        want(`EFI/OC/Kexts/${bundle}/${file}`, null, `${zipName}: ${from}/${file}`);
      }
    } else if (
      kext.contents?.[from] &&
      entries.map(([p]) => p.slice(from.length + 1)).sort().join("\n") !==
        [...pinned].sort().join("\n")
    ) {
      ctx.ui.warn(
        `${kext.name} ${kext.version}: ${from} holds other files than the catalogue lists; a plan made before the download shows the catalogue's`,
      );
    }
    for (const [p, d] of entries) {
      want(`EFI/OC/Kexts/${bundle}/${p.slice(from.length + 1)}`, d, `${zipName}: ${p}`);
    }
  }
}

/** Writes the tree under `root` from empty: its folders, files, copies and config.plist. */
async function writeTree(
  ctx: StageContext,
  root: string,
  wanted: Map<string, Uint8Array | null>,
  origin: Map<string, string>,
  copies: CustomKexts["copies"],
  plist: Record<string, PlistValue>,
): Promise<void> {
  const dirs = new Set<string>([
    "EFI/OC/ACPI",
    "EFI/OC/Resources",
    "EFI/OC/Drivers",
    "EFI/OC/Tools",
  ]);
  for (const path of [...wanted.keys(), ...copies.map((x) => x.to)]) {
    dirs.add(path.split("/").slice(0, -1).join("/"));
  }
  // A rebuild starts from an empty tree.
  await ctx.op("fs.remove", { path: root, recursive: true, missingOk: true });
  for (const dir of [...dirs].sort()) await ctx.op("fs.mkdir", { path: join(root, dir) });
  for (const [path, bytes] of [...wanted.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    await ctx.op("fs.write", {
      path: join(root, path),
      contentBase64: base64(bytes ?? new Uint8Array()),
      ...(origin.has(path) ? { source: origin.get(path)! } : {}),
    });
  }
  for (const copy of copies) {
    await ctx.op("fs.copy", { from: copy.from, to: join(root, copy.to) });
  }
  await ctx.op("fs.write", {
    path: join(root, "EFI/OC/config.plist"),
    content: configXml(plist),
  });
}

export default definePlugin({
  stages: {
    async gather(ctx) {
      const c = config(ctx);
      const release = macRelease(c);
      if (!release) return ctx.set(SOURCES, null);
      const catalogue = await readCatalogue(ctx);
      const zips: Record<string, string | null> = {};
      const components = [
        { name: "OpenCorePkg", ...catalogue.opencore },
        ...catalogue.kexts,
      ];
      for (const part of components) {
        const got = await ctx.op<{ path: string }>("download", {
          url: part.url,
          sha256: part.sha256,
          label: `Downloading ${part.name} ${part.version}`,
        });
        // A dry run reads a zip already in the cache (stored under its sha256, checked when
        // downloaded), so that it plans the files the deploy writes.
        const cached = join(ctx.dirs.cache, "downloads", `sha256-${part.sha256}`);
        zips[part.name] = ctx.dryRun ? (await isFile(cached) ? cached : null) : got.path;
      }
      const host = ctx.get(ENVIRONMENT_DATA)!;
      const ovmf = host.firmware.ovmf.find((f) => !f.secureBoot && f.vars) ??
        host.firmware.ovmf.find((f) => f.vars);
      if (!ovmf?.vars) {
        throw stageError(
          "Cannot find an OVMF variables template",
          "Install OVMF (see gini check)",
          "OPENCORE_FAILED",
        );
      }
      ctx.set(SOURCES, { release: release.name, catalogue, zips, ovmfVars: ovmf.vars });
    },

    async edit(ctx) {
      const c = config(ctx);
      const sources = ctx.get(SOURCES);
      const release = macRelease(c);
      if (!sources || !release || !c.macos) return ctx.set(EDITED, null);
      // The VM's Mac identity is derived once (so gini plan shows the one gini up writes) and
      // kept outside the VM's folder, so that gini rm and a rebuild keep the same Mac (Apple's
      // services see one machine); a saved identity wins.
      const idDir = join(ctx.dirs.data, "macos", "identities");
      const idFile = join(idDir, `${c.name}.json`);
      let identity: MacIdentity;
      try {
        identity = JSON.parse(await ctx.host.readText(idFile)) as MacIdentity;
        const problems = identityProblems(identity);
        if (problems.length) {
          throw stageError(
            `Cannot use the Mac identity in ${idFile}: ${problems.join(", ")} malformed`,
            "Fix it, or remove the file to draw a new identity",
            "CONFIG_INVALID",
          );
        }
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
        identity = await vmIdentity(ctx, c.name, release.smbios);
        await ctx.op("fs.mkdir", { path: idDir });
        await ctx.op("fs.write", {
          path: idFile,
          content: `${JSON.stringify(identity, null, 2)}\n`,
          mode: 0o600,
        });
        ctx.ui.info(
          `New Mac identity for "${c.name}": ${identity.model}, serial ${identity.serial}`,
        );
      }
      const files = Object.values(sources.catalogue.opencore.files);
      const kexts: KextEntry[] = sources.catalogue.kexts.flatMap((k) =>
        Object.values(k.bundles).map((bundle) => ({
          bundle,
          executable: `Contents/MacOS/${bundle.replace(/\.kext$/, "")}`,
          comment: `${k.name} ${k.version}`,
        }))
      );
      const plist = buildConfig({
        identity,
        kexts,
        drivers: files.filter((f) => f.startsWith("EFI/OC/Drivers/")).map((f) =>
          f.slice("EFI/OC/Drivers/".length)
        ),
        tools: files.filter((f) => f.startsWith("EFI/OC/Tools/")).map((f) =>
          f.slice("EFI/OC/Tools/".length)
        ),
        bootArgs: c.macos.boot_args,
        resolution: `${c.macos.resolution}@32`,
        secureBootModel: c.macos.secure_boot_model,
        showPicker: c.macos.show_picker,
        timeout: c.macos.timeout,
      });
      ctx.set(EDITED, { plist, identity, kexts });
    },

    branding(ctx) {
      const c = config(ctx);
      if (!ctx.get(EDITED)) return ctx.set(BRANDING, null);
      const name = c.description ?? c.name;
      ctx.set(BRANDING, {
        name,
        volumeLabel: volumeLabel(c.name),
        picker: { PickerAttributes: 17, PickerVariant: "Auto", HideAuxiliary: true },
      });
    },

    async assemble(ctx) {
      const c = config(ctx);
      const sources = ctx.get(SOURCES);
      const edited = ctx.get(EDITED);
      if (!sources || !edited) return ctx.set(TREE, null);
      const branding = ctx.get(BRANDING)!;
      const custom = ctx.get(CUSTOM_KEXTS) ?? { kexts: [], copies: [] };
      const root = join(vmDir(ctx, c.name), "opencore");
      const wanted = new Map<string, Uint8Array | null>();
      // Where each file comes from: a plan (whose downloads are simulated) describes it by that.
      const origin = new Map<string, string>();
      const want = (to: string, bytes: Uint8Array | null, source: string) => {
        wanted.set(to, bytes);
        origin.set(to, source);
      };
      await wantOpenCore(sources, want);
      for (const kext of sources.catalogue.kexts) {
        await wantKext(ctx, kext, sources.zips[kext.name] ?? null, want);
      }
      const plist = structuredClone(edited.plist) as Record<string, Record<string, PlistValue>>;
      (plist.Kernel!.Add as PlistValue[]).push(...custom.kexts.map(kernelAdd));
      Object.assign(plist.Misc!.Boot as Record<string, PlistValue>, branding.picker);
      await writeTree(ctx, root, wanted, origin, custom.copies, plist);
      ctx.set(TREE, {
        root,
        files: [...wanted.keys(), ...custom.copies.map((x) => x.to), "EFI/OC/config.plist"].sort(),
      });
    },

    async compile(ctx) {
      const c = config(ctx);
      const sources = ctx.get(SOURCES);
      const tree = ctx.get(TREE);
      if (!sources || !tree || !c.macos) return ctx.set(IMAGE, null);
      const branding = ctx.get(BRANDING)!;
      const dir = vmDir(ctx, c.name);
      const raw = join(dir, "OpenCore.img");
      const qcow2 = join(dir, "OpenCore.qcow2");
      const sizeMiB = 64;
      // GPT: the partition runs from sector 2048 (1 MiB) to the last usable sector, leaving 34
      // sectors for the backup table; mkfs.fat gets its size in KiB.
      const sectors = sizeMiB * 2048;
      const partitionKiB = Math.floor((sectors - 34 - 2048) / 2);
      const image = `${raw}@@1M`;
      await ctx.op("fs.remove", { path: raw, missingOk: true });
      await ctx.op("fs.remove", { path: qcow2, missingOk: true });
      await ctx.op("run", {
        argv: ["qemu-img", "create", "-q", "-f", "raw", raw, `${sizeMiB}M`],
        creates: [raw],
      });
      await ctx.op("run", {
        argv: ["sgdisk", "-n", "1:2048:0", "-t", "1:EF00", "-c", "1:EFI System", raw],
        modifies: [raw],
      });
      await ctx.op("run", {
        argv: [
          "mkfs.fat",
          "-F",
          "32",
          "-s",
          "1",
          "-S",
          "512",
          "-n",
          branding.volumeLabel,
          "--offset",
          "2048",
          raw,
          String(partitionKiB),
        ],
        modifies: [raw],
      });
      await ctx.op("run", {
        argv: ["mcopy", "-s", "-Q", "-i", image, join(tree.root, "EFI"), "::/"],
        env: { MTOOLS_SKIP_CHECK: "1" },
        modifies: [raw],
      });
      await ctx.op("run", {
        argv: ["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, qcow2],
        creates: [qcow2],
      });
      await ctx.op("fs.remove", { path: raw, missingOk: true });
      const size = parseResolution(c.macos.resolution)!;
      const vars = setOvmfResolution(
        await Deno.readFile(sources.ovmfVars),
        size.width,
        size.height,
      );
      const varsPath = join(dir, `OVMF_VARS-${c.macos.resolution}.fd`);
      await ctx.op("fs.write", { path: varsPath, contentBase64: base64(vars), overwrite: true });
      ctx.set(IMAGE, { path: qcow2, vars: varsPath, release: sources.release });
    },
    "list-releases": listReleases,
    "make-vm-file": makeVmFile,
  },
  on: { "vm:file-requested": vmFileRequested },
  commands: { "macos versions": versionsCommand },
});
