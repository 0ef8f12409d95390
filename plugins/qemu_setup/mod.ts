/**
 * qemu-setup: from the user's VM file (`session.user_vm_request`, read by the
 * kernel) and the host report to `session.vm_definition` — the QEMU argv — and
 * the libvirt domain XML. It changes nothing; it only asks `qemu-img info`
 * (read-only) about the images the file names. Its commands: `gini new` writes a VM file
 * sized for the host (the one file the user named), `gini schema vm` prints the VM file's
 * JSON Schema.
 *
 * @module
 */
import { join } from "../../workers/path.ts";
import {
  type ContextKey,
  definePlugin,
  type Json,
  type Plain,
  type StageContext,
  USER_VM_REQUEST,
} from "../../workers/sdk.ts";
import { ENVIRONMENT_DATA } from "../env_check/contracts.ts";
import { GUEST_BASE_IMAGE } from "../linux_setup/contracts.ts";
import { MACOS_RECOVERY } from "../macos_recovery/contracts.ts";
import { WINDOWS_MEDIA } from "../windows_setup/contracts.ts";
import {
  LIBVIRT_XML,
  VM_CONFIG,
  VM_DEFINITION,
  type VmDefinition,
  type VmNic,
} from "./contracts.ts";
import { parseVmConfig, type VmConfig, vmJsonSchema } from "./vm_schema.ts";
import {
  configError,
  configureVfio,
  defineCpuRam,
  defineNetworking,
  defineStorage,
  type Probe,
  validateRequest,
  windowsInstall,
} from "./_define.ts";
import { vmUuid } from "./names.ts";
import { qemuArgv, tpmModel } from "./_qemu_args.ts";
import { libvirtXml } from "./_libvirt_xml.ts";
import { atLeast, libvirtVersion, NVRAM_FORMAT_SINCE, showVersion } from "./_libvirt_version.ts";
import { macosArgs } from "./_macos.ts";
import { writeNewVmFile } from "./_new_vm.ts";
import { newCommand } from "./commands.ts";
import { applyVmPatches } from "./_vm_patch.ts";

/** The parts of the definition, each written by its stage for finalize-vm-definition. */
const VALIDATED: ContextKey<Plain<ReturnType<typeof validateRequest>>> = "qemu_setup.validated";
const CPU_RAM: ContextKey<Plain<ReturnType<typeof defineCpuRam>>> = "qemu_setup.cpu_ram";
const STORAGE: ContextKey<Pick<VmDefinition, "disks" | "firmware" | "kernelBoot">> =
  "qemu_setup.storage";
const NETWORK: ContextKey<VmNic[]> = "qemu_setup.network";
const VFIO: ContextKey<Pick<VmDefinition, "usb" | "passthrough">> = "qemu_setup.vfio";

const source = (ctx: StageContext) => ctx.get(USER_VM_REQUEST)!;
const config = (ctx: StageContext) => ctx.get(VM_CONFIG)!;
const host = (ctx: StageContext) => ctx.get(ENVIRONMENT_DATA)!;
const vmDir = (ctx: StageContext, name: string) => join(ctx.dirs.data, "vms", name);
const validated = (ctx: StageContext) => ctx.get(VALIDATED)!;
/** The macOS plan and the recovery image macos-recovery prepared, for a macOS guest. */
const macosStorage = (ctx: StageContext) => {
  const plan = validated(ctx).macos;
  if (!plan) return null;
  return { plan, recovery: ctx.get(MACOS_RECOVERY) ?? null };
};

function probeWith(ctx: StageContext): Probe {
  return async (path) => {
    const out = await ctx.op<{ code: number; stdout: string }>("run", {
      argv: ["qemu-img", "info", "--output=json", "-U", path],
      allowFailure: true,
      timeoutMs: 30_000,
    });
    if (out.code !== 0) return null;
    const info = JSON.parse(out.stdout) as { format: string; "virtual-size": number };
    return { format: info.format, virtualSize: info["virtual-size"] };
  };
}

/**
 * The `on_pre_vm_start` lifecycle event: subscribers, in priority order, may reply
 * `{ patch }` (a JSON merge patch of the definition). Each patch is checked against what the
 * kernel attests its plugin may change (`_vm_patch.ts`), and the result is validated again.
 */
async function preVmStart(
  ctx: StageContext,
  definition: Omit<VmDefinition, "argv">,
): Promise<Omit<VmDefinition, "argv">> {
  const replies = await ctx.emitAttested("on_pre_vm_start", { definition });
  return applyVmPatches(definition, replies);
}

/**
 * A libvirt VM keeps raw UEFI variables when the installed libvirt cannot read qcow2 ones
 * (`<nvram format>` is 9.2.0's): it boots, and snapshots of it are refused with the reason.
 */
async function nvramForLibvirt(
  ctx: StageContext,
  c: VmConfig,
  storage: Pick<VmDefinition, "disks" | "firmware" | "kernelBoot">,
): Promise<Pick<VmDefinition, "disks" | "firmware" | "kernelBoot">> {
  if (c.qemu.backend !== "libvirt" || storage.firmware.varsFormat !== "qcow2") return storage;
  const version = await libvirtVersion(ctx);
  if (version && atLeast(version, NVRAM_FORMAT_SINCE)) return storage;
  ctx.ui.warn(
    `VM "${c.name}" keeps its UEFI variables raw: libvirt ${
      version ? showVersion(version) : "(version unknown)"
    } reads qcow2 NVRAM only from ${
      showVersion(NVRAM_FORMAT_SINCE)
    } on, and raw variables cannot be snapshotted (gini snapshot refuses this VM; backend = "qemu" has no such limit)`,
  );
  const vars = join(vmDir(ctx, c.name), "OVMF_VARS.fd");
  return { ...storage, firmware: { ...storage.firmware, vars, varsFormat: "raw" } };
}

export default definePlugin({
  stages: {
    "load-vm-config-toml": (ctx) => {
      const { file, text } = source(ctx);
      ctx.set(VM_CONFIG, parseVmConfig(text, file));
    },
    "validate-vm-request": (ctx) => {
      const checked = validateRequest(config(ctx), host(ctx), source(ctx));
      for (const warning of checked.warnings) ctx.ui.warn(warning);
      ctx.set(VALIDATED, checked);
    },
    "define-cpu-ram": (ctx) => {
      const { accel, macos } = validated(ctx);
      ctx.set(CPU_RAM, defineCpuRam(config(ctx), accel, macos));
    },
    "define-storage": async (ctx) => {
      const c = config(ctx);
      const base = ctx.get(GUEST_BASE_IMAGE) ?? null;
      const storage = await defineStorage(
        c,
        host(ctx),
        source(ctx),
        vmDir(ctx, c.name),
        probeWith(ctx),
        base,
        macosStorage(ctx),
        ctx.get(WINDOWS_MEDIA) ?? null,
      );
      ctx.set(STORAGE, await nvramForLibvirt(ctx, c, storage));
    },
    "define-networking": async (ctx) => {
      ctx.set(NETWORK, await defineNetworking(config(ctx), host(ctx), source(ctx)));
    },
    "configure-vfio": (ctx) => {
      ctx.set(VFIO, configureVfio(config(ctx), host(ctx), source(ctx)));
    },
    "finalize-vm-definition": async (ctx) => {
      const c = config(ctx);
      const dir = vmDir(ctx, c.name);
      const cpuRam = ctx.get(CPU_RAM)!;
      const storage = ctx.get(STORAGE)!;
      const vfio = ctx.get(VFIO)!;
      const checked = validated(ctx);
      const nics = ctx.get(NETWORK)!;
      const definition: Omit<VmDefinition, "argv"> = {
        name: c.name,
        uuid: await vmUuid(c.name),
        guest: c.guest,
        configFile: source(ctx).file,
        accel: cpuRam.accel,
        machine: c.machine,
        cpu: cpuRam.cpu,
        memory: cpuRam.memory,
        disks: storage.disks,
        // Releases before Big Sur have no virtio-net driver.
        nics: checked.macos?.release.nic === "vmxnet3"
          ? nics.map((n) =>
            n.model === "virtio" ? { ...n, model: "vmxnet3", device: "vmxnet3" } : n
          )
          : nics,
        display: { type: c.display.type, port: c.display.port ?? null },
        firmware: storage.firmware,
        tpm: c.tpm.enabled
          ? {
            enabled: true,
            model: tpmModel(c.guest),
            socket: join(dir, "swtpm.sock"),
            stateDir: join(dir, "tpm"),
          }
          : { enabled: false, socket: null, stateDir: null },
        usb: vfio.usb,
        passthrough: vfio.passthrough,
        kernelBoot: storage.kernelBoot,
        extraArgs: [...(checked.macos ? macosArgs() : []), ...c.qemu.extra_args],
        backend: c.qemu.backend,
        libvirtUri: c.qemu.libvirt_uri,
        // As linux-setup's cloud-init seed makes the user (gini ssh logs in as it).
        login: c.linux
          ? {
            user: c.linux.user ?? source(ctx).defaults?.user ?? "gini",
            authorizedKeys: c.linux.ssh_authorized_keys ?? source(ctx).defaults?.sshKeys ?? [],
          }
          : null,
        paths: {
          dir,
          startScript: join(dir, "start.sh"),
          domainXml: join(dir, "vm.xml"),
          definition: join(dir, "vm.json"),
          qmpSocket: join(dir, "qmp.sock"),
          serialSocket: join(dir, "serial.sock"),
          agentSocket: join(dir, "qga.sock"),
          serialLog: join(dir, "serial.log"),
          pidFile: join(dir, "qemu.pid"),
        },
        hypervisor: {
          kvmHidden: false,
          hypervVendorId: null,
          ...(c.guest === "windows" && cpuRam.accel === "kvm" && checked.intel
            ? { evmcs: true }
            : {}),
        },
        emulator: "qemu-system-x86_64",
        warnings: checked.warnings,
      };
      const install = windowsInstall(storage.disks, ctx.get(WINDOWS_MEDIA) ?? null);
      if (install) definition.install = install;
      // QEMU and swtpm cannot listen on a longer path (sun_path holds 108 bytes with its NUL).
      const { qmpSocket, serialSocket, agentSocket } = definition.paths;
      for (const socket of [qmpSocket, serialSocket, agentSocket, definition.tpm.socket ?? ""]) {
        const bytes = new TextEncoder().encode(socket).byteLength;
        if (bytes > 107) {
          throw configError(
            source(ctx),
            ["name"],
            `Cannot place the socket "${socket}": a UNIX socket path holds at most 107 bytes, this one has ${bytes}`,
            "Choose a shorter data directory (--data-dir or XDG_DATA_HOME) or a shorter VM name",
          );
        }
      }
      const final = await preVmStart(ctx, definition);
      ctx.set(VM_DEFINITION, { ...final, argv: qemuArgv(final) });
    },
    "generate-libvirt-xml": async (ctx) => {
      const def = ctx.get(VM_DEFINITION)!;
      const version = def.firmware.varsFormat === "qcow2" ? await libvirtVersion(ctx) : null;
      const nvramFormat = version !== null && atLeast(version, NVRAM_FORMAT_SINCE);
      ctx.set(LIBVIRT_XML, libvirtXml(def, { nvramFormat }));
    },
    "write-vm-file": writeNewVmFile,
    "vm-json-schema": (ctx) => {
      ctx.set("qemu_setup.vm_json_schema", vmJsonSchema() as Json);
    },
  },
  commands: { new: newCommand },
});
