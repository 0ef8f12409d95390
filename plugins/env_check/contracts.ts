/**
 * The host report's contract: `session.environment_data`, produced by env-check's
 * `finalize-host-report` and read by every plugin that plans against the host.
 * The fields named in the README's "Check your host" section are a documented
 * contract for scripts.
 *
 * @module
 */
import { z } from "zod";

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
export type PciDevice = z.infer<typeof PciDeviceSchema>;

/** A PASS/WARN/FAIL line of `gini check`. */
export const CheckSchema = z.object({
  id: z.string(),
  status: z.enum(["PASS", "WARN", "FAIL"]),
  title: z.string(),
  detail: z.string(),
  hint: z.string().optional(),
});
export type Check = z.infer<typeof CheckSchema>;

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

export const PciInfoSchema = z.object({
  devices: z.array(PciDeviceSchema),
  gpus: z.array(GpuSchema),
  warnings: z.array(z.string()),
  ms: z.number().nonnegative(),
});

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
export type EnvironmentData = z.infer<typeof EnvironmentDataSchema>;

/** Schemas by context key, for the kernel. */
export const contracts = {
  "env_check.os": OsInfoSchema,
  "env_check.cpu": CpuInfoSchema,
  "env_check.memory": MemoryInfoSchema,
  "env_check.pci": PciInfoSchema,
  "env_check.iommu": IommuInfoSchema,
  "env_check.tools": ToolsInfoSchema,
  "session.environment_data": EnvironmentDataSchema,
};
