/**
 * opencore's commands and the VM files it makes: `gini macos versions` (the releases it can
 * install), `gini create-vm` (a macOS VM file the kernel then deploys as `gini up` does), and the
 * file of `gini new NAME --guest macos` (its answer to "vm:file-requested", sized by qemu-setup).
 *
 * @module
 */
import { join } from "../../workers/path.ts";
import {
  type CommandDefinition,
  type ContextKey,
  contextValue,
  type EventHandler,
  type Json,
  type Plain,
  type StageContext,
  UsageError,
} from "../../workers/sdk.ts";
import { parseSize } from "../qemu_setup/size.ts";
import { CPU_PROFILES, findRelease, MAC_RELEASES, type MacRelease } from "./releases.ts";
import { macosVmToml } from "./_vmfile.ts";

/** `opencore.releases`: what `gini macos versions` lists. */
export type ReleaseRow = Plain<MacRelease & { cpuModel: string }>;
export const RELEASES: ContextKey<ReleaseRow[]> = "opencore.releases";

/** `opencore.vm_file`: the VM file `gini create-vm` made, for the kernel to deploy. */
export type MadeVmFile = { file: string; text: string; flags: Record<string, string> };
export const VM_FILE: ContextKey<MadeVmFile> = "opencore.vm_file";

/** `session.command` of `gini create-vm`, as the kernel parsed it. */
type CreateVmCommand = {
  flags: { name: string; version: string; "cpu-cores": number; ram: string; disk: string };
};
const COMMAND: ContextKey<CreateVmCommand> = "session.command";

/** The error for a release Gini does not know, with the ones it does. */
function unknownRelease(name: string): { message: string; hint: string } {
  return {
    message: `Cannot install macOS "${name}": not a release Gini knows`,
    hint: `Known: ${MAC_RELEASES.map((r) => r.name).join(", ")} (gini macos versions)`,
  };
}

/** A macOS release by name, or a usage error listing them. */
function macRelease(name: string): MacRelease {
  const release = findRelease(name);
  if (release) return release;
  const { message, hint } = unknownRelease(name);
  throw new UsageError(message, { hint });
}

/** The stage of `gini macos versions`: every release, with its CPU model. */
export function listReleases(ctx: StageContext): void {
  ctx.set(RELEASES, MAC_RELEASES.map((r) => ({ ...r, cpuModel: CPU_PROFILES[r.cpu].model })));
}

/** `gini macos versions`: a table, and Apple's licence. */
export const versionsCommand: CommandDefinition = {
  render(view) {
    const list = contextValue(view, RELEASES)!;
    return [
      "name         version  title                 board-id               CPU model       disk    nic",
      ...list.map((r) =>
        `${r.name.padEnd(12)} ${r.version.padEnd(8)} ${r.title.padEnd(21)} ${
          r.boardId.padEnd(22)
        } ${r.cpuModel.padEnd(15)} ${r.disk.padEnd(7)} ${r.nic}`
      ),
      "",
      "Run macOS only on Apple hardware, as Apple's licence requires.",
    ].join("\n");
  },
};

/**
 * The stage of `gini create-vm`: checks the flags and makes the VM file
 * (`<config>/vms/<name>.toml`); the kernel deploys it, writing it as part of the deploy.
 */
export function makeVmFile(ctx: StageContext): void {
  const { flags } = ctx.get(COMMAND)!;
  const cores = flags["cpu-cores"];
  if (!Number.isInteger(cores) || cores < 1) {
    throw new UsageError(`Cannot use --cpu-cores "${cores}": expected a number`, {
      location: { flag: "--cpu-cores" },
      hint: "For example --cpu-cores 4 (a power of two)",
    });
  }
  for (const [flag, value] of [["--ram", flags.ram], ["--disk", flags.disk]] as const) {
    if (parseSize(value) === undefined) {
      throw new UsageError(`Cannot use ${flag} "${value}": expected a size such as 8G`, {
        location: { flag },
        hint: `Give a number with a unit: K, M, G or T (${flag} 8G)`,
      });
    }
  }
  const slug = flags.name.trim().replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^-+|-+$/g, "");
  if (!slug) throw new UsageError(`Cannot make a VM name from "${flags.name}"`);
  const text = macosVmToml({
    name: slug,
    ...(slug !== flags.name ? { description: flags.name } : {}),
    release: macRelease(flags.version),
    cores,
    memory: flags.ram,
    disk: flags.disk,
  });
  ctx.set(VM_FILE, {
    file: join(ctx.dirs.config, "vms", `${slug}.toml`),
    text,
    flags: {
      name: "--name",
      "cpu.cores": "--cpu-cores",
      "memory.size": "--ram",
      "disks.0.size": "--disk",
      "macos.version": "--version",
    },
  });
}

/**
 * "vm:file-requested" (`gini new NAME --guest macos`, emitted by qemu-setup with the sizes it
 * chose): the VM file's `{ text }`, or `{ error, hint }` for a release Gini does not know.
 */
export const vmFileRequested: EventHandler = (payload) => {
  const request = payload as {
    name: string;
    guest: string;
    version: string;
    cores: number;
    memory: string;
    disk: string;
  };
  if (request.guest !== "macos") return;
  const release = findRelease(request.version);
  if (!release) {
    const { message, hint } = unknownRelease(request.version);
    return { error: message, hint };
  }
  const text = macosVmToml({
    name: request.name,
    release,
    cores: request.cores,
    memory: request.memory,
    disk: request.disk,
  });
  return { text } satisfies Json;
};
