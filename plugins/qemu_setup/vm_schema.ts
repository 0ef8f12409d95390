/**
 * The VM file (`vm.toml`): its zod schema (exported as JSON Schema by
 * `gini schema vm`), and parsing with errors that name the file, line, column and
 * key, with "did you mean" for unknown keys.
 *
 * @module
 */
import { z } from "zod";
import { ConfigError, type Plain } from "../../workers/sdk.ts";
import { parseTomlFile, schemaKeysAt } from "../../workers/sdk_toml.ts";

import { parseSize } from "./size.ts";
export { parseSize };

const size = z.string().refine((v) => parseSize(v) !== undefined, {
  message: 'expected a size like "512M", "8G" or "1T"',
});
/** The guest systems a VM file may name. */
export const GUESTS = ["linux", "macos", "windows", "other"] as const;

/** A VM's name: it names its folder, its libvirt domain and its QEMU process. */
export const VM_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
const name = z.string().regex(VM_NAME, "expected a name of letters, digits, '.', '_' and '-'");
const pci = z.string().regex(
  /^([0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/,
  'expected a PCI address like "0000:01:00.0"',
);
const mac = z.string().regex(
  /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i,
  'expected a MAC address like "52:54:00:12:34:56"',
);
const absolutePath = z.string().min(1);

export const DiskSchema = z.strictObject({
  name: name.default("disk").describe(
    "The disk's name: its image is NAME.qcow2 (or .img) in the VM's folder",
  ),
  size: size.optional().describe(
    "The new image's size (\"20G\"); with backing, at least the backing image's size",
  ),
  format: z.enum(["qcow2", "raw"]).default("qcow2").describe("The image format"),
  backend: z.enum(["file", "lvm"]).default("file").describe(
    "file: an image in the VM's folder; lvm: a logical volume gini-NAME-DISK in volume_group",
  ),
  /** LVM volume group (backend = "lvm"). */
  volume_group: z.string().optional().describe('The LVM volume group (backend = "lvm")'),
  bus: z.enum(["virtio", "nvme", "sata", "ide"]).default("virtio").describe(
    "How the guest sees the disk",
  ),
  /** An image the new disk is an overlay of (qcow2 only), or copied from. */
  backing: absolutePath.optional().describe(
    "An image the new qcow2 overlays (relative to the VM file); its size is the minimum",
  ),
  /** An existing disk image to use as is. */
  path: absolutePath.optional().describe(
    "An existing image or ISO used as is (relative to the VM file); nothing is created",
  ),
  boot_order: z.number().int().positive().optional().describe(
    "The disk's place in the boot order (1 first)",
  ),
  readonly: z.boolean().default(false).describe("Attach the disk read-only"),
  cdrom: z.boolean().default(false).describe("Attach the image as a CD-ROM drive"),
});

export const ForwardSchema = z.strictObject({
  protocol: z.enum(["tcp", "udp"]).default("tcp").describe("The forwarded protocol"),
  host: z.number().int().min(1).max(65535).describe("The port on the host"),
  guest: z.number().int().min(1).max(65535).describe("The port in the guest"),
  address: z.string().default("127.0.0.1").describe("The host address the port listens on"),
});

export const NetworkSchema = z.strictObject({
  type: z.enum(["user", "bridge", "tap", "macvtap", "none"]).default("user").describe(
    "user: QEMU's user networking (NAT, port forwards); bridge: a host bridge; tap or macvtap: a host interface; none: no network",
  ),
  model: z.enum(["virtio", "e1000e", "e1000", "vmxnet3", "rtl8139"]).default("virtio").describe(
    "The NIC the guest sees",
  ),
  mac: mac.optional().describe("The MAC address; default: derived from the VM's name (stable)"),
  bridge: z.string().optional().describe('The host bridge (type = "bridge"), such as "br0"'),
  /** Host interface for tap/macvtap. */
  interface: z.string().optional().describe("The host interface (type = tap or macvtap)"),
  forwards: z.array(ForwardSchema).default([]).describe(
    "Host ports forwarded to the guest (user networking)",
  ),
});

const HOSTNAME = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;

/** `[linux]`: a cloud image and the cloud-init seed Gini writes for it. */
export const LinuxSchema = z.strictObject({
  /** A catalogue name ("debian-12"), a local image path, or a file:// or https:// URL. */
  image: z.string().optional().describe(
    'A catalogue name ("debian-12", gini images list), a local image path, or a file:// or https:// URL',
  ),
  hostname: z.string().regex(HOSTNAME, "expected a host name of letters, digits and '-'")
    .optional().describe("The guest's host name; default: the VM's name"),
  /** The user cloud-init creates; default: your login name. */
  user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "expected a Linux user name").optional()
    .describe("The user cloud-init creates; default: your login name"),
  /** Public keys for that user; default: your ~/.ssh/*.pub. */
  ssh_authorized_keys: z.array(z.string().min(1)).optional().describe(
    "Public keys for that user; default: your ~/.ssh/*.pub",
  ),
  /** A crypt(3) hash (mkpasswd -m sha-512); no password login without it. */
  password_hash: z.string().regex(/^\$[0-9a-z]+\$/, "expected a crypt hash such as $6$…")
    .optional().describe("A crypt(3) hash (mkpasswd -m sha-512); without it, key login only"),
  sudo: z.boolean().default(true).describe("Let the user run sudo without a password"),
  timezone: z.string().optional().describe('The guest\'s time zone, such as "Europe/Paris"'),
  locale: z.string().optional().describe('The guest\'s locale, such as "en_US.UTF-8"'),
  packages: z.array(z.string().min(1)).default([]).describe(
    "Packages cloud-init installs on the first boot",
  ),
  package_update: z.boolean().default(false).describe(
    "Update the package lists (and packages) on the first boot",
  ),
  runcmd: z.array(z.union([z.string(), z.array(z.string())])).default([]).describe(
    "Commands run once on the first boot: a shell line or an argv list",
  ),
  write_files: z.array(z.strictObject({
    path: z.string().startsWith("/").describe("The file's absolute path in the guest"),
    content: z.string().describe("Its content"),
    permissions: z.string().regex(/^0[0-7]{3,4}$/).optional().describe(
      'Its mode in octal, such as "0644"',
    ),
    owner: z.string().optional().describe('Its owner, such as "root:root"'),
  })).default([]).describe("Files cloud-init writes in the guest"),
  /**
   * Install and start the QEMU guest agent (`gini exec`, the guest's addresses in `gini status`)
   * and a login prompt on the serial console (`gini console`).
   */
  guest_agent: z.boolean().default(true).describe(
    "Install and start the QEMU guest agent (gini exec, addresses in gini status) and a serial login (gini console)",
  ),
  /** Your own #cloud-config file (relative to the VM file), used instead of the generated user-data. */
  user_data: z.string().min(1).optional().describe(
    "Your own #cloud-config file (relative to the VM file), used instead of the generated user-data",
  ),
  /** Change it to make cloud-init run again on the next boot. */
  instance_id: z.string().optional().describe(
    "cloud-init's instance id: change it to make cloud-init run again on the next boot",
  ),
  network: z.strictObject({
    dhcp: z.boolean().default(true).describe("Configure the first NIC by DHCP"),
    addresses: z.array(z.string().regex(/^[0-9a-f.:]+\/\d{1,3}$/i, 'expected "192.168.1.10/24"'))
      .default([]).describe('Static addresses with their prefix, such as "192.168.1.10/24"'),
    gateway: z.string().optional().describe("The default gateway, with static addresses"),
    nameservers: z.array(z.string()).default([]).describe("DNS servers, with static addresses"),
  }).optional().describe("The guest's network configuration (cloud-init network-config)"),
});
export type LinuxConfig = Plain<z.output<typeof LinuxSchema>>;

/** `[macos]`: the release, and what OpenCore is built with. */
export const MacosSchema = z.strictObject({
  /** A release name or number: "monterey", "sonoma", "14" (gini macos versions lists them). */
  version: z.string().min(1).describe(
    'A release name or number: "monterey", "sonoma", "14" (gini macos versions lists them)',
  ),
  /** The screen size, for OpenCore and the OVMF variables. */
  resolution: z.string().regex(/^\d{3,5}x\d{3,5}$/, 'expected "WIDTHxHEIGHT" like "1920x1080"')
    .default("1920x1080").describe("The screen size, for OpenCore and the OVMF variables"),
  /** macOS boot arguments. */
  boot_args: z.string().default("-v keepsyms=1").describe("macOS boot arguments"),
  /** OpenCore's Misc.Security.SecureBootModel. */
  secure_boot_model: z.enum(["Disabled", "Default"]).default("Disabled").describe(
    "OpenCore's Misc.Security.SecureBootModel",
  ),
  /** Show OpenCore's boot picker, and for how many seconds (0: wait). */
  show_picker: z.boolean().default(true).describe("Show OpenCore's boot picker"),
  timeout: z.number().int().min(0).max(60).default(5).describe(
    "Seconds the picker waits before it boots the default (0: wait)",
  ),
  /** A folder of your own .kext bundles (relative to the VM file), added and enabled. */
  kexts: z.string().min(1).optional().describe(
    "A folder of your own .kext bundles (relative to the VM file), added and enabled",
  ),
});
export type MacosConfig = Plain<z.output<typeof MacosSchema>>;

/** The Windows releases Gini writes answer files for (profile names of `[windows] version`). */
export const WINDOWS_VERSIONS = ["10", "11-23h2", "11-24h2", "server-2022", "server-2025"] as const;

/** `[windows]`: the user's own Windows ISO, the image to install, and who logs in. */
export const WindowsSchema = z.strictObject({
  iso: z.string().min(1).describe(
    "The Windows installation ISO: a local file (relative to the VM file) or an https:// URL (then sha256 is required)",
  ),
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, "expected 64 hexadecimal digits").describe(
    "The ISO's SHA-256: required for a URL, checked for a local file when given",
  ).optional(),
  edition: z.union([z.number().int().positive(), z.string().min(1)]).describe(
    "The image of sources/install.wim to install: its index or name (gini windows editions ISO); default: the only image, else Pro",
  ).optional(),
  language: z.string().regex(
    /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})+$/,
    'expected a language tag like "en-US"',
  )
    .describe("The UI language; default: the image's own. One the image does not hold is refused")
    .optional(),
  version: z.enum(WINDOWS_VERSIONS).describe(
    "The answer file's profile; default: read from the image's build and installation type",
  ).optional(),
  user: z.string().regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,19}$/,
    "expected a Windows user name of at most 20 letters, digits, '.', '_' and '-'",
  ).describe("The local administrator account Setup creates").default("gini"),
  password_file: z.string().min(1).describe(
    "A file next to the VM file holding that account's password (its first line)",
  ),
  product_key: z.string().regex(
    /^([A-Z0-9]{5}-){4}[A-Z0-9]{5}$/,
    'expected a key like "XXXXX-XXXXX-XXXXX-XXXXX-XXXXX"',
  ).describe("A product key; none: Setup asks for none (WillShowUI Never)").optional(),
  timezone: z.string().min(1).describe('A Windows time zone name such as "W. Europe Standard Time"')
    .default("UTC"),
  computer_name: z.string().regex(
    /^(?![0-9]+$)[A-Za-z0-9-]{1,15}$/,
    "expected a NetBIOS name: at most 15 letters, digits and '-', not only digits",
  ).describe("The computer name; default: the VM's name, shortened to 15 characters").optional(),
  first_logon: z.array(z.string().min(1)).describe(
    "Commands run (cmd.exe) at the first logon, after the guest agent and OpenSSH are set up",
  ).default([]),
  drivers: z.string().min(1).describe(
    'The virtio-win drivers: a catalogue release ("virtio-win-0.1.271") or a local virtio-win ISO',
  ).default("virtio-win-0.1.271"),
  bypass_checks: z.boolean().describe(
    "Install Windows 11 without TPM or Secure Boot (Setup's LabConfig bypass keys)",
  ).default(false),
  install_timeout: z.number().int().min(1).max(1380).describe(
    "Minutes gini up waits for the installation to be done before it stops watching (the VM goes on)",
  ).default(240),
});
export type WindowsConfig = Plain<z.output<typeof WindowsSchema>>;

/** The schema of a VM file. */
export const VmConfigSchema = z.strictObject({
  name: name.describe(
    "The VM's name: letters, digits, '.', '_', '-'; it names its folder, UUID and MACs (stable)",
  ),
  description: z.string().optional().describe("A note about the VM, for you"),
  guest: z.enum(GUESTS).default("linux").describe(
    "The guest system: linux, macos, windows (local-time RTC, Hyper-V enlightenments) or other",
  ),
  accel: z.enum(["auto", "kvm", "tcg"]).default("auto").describe(
    "The accelerator: kvm, tcg (emulation), or auto (KVM when the host offers it)",
  ),
  machine: z.enum(["q35", "pc"]).default("q35").describe("QEMU's machine type"),
  cpu: z.strictObject({
    cores: z.number().int().min(1).max(1024).default(2).describe("Cores per socket"),
    threads: z.number().int().min(1).max(8).default(1).describe("Threads per core"),
    sockets: z.number().int().min(1).max(16).default(1).describe("CPU sockets"),
    model: z.string().default("host").describe(
      'The CPU model: "host" (becomes "max" under TCG) or a QEMU model',
    ),
    features: z.array(z.string().regex(/^[+-][\w.-]+$/, 'expected "+feature" or "-feature"'))
      .default([]).describe('CPU features to add or remove: "+feature" / "-feature"'),
  }).default({ cores: 2, threads: 1, sockets: 1, model: "host", features: [] }).describe(
    "The virtual CPU: topology and model",
  ),
  memory: z.strictObject({
    size: size.default("2G").describe('The guest\'s memory ("512M", "8G")'),
    hugepages: z.boolean().default(false).describe("Back the memory with the host's huge pages"),
  }).default({ size: "2G", hugepages: false }).describe("The guest's memory"),
  disks: z.array(DiskSchema).default([]).describe("The disks, in order ([[disks]] tables)"),
  network: z.array(NetworkSchema).default([{ type: "user", model: "virtio", forwards: [] }])
    .describe("The NICs ([[network]] tables); default: one user-networking virtio NIC"),
  display: z.strictObject({
    type: z.enum(["none", "vnc", "spice", "gtk"]).default("none").describe(
      "none (headless, serial log), vnc, spice or gtk",
    ),
    /** VNC display number or SPICE port. */
    port: z.number().int().min(0).max(65535).optional().describe(
      "The VNC display number or SPICE port",
    ),
  }).default({ type: "none" }).describe("How you see the guest's screen"),
  firmware: z.strictObject({
    type: z.enum(["bios", "uefi"]).default("bios").describe(
      "bios (SeaBIOS) or uefi (OVMF, found in the host report)",
    ),
    secure_boot: z.boolean().default(false).describe("UEFI Secure Boot (OVMF's secboot build)"),
    /** OVMF code and vars template; auto-discovered from the host report when absent. */
    code: absolutePath.optional().describe(
      "The OVMF code file; default: found in the host report",
    ),
    vars: absolutePath.optional().describe(
      "The OVMF variables template the VM's copy is made from; default: found in the host report",
    ),
  }).default({ type: "bios", secure_boot: false }).describe("The guest's firmware"),
  tpm: z.strictObject({
    enabled: z.boolean().default(false).describe(
      "A TPM 2.0 from swtpm, its state in the VM's folder",
    ),
  }).default({ enabled: false }).describe("The guest's TPM"),
  usb: z.array(
    z.string().regex(/^[0-9a-f]{4}:[0-9a-f]{4}$/i, 'expected "vendor:product" like "046d:c52b"'),
  ).default([]).describe('Host USB devices passed through, as "vendor:product"'),
  passthrough: z.array(pci).default([]).describe(
    "PCI devices passed through with VFIO (their whole IOMMU groups)",
  ),
  /** Allow passing through the boot display (you need another way into the host). */
  passthrough_force: z.boolean().default(false).describe(
    "Allow passing through the boot display (you need another way into the host)",
  ),
  /** Direct kernel boot. */
  boot: z.strictObject({
    kernel: absolutePath.optional().describe("The kernel image (relative to the VM file)"),
    initrd: absolutePath.optional().describe("The initrd (relative to the VM file)"),
    cmdline: z.string().optional().describe("The kernel command line"),
  }).optional().describe("Direct kernel boot"),
  linux: LinuxSchema.optional().describe(
    "A cloud image and its cloud-init seed (linux-setup)",
  ),
  macos: MacosSchema.optional().describe(
    "A macOS guest: the release and its OpenCore disk (opencore, macos-recovery)",
  ),
  windows: WindowsSchema.optional().describe(
    "An unattended Windows install from your ISO (windows-setup)",
  ),
  qemu: z.strictObject({
    extra_args: z.array(z.string()).default([]).describe(
      "Arguments appended to the QEMU command line (and as <qemu:commandline>)",
    ),
    backend: z.enum(["qemu", "libvirt"]).default("qemu").describe(
      "Who runs the VM: Gini (QEMU directly) or libvirt",
    ),
    libvirt_uri: z.string().default("qemu:///session").describe(
      'The libvirt connection (backend = "libvirt")',
    ),
  }).default({ extra_args: [], backend: "qemu", libvirt_uri: "qemu:///session" }).describe(
    "How QEMU runs",
  ),
});

/** A VM file as written (defaults applied). */
export type VmConfig = Plain<z.output<typeof VmConfigSchema>>;

/** Parses a VM file's text, or throws the first problem as a {@linkcode ConfigError}. */
export function parseVmConfig(text: string, file: string): VmConfig {
  const result = parseTomlFile(
    text,
    file,
    VmConfigSchema,
    (message, options) => new ConfigError(message, options),
    (path) => schemaKeysAt(VmConfigSchema, path),
  );
  if (!result.ok) throw result.errors[0]!;
  // zod leaves an optional key the file does not give absent (TOML has no undefined).
  return result.value as VmConfig;
}

/** The VM file's JSON Schema, for editors. */
export function vmJsonSchema(): Record<string, unknown> {
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "Gini VM",
    ...z.toJSONSchema(VmConfigSchema, { io: "input" }),
  };
}
