/**
 * What a macOS guest needs from its VM: the release's CPU model (refused when the host cannot
 * run it under KVM), q35, a power-of-two core count, 8 GiB or a warning, UEFI with OVMF
 * variables for the chosen resolution (written by opencore:compile), the OpenCore disk first,
 * the recovery image as an overlay, the release's disk bus and NIC model, and the devices
 * macOS expects: isa-applesmc with the OSK, S3 off, no HPET, USB keyboard and tablet.
 *
 * @module
 */
import { join } from "../../workers/path.ts";
import type { EnvironmentData } from "../env_check/contracts.ts";
import {
  APPLE_SMC_OSK,
  chooseCpu,
  findRelease,
  MAC_RELEASES,
  type MacRelease,
} from "../opencore/releases.ts";
import { configError, type Source } from "./_define.ts";
import type { VmDisk } from "./contracts.ts";
import type { RecoveryImage } from "../macos_recovery/contracts.ts";
import { parseSize, type VmConfig } from "./vm_schema.ts";

/** What validation decided for a macOS guest. */
export interface MacosPlan {
  release: MacRelease;
  cpu: { model: string; features: string[] };
  resolution: string;
}

const GIB = 1024 ** 3;

/** Checks a macOS VM file against the host; returns the plan and warnings. */
export function planMacos(
  config: VmConfig,
  host: EnvironmentData,
  source: Source,
  accel: "kvm" | "tcg",
): { plan: MacosPlan; warnings: string[] } {
  if (!config.macos) {
    throw configError(
      source,
      ["guest"],
      "Cannot make a macOS VM without a [macos] table",
      'Add [macos] with version = "sonoma" (gini macos versions lists them)',
    );
  }
  const release = findRelease(config.macos.version);
  if (!release) {
    throw configError(
      source,
      ["macos", "version"],
      `Cannot install macOS "${config.macos.version}": not a release Gini knows`,
      `Known: ${MAC_RELEASES.map((r) => r.name).join(", ")}`,
    );
  }
  if (config.machine !== "q35") {
    throw configError(
      source,
      ["machine"],
      "Cannot run macOS on the pc machine type",
      'Set machine = "q35"',
    );
  }
  const { cores } = config.cpu;
  if ((cores & (cores - 1)) !== 0) {
    const lower = 2 ** Math.floor(Math.log2(cores));
    throw configError(
      source,
      ["cpu", "cores"],
      `Cannot give macOS ${cores} cores: macOS expects a power of two`,
      `Set cpu.cores = ${lower} (or ${lower * 2})`,
    );
  }
  const warnings: string[] = [];
  if (parseSize(config.memory.size)! < 8 * GIB) {
    warnings.push(
      `${release.title} with ${config.memory.size} of memory will be slow to install; 8G or more is recommended`,
    );
  }
  let cpu = { model: config.cpu.model, features: config.cpu.features };
  if (config.cpu.model === "host") {
    const choice = chooseCpu(release, { vendor: host.cpu.vendor, flags: host.cpu.flags }, accel);
    if (!choice.ok) {
      throw configError(
        source,
        ["macos", "version"],
        `Cannot run ${release.title} under KVM on this host: ${choice.reason}; the CPU (${host.cpu.model}) lacks ${
          choice.missing.join(", ")
        }`,
        `Choose an older release (${
          MAC_RELEASES.filter((r) => chooseCpu(r, host.cpu, accel).ok).map((r) => r.name).at(-1) ??
            "none fits"
        } is the newest this CPU runs), or set accel = "tcg" (very slow)`,
      );
    }
    warnings.push(...choice.notes);
    cpu = { model: choice.model, features: [...choice.features, ...config.cpu.features] };
  }
  return { plan: { release, cpu, resolution: config.macos.resolution }, warnings };
}

/** The OpenCore disk and the recovery overlay, ahead of the user's disks. */
export function macosDisks(dir: string, recovery: RecoveryImage | null): VmDisk[] {
  const base = {
    backend: "file" as const,
    bus: "sata" as const,
    volumeGroup: null,
    logicalVolume: null,
    readonly: false,
    cdrom: false,
  };
  const disks: VmDisk[] = [{
    ...base,
    id: "opencore",
    name: "opencore",
    path: join(dir, "OpenCore.qcow2"),
    format: "qcow2",
    sizeBytes: 0,
    backing: null,
    create: false,
    bootIndex: 1,
  }];
  if (recovery) {
    disks.push({
      ...base,
      id: "recovery",
      name: "recovery",
      path: join(dir, "BaseSystem.qcow2"),
      format: "qcow2",
      // 0: the size of the image it overlays, which only the download tells (not a dry run).
      sizeBytes: 0,
      backing: { path: recovery.path, format: "raw" },
      create: true,
      bootIndex: null,
    });
  }
  return disks;
}

/** The devices and settings macOS expects beyond the definition's own. */
export function macosArgs(): string[] {
  return [
    "-device",
    `isa-applesmc,osk=${APPLE_SMC_OSK}`,
    "-global",
    "ICH9-LPC.disable_s3=1",
    "-smbios",
    "type=2",
    "-device",
    "qemu-xhci,id=macos-xhci",
    "-device",
    "usb-kbd,bus=macos-xhci.0",
    "-device",
    "usb-tablet,bus=macos-xhci.0",
  ];
}

/** The OVMF variables template opencore:compile writes for the resolution. */
export function macosVarsTemplate(dir: string, resolution: string): string {
  return join(dir, `OVMF_VARS-${resolution}.fd`);
}
