/**
 * `session.vm_definition`: the complete, resolved description of a VM that the
 * launch script, the QEMU argv and the libvirt domain are generated from; and the handles
 * of the other keys qemu-setup writes for other plugins: `qemu_setup.config` (the checked VM
 * file) and `session.libvirt_xml`.
 *
 * @module
 */
import { z } from "zod";
import type { Plain } from "../../workers/sdk.ts";

export const VmDiskSchema = z.object({
  id: z.string(),
  name: z.string(),
  backend: z.enum(["file", "lvm"]),
  /** The file or block device QEMU opens. */
  path: z.string(),
  format: z.enum(["qcow2", "raw"]),
  sizeBytes: z.number().int().nonnegative(),
  /** "usb": a removable USB disk (Windows Setup looks for its answer file on removable media). */
  bus: z.enum(["virtio", "nvme", "sata", "ide", "usb"]),
  backing: z.object({ path: z.string(), format: z.string() }).nullable(),
  /** Create the disk (false for an existing image given with `path`). */
  create: z.boolean(),
  volumeGroup: z.string().nullable(),
  logicalVolume: z.string().nullable(),
  bootIndex: z.number().int().positive().nullable(),
  readonly: z.boolean(),
  cdrom: z.boolean(),
  /**
   * Where a disk `gini attach` added plugs in: a spare PCIe root port ("hotplug0", q35) or the
   * PCI bus ("pci.0", pc). Absent for the disks of the VM file.
   */
  hotplugPort: z.string().exactOptional(),
  /** Installation media (Windows'): attached until the installation is done, then detached. */
  installMedia: z.boolean().exactOptional(),
});
export type VmDisk = Plain<z.infer<typeof VmDiskSchema>>;

export const VmNicSchema = z.object({
  id: z.string(),
  type: z.enum(["user", "bridge", "tap", "macvtap"]),
  model: z.string(),
  /** The QEMU device of the model. */
  device: z.string(),
  mac: z.string(),
  bridge: z.string().nullable(),
  interface: z.string().nullable(),
  forwards: z.array(
    z.object({
      protocol: z.enum(["tcp", "udp"]),
      address: z.string(),
      host: z.number(),
      guest: z.number(),
    }),
  ),
  /** Where a NIC `gini attach` added plugs in (as a disk's); absent for the VM file's NICs. */
  hotplugPort: z.string().exactOptional(),
});
export type VmNic = Plain<z.infer<typeof VmNicSchema>>;

export const VmDefinitionSchema = z.object({
  name: z.string(),
  uuid: z.string().uuid(),
  guest: z.enum(["linux", "macos", "windows", "other"]),
  configFile: z.string(),
  accel: z.enum(["kvm", "tcg"]),
  machine: z.enum(["q35", "pc"]),
  cpu: z.object({
    model: z.string(),
    features: z.array(z.string()),
    sockets: z.number().int(),
    cores: z.number().int(),
    threads: z.number().int(),
    vcpus: z.number().int(),
  }),
  memory: z.object({ bytes: z.number().int().positive(), hugepages: z.boolean() }),
  /** What the guest is told about its hypervisor (NVIDIA's drivers refuse a visible KVM: code 43). */
  hypervisor: z.object({
    kvmHidden: z.boolean(),
    /** Hyper-V vendor ID, at most 12 characters. */
    hypervVendorId: z.string().regex(/^[A-Za-z0-9]{1,12}$/).nullable(),
    /** Enlightened VMCS for a Windows guest under KVM on an Intel host (virt-install's evmcs). */
    evmcs: z.boolean().exactOptional(),
  }).default({ kvmHidden: false, hypervVendorId: null }),
  disks: z.array(VmDiskSchema),
  nics: z.array(VmNicSchema),
  display: z.object({
    type: z.enum(["none", "vnc", "spice", "gtk"]),
    port: z.number().int().nullable(),
  }),
  firmware: z.object({
    type: z.enum(["bios", "uefi"]),
    secureBoot: z.boolean(),
    code: z.string().nullable(),
    varsTemplate: z.string().nullable(),
    vars: z.string().nullable(),
    /**
     * The variables' image format: qcow2, so that snapshots include them (raw pflash cannot be
     * snapshotted); raw for a libvirt VM when libvirt is older than 9.2.0 (no `<nvram format>`),
     * and in definitions saved before.
     */
    varsFormat: z.enum(["raw", "qcow2"]).default("raw"),
  }),
  tpm: z.object({
    enabled: z.boolean(),
    /** The TPM's interface (absent in definitions saved before it was chosen: tpm-tis). */
    model: z.enum(["tpm-tis", "tpm-crb"]).exactOptional(),
    socket: z.string().nullable(),
    stateDir: z.string().nullable(),
  }),
  usb: z.array(
    z.object({
      vendor: z.string(),
      product: z.string(),
      /** The device's id, for one `gini attach` added (`gini detach` takes it). */
      id: z.string().exactOptional(),
    }),
  ),
  passthrough: z.array(
    z.object({
      address: z.string(),
      vendor: z.string(),
      device: z.string(),
      multifunction: z.boolean(),
    }),
  ),
  kernelBoot: z.object({
    kernel: z.string(),
    initrd: z.string().nullable(),
    cmdline: z.string().nullable(),
  }).nullable(),
  extraArgs: z.array(z.string()),
  backend: z.enum(["qemu", "libvirt"]),
  libvirtUri: z.string(),
  paths: z.object({
    dir: z.string(),
    startScript: z.string(),
    domainXml: z.string(),
    definition: z.string(),
    qmpSocket: z.string(),
    /** The serial console's socket (`gini console`); its output is also kept in `serialLog`. */
    serialSocket: z.string(),
    /** The QEMU guest agent's virtio-serial socket (`gini exec`). */
    agentSocket: z.string(),
    serialLog: z.string(),
    pidFile: z.string(),
  }),
  /**
   * Who logs in to a Linux guest made from a cloud image (`gini ssh`): the user cloud-init makes
   * and the public keys it accepts. Null without `[linux]` (absent in VMs made before it).
   */
  login: z.object({ user: z.string(), authorizedKeys: z.array(z.string()) }).nullable(),
  /**
   * An unattended installation to see through (Windows): the media attached until it is done,
   * the prompt of the installer's boot loader that wants a key, the line the guest writes on its
   * serial console when it is done, and the file deploy writes then (the media are detached and
   * not attached again). Absent when there is none.
   */
  install: z.object({
    media: z.array(z.string()),
    prompt: z.string(),
    done: z.string(),
    record: z.string(),
    /** How long `gini up` watches for `done`. */
    timeoutMs: z.number().int().positive(),
  }).exactOptional(),
  emulator: z.string(),
  /** The full QEMU command line, program first. */
  argv: z.array(z.string()),
  warnings: z.array(z.string()),
});
export type VmDefinition = Plain<z.infer<typeof VmDefinitionSchema>>;

import { VM_DEFINITION } from "./keys.ts";
export { LIBVIRT_XML, VM_CONFIG, VM_DEFINITION } from "./keys.ts";

export const contracts = {
  [VM_DEFINITION]: VmDefinitionSchema,
};
