/**
 * The host report's contract: `session.environment_data`, produced by env-check's
 * `finalize-host-report` and read by every plugin that plans against the host.
 * The fields named in the README's "Check your host" section are a documented
 * contract for scripts.
 *
 * Stages read and write these keys through the handles below (`ctx.get(ENVIRONMENT_DATA)`),
 * typed by their schemas.
 *
 * @module
 */
import { z } from "zod";
import type { ContextKey, Plain } from "../../workers/sdk.ts";

const hex4 = z.string().regex(/^[0-9a-f]{4}$/);

/** One PCI function. */
export const PciDeviceSchema = z.object({
  address: z.string().regex(/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/),
  /** Class and subclass, as lspci shows them: "0300". */
  class: hex4,
  /** Programming interface byte. */
  progIf: z.string().regex(/^[0-9a-f]{2}$/),
  vendor: hex4,
  device: hex4,
  subsystemVendor: hex4.nullable(),
  subsystemDevice: hex4.nullable(),
  revision: z.string().nullable(),
  driver: z.string().nullable(),
  iommuGroup: z.number().int().nonnegative().nullable(),
  bootVga: z.boolean().nullable(),
  className: z.string().nullable(),
  vendorName: z.string().nullable(),
  deviceName: z.string().nullable(),
});
export type PciDevice = Plain<z.infer<typeof PciDeviceSchema>>;

/** A PASS/WARN/FAIL line of `gini check`. */
export const CheckSchema = z.object({
  id: z.string(),
  status: z.enum(["PASS", "WARN", "FAIL"]),
  title: z.string(),
  detail: z.string(),
  hint: z.string().optional(),
});
export type Check = Plain<z.infer<typeof CheckSchema>>;

export const OsInfoSchema = z.object({
  id: z.string(),
  idLike: z.array(z.string()),
  name: z.string(),
  version: z.string(),
  prettyName: z.string(),
  kernel: z.string(),
  cmdline: z.string(),
  warnings: z.array(z.string()),
  ms: z.number().nonnegative(),
});
/** `env_check.os`: the distribution and the running kernel. */
export type OsInfo = Plain<z.infer<typeof OsInfoSchema>>;

export const CpuInfoSchema = z.object({
  cpu: z.object({
    vendor: z.enum(["intel", "amd", "other", "unknown"]),
    vendorId: z.string(),
    model: z.string(),
    sockets: z.number().int().nonnegative(),
    cores: z.number().int().nonnegative(),
    threads: z.number().int().nonnegative(),
    flags: z.array(z.string()),
  }),
  kvm: z.object({
    present: z.boolean(),
    accessible: z.boolean(),
    usable: z.boolean(),
    module: z.string().nullable(),
    nested: z.boolean().nullable(),
    ignoreMsrs: z.boolean().nullable(),
    reason: z.string(),
  }),
  accel: z.enum(["kvm", "tcg"]),
  warnings: z.array(z.string()),
  ms: z.number().nonnegative(),
});
/** `env_check.cpu`: the CPU and KVM. */
export type CpuInfo = Plain<z.infer<typeof CpuInfoSchema>>;

export const MemoryInfoSchema = z.object({
  memory: z.object({
    totalBytes: z.number().nonnegative(),
    availableBytes: z.number().nonnegative(),
  }),
  hugepages: z.array(z.object({
    sizeBytes: z.number().int().positive(),
    total: z.number().int().nonnegative(),
    free: z.number().int().nonnegative(),
  })),
  transparentHugepages: z.enum(["always", "madvise", "never", "unknown"]),
  warnings: z.array(z.string()),
  ms: z.number().nonnegative(),
});
/** `env_check.memory`: memory and huge pages. */
export type MemoryInfo = Plain<z.infer<typeof MemoryInfoSchema>>;

export const GpuSchema = z.object({
  address: z.string(),
  vendor: hex4,
  device: hex4,
  class: hex4,
  bootVga: z.boolean(),
  driver: z.string().nullable(),
  iommuGroup: z.number().int().nullable(),
  name: z.string(),
  /** Other functions of the same card (HDMI audio, USB-C controller…). */
  companions: z.array(z.string()),
});
export type Gpu = Plain<z.infer<typeof GpuSchema>>;

export const PciInfoSchema = z.object({
  devices: z.array(PciDeviceSchema),
  gpus: z.array(GpuSchema),
  warnings: z.array(z.string()),
  ms: z.number().nonnegative(),
});
/** `env_check.pci`: PCI functions and the GPUs among them. */
export type PciInfo = Plain<z.infer<typeof PciInfoSchema>>;

export const IommuInfoSchema = z.object({
  enabled: z.boolean(),
  acpiTable: z.enum(["DMAR", "IVRS"]).nullable(),
  units: z.array(z.string()),
  cmdline: z.array(z.string()),
  interruptRemapping: z.boolean().nullable(),
  groups: z.array(z.object({
    id: z.number().int().nonnegative(),
    devices: z.array(z.object({
      address: z.string(),
      vendor: hex4,
      device: hex4,
      class: hex4,
      driver: z.string().nullable(),
    })),
  })),
  warnings: z.array(z.string()),
  ms: z.number().nonnegative(),
});
/** `env_check.iommu`: the IOMMU and its groups. */
export type IommuInfo = Plain<z.infer<typeof IommuInfoSchema>>;

export const ToolsInfoSchema = z.object({
  modules: z.record(z.string(), z.boolean()),
  devices: z.object({ kvm: z.boolean(), vhostNet: z.boolean(), tun: z.boolean() }),
  programs: z.record(z.string(), z.string().nullable()),
  firmware: z.object({
    ovmf: z.array(
      z.object({ code: z.string(), vars: z.string().nullable(), secureBoot: z.boolean() }),
    ),
  }),
  lvm: z.object({
    volumeGroups: z.array(
      z.object({ name: z.string(), sizeBytes: z.number(), freeBytes: z.number() }),
    ),
  }).nullable(),
  network: z.object({
    interfaces: z.array(
      z.object({ name: z.string(), bridge: z.boolean(), mac: z.string().nullable() }),
    ),
  }),
  notChecked: z.array(z.string()),
  warnings: z.array(z.string()),
  ms: z.number().nonnegative(),
});
/** `env_check.tools`: modules, device nodes, programs, firmware, LVM and network. */
export type ToolsInfo = Plain<z.infer<typeof ToolsInfoSchema>>;

/** The whole host report. */
export const EnvironmentDataSchema = z.object({
  hostRoot: z.string(),
  os: OsInfoSchema.omit({ warnings: true, ms: true }),
  cpu: CpuInfoSchema.shape.cpu,
  kvm: CpuInfoSchema.shape.kvm,
  accel: z.enum(["kvm", "tcg"]),
  memory: MemoryInfoSchema.shape.memory,
  hugepages: MemoryInfoSchema.shape.hugepages,
  transparentHugepages: MemoryInfoSchema.shape.transparentHugepages,
  pci: z.array(PciDeviceSchema),
  gpus: z.array(GpuSchema),
  iommu: IommuInfoSchema.omit({ warnings: true, ms: true }),
  modules: ToolsInfoSchema.shape.modules,
  devices: ToolsInfoSchema.shape.devices,
  programs: ToolsInfoSchema.shape.programs,
  firmware: ToolsInfoSchema.shape.firmware,
  lvm: ToolsInfoSchema.shape.lvm,
  network: ToolsInfoSchema.shape.network,
  notChecked: z.array(z.string()),
  warnings: z.array(z.string()),
  checks: z.array(CheckSchema),
  timings: z.object({ gatherMs: z.number() }),
});
export type EnvironmentData = Plain<z.infer<typeof EnvironmentDataSchema>>;

export const OS_INFO: ContextKey<OsInfo> = "env_check.os";
export const CPU_INFO: ContextKey<CpuInfo> = "env_check.cpu";
export const MEMORY_INFO: ContextKey<MemoryInfo> = "env_check.memory";
export const PCI_INFO: ContextKey<PciInfo> = "env_check.pci";
export const IOMMU_INFO: ContextKey<IommuInfo> = "env_check.iommu";
export const TOOLS_INFO: ContextKey<ToolsInfo> = "env_check.tools";
/** `session.environment_data`: the host report every plugin that plans against the host reads. */
export const ENVIRONMENT_DATA: ContextKey<EnvironmentData> = "session.environment_data";

/** Schemas by context key, for the kernel. */
export const contracts = {
  [OS_INFO]: OsInfoSchema,
  [CPU_INFO]: CpuInfoSchema,
  [MEMORY_INFO]: MemoryInfoSchema,
  [PCI_INFO]: PciInfoSchema,
  [IOMMU_INFO]: IommuInfoSchema,
  [TOOLS_INFO]: ToolsInfoSchema,
  [ENVIRONMENT_DATA]: EnvironmentDataSchema,
};
