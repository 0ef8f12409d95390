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
import { join } from "node:path";
import { definePlugin, type Json, type StageContext } from "../../workers/sdk.ts";
import type { EnvironmentData } from "../env_check/contracts.ts";
import { type VmDefinition, VmDefinitionSchema } from "./contracts.ts";
import { parseVmConfig, type VmConfig, vmJsonSchema } from "./vm_schema.ts";
import {
  type BaseImage,
  configError,
  configureVfio,
  defineCpuRam,
  defineNetworking,
  defineStorage,
  type Probe,
  type Source,
  validateRequest,
} from "./_define.ts";
import { vmUuid } from "./names.ts";
import { qemuArgv } from "./_qemu_args.ts";
import { libvirtXml } from "./_libvirt_xml.ts";
import { macosArgs, type MacosPlan, type RecoveryImage } from "./_macos.ts";
import { writeNewVmFile } from "./_new_vm.ts";
import { newCommand } from "./commands.ts";

const source = (ctx: StageContext) =>
  ctx.get<{ file: string; text: string }>("session.user_vm_request")! as Source;
const config = (ctx: StageContext) => ctx.get("qemu_setup.config") as unknown as VmConfig;
const host = (ctx: StageContext) =>
  ctx.get("session.environment_data") as unknown as EnvironmentData;
const vmDir = (ctx: StageContext, name: string) => join(ctx.dirs.data, "vms", name);
const validated = (ctx: StageContext) =>
  ctx.get("qemu_setup.validated") as unknown as {
    accel: "kvm" | "tcg";
    warnings: string[];
    macos: MacosPlan | null;
  };
/** The macOS plan and the recovery image macos-recovery prepared, for a macOS guest. */
const macosStorage = (ctx: StageContext) => {
  const plan = validated(ctx).macos;
  if (!plan) return null;
  return {
    plan,
    recovery: (ctx.get("session.macos_recovery") ?? null) as unknown as RecoveryImage | null,
  };
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

/**
 * The `on_pre_vm_start` lifecycle event: subscribers, in priority order, may reply
 * `{ patch }` (a JSON merge patch of the definition). The result is validated again, and
 * what identifies the VM (name, uuid, paths) may not change.
 */
async function preVmStart(
  ctx: StageContext,
  definition: Omit<VmDefinition, "argv">,
): Promise<Omit<VmDefinition, "argv">> {
  const replies = await ctx.emit("on_pre_vm_start", { definition } as unknown as Json);
  let current = definition as unknown as Json;
  for (const reply of replies) {
    const patch = (reply as { patch?: Json } | null)?.patch;
    if (patch !== undefined) current = mergePatch(current, patch);
  }
  if (current === (definition as unknown as Json)) return definition;
  const parsed = VmDefinitionSchema.omit({ argv: true }).safeParse(current);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(
      `A plugin's on_pre_vm_start patch made the VM definition invalid: ${
        issue.path.join(".")
      }: ${issue.message}`,
    );
  }
  for (const key of ["name", "uuid", "paths", "configFile"] as const) {
    if (JSON.stringify(parsed.data[key]) !== JSON.stringify(definition[key])) {
      throw new Error(`A plugin's on_pre_vm_start patch may not change "${key}"`);
    }
  }
  return parsed.data;
}

export default definePlugin({
  stages: {
    "load-vm-config-toml": (ctx) => {
      const { file, text } = source(ctx);
      ctx.set("qemu_setup.config", parseVmConfig(text, file) as unknown as Json);
    },
    "validate-vm-request": (ctx) => {
      const checked = validateRequest(config(ctx), host(ctx), source(ctx));
      for (const warning of checked.warnings) ctx.ui.warn(warning);
      ctx.set("qemu_setup.validated", checked as unknown as Json);
    },
    "define-cpu-ram": (ctx) => {
      const { accel, macos } = validated(ctx);
      ctx.set("qemu_setup.cpu_ram", defineCpuRam(config(ctx), accel, macos) as unknown as Json);
    },
    "define-storage": async (ctx) => {
      const c = config(ctx);
      const base = ctx.get("session.guest_base_image") as unknown as BaseImage | null;
      const storage = await defineStorage(
        c,
        host(ctx),
        source(ctx),
        vmDir(ctx, c.name),
        probeWith(ctx),
        base,
        macosStorage(ctx),
      );
      ctx.set("qemu_setup.storage", storage as unknown as Json);
    },
    "define-networking": async (ctx) => {
      ctx.set(
        "qemu_setup.network",
        await defineNetworking(config(ctx), host(ctx), source(ctx)) as unknown as Json,
      );
    },
    "configure-vfio": (ctx) => {
      ctx.set(
        "qemu_setup.vfio",
        configureVfio(config(ctx), host(ctx), source(ctx)) as unknown as Json,
      );
    },
    "finalize-vm-definition": async (ctx) => {
      const c = config(ctx);
      const dir = vmDir(ctx, c.name);
      const cpuRam = ctx.get("qemu_setup.cpu_ram") as unknown as ReturnType<typeof defineCpuRam>;
      const storage = ctx.get("qemu_setup.storage") as unknown as Pick<
        VmDefinition,
        "disks" | "firmware" | "kernelBoot"
      >;
      const vfio = ctx.get("qemu_setup.vfio") as unknown as Pick<
        VmDefinition,
        "usb" | "passthrough"
      >;
      const checked = validated(ctx);
      const nics = ctx.get("qemu_setup.network") as unknown as VmDefinition["nics"];
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
          ? { enabled: true, socket: join(dir, "swtpm.sock"), stateDir: join(dir, "tpm") }
          : { enabled: false, socket: null, stateDir: null },
        usb: vfio.usb,
        passthrough: vfio.passthrough,
        kernelBoot: storage.kernelBoot,
        extraArgs: [...(checked.macos ? macosArgs() : []), ...c.qemu.extra_args],
        backend: c.qemu.backend,
        libvirtUri: c.qemu.libvirt_uri,
        paths: {
          dir,
          startScript: join(dir, "start.sh"),
          domainXml: join(dir, "vm.xml"),
          definition: join(dir, "vm.json"),
          qmpSocket: join(dir, "qmp.sock"),
          serialLog: join(dir, "serial.log"),
          pidFile: join(dir, "qemu.pid"),
        },
        hypervisor: { kvmHidden: false, hypervVendorId: null },
        emulator: "qemu-system-x86_64",
        warnings: checked.warnings,
      };
      // QEMU and swtpm cannot listen on a longer path (sun_path holds 108 bytes with its NUL).
      for (const socket of [definition.paths.qmpSocket, definition.tpm.socket ?? ""]) {
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
      ctx.set(
        "session.vm_definition",
        { ...final, argv: qemuArgv(final) } as unknown as Json,
      );
    },
    "generate-libvirt-xml": (ctx) => {
      ctx.set(
        "session.libvirt_xml",
        libvirtXml(ctx.get("session.vm_definition") as unknown as VmDefinition),
      );
    },
    "write-vm-file": writeNewVmFile,
    "vm-json-schema": (ctx) => {
      ctx.set("qemu_setup.vm_json_schema", vmJsonSchema() as Json);
    },
  },
  commands: { new: newCommand },
});
