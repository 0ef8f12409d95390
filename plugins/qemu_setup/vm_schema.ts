/**
 * The VM file (`vm.toml`): its zod schema (exported as JSON Schema by
 * `gini schema vm`), and parsing with errors that name the file, line, column and
 * key, with "did you mean" for unknown keys.
 *
 * @module
 */
import { z } from "zod";
import { ConfigError, parseTomlFile, type Plain, schemaKeysAt } from "../../workers/sdk.ts";

const SIZE = /^(\d+(?:\.\d+)?)\s*([KMGT])(?:i?B)?$/i;
const UNITS: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** Bytes of a size like "8G", "512M", "1.5T" (binary units). */
export function parseSize(text: string): number | undefined {
  const match = text.trim().match(SIZE);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * UNITS[match[2]!.toUpperCase()]!);
}

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
  name: name.default("disk"),
  size: size.optional(),
  format: z.enum(["qcow2", "raw"]).default("qcow2"),
  backend: z.enum(["file", "lvm"]).default("file"),
  /** LVM volume group (backend = "lvm"). */
  volume_group: z.string().optional(),
  bus: z.enum(["virtio", "nvme", "sata", "ide"]).default("virtio"),
  /** An image the new disk is an overlay of (qcow2 only), or copied from. */
  backing: absolutePath.optional(),
  /** An existing disk image to use as is. */
  path: absolutePath.optional(),
  boot_order: z.number().int().positive().optional(),
  readonly: z.boolean().default(false),
  cdrom: z.boolean().default(false),
});

export const ForwardSchema = z.strictObject({
  protocol: z.enum(["tcp", "udp"]).default("tcp"),
  host: z.number().int().min(1).max(65535),
  guest: z.number().int().min(1).max(65535),
  address: z.string().default("127.0.0.1"),
});

export const NetworkSchema = z.strictObject({
  type: z.enum(["user", "bridge", "tap", "macvtap", "none"]).default("user"),
  model: z.enum(["virtio", "e1000e", "e1000", "vmxnet3", "rtl8139"]).default("virtio"),
  mac: mac.optional(),
  bridge: z.string().optional(),
  /** Host interface for tap/macvtap. */
  interface: z.string().optional(),
  forwards: z.array(ForwardSchema).default([]),
});

const HOSTNAME = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;

/** `[linux]`: a cloud image and the cloud-init seed Gini writes for it. */
export const LinuxSchema = z.strictObject({
  /** A catalogue name ("debian-12"), a local image path, or a file:// or https:// URL. */
  image: z.string().optional(),
  hostname: z.string().regex(HOSTNAME, "expected a host name of letters, digits and '-'")
    .optional(),
  /** The user cloud-init creates; default: your login name. */
  user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "expected a Linux user name").optional(),
  /** Public keys for that user; default: your ~/.ssh/*.pub. */
  ssh_authorized_keys: z.array(z.string().min(1)).optional(),
  /** A crypt(3) hash (mkpasswd -m sha-512); no password login without it. */
  password_hash: z.string().regex(/^\$[0-9a-z]+\$/, "expected a crypt hash such as $6$…")
    .optional(),
  sudo: z.boolean().default(true),
  timezone: z.string().optional(),
  locale: z.string().optional(),
  packages: z.array(z.string().min(1)).default([]),
  package_update: z.boolean().default(false),
  runcmd: z.array(z.union([z.string(), z.array(z.string())])).default([]),
  write_files: z.array(z.strictObject({
    path: z.string().startsWith("/"),
    content: z.string(),
    permissions: z.string().regex(/^0[0-7]{3,4}$/).optional(),
    owner: z.string().optional(),
  })).default([]),
  /**
   * Install and start the QEMU guest agent (`gini exec`, the guest's addresses in `gini status`)
   * and a login prompt on the serial console (`gini console`).
   */
  guest_agent: z.boolean().default(true),
  /** Your own #cloud-config file (relative to the VM file), used instead of the generated user-data. */
  user_data: z.string().min(1).optional(),
  /** Change it to make cloud-init run again on the next boot. */
  instance_id: z.string().optional(),
  network: z.strictObject({
    dhcp: z.boolean().default(true),
    addresses: z.array(z.string().regex(/^[0-9a-f.:]+\/\d{1,3}$/i, 'expected "192.168.1.10/24"'))
      .default([]),
    gateway: z.string().optional(),
    nameservers: z.array(z.string()).default([]),
  }).optional(),
});
export type LinuxConfig = Plain<z.output<typeof LinuxSchema>>;

/** `[macos]`: the release, and what OpenCore is built with. */
export const MacosSchema = z.strictObject({
  /** A release name or number: "monterey", "sonoma", "14" (gini macos versions lists them). */
  version: z.string().min(1),
  /** The screen size, for OpenCore and the OVMF variables. */
  resolution: z.string().regex(/^\d{3,5}x\d{3,5}$/, 'expected "WIDTHxHEIGHT" like "1920x1080"')
    .default("1920x1080"),
  /** macOS boot arguments. */
  boot_args: z.string().default("-v keepsyms=1"),
  /** OpenCore's Misc.Security.SecureBootModel. */
  secure_boot_model: z.enum(["Disabled", "Default"]).default("Disabled"),
  /** Show OpenCore's boot picker, and for how many seconds (0: wait). */
  show_picker: z.boolean().default(true),
  timeout: z.number().int().min(0).max(60).default(5),
  /** A folder of your own .kext bundles (relative to the VM file), added and enabled. */
  kexts: z.string().min(1).optional(),
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
});
export type WindowsConfig = Plain<z.output<typeof WindowsSchema>>;

/** The schema of a VM file. */
export const VmConfigSchema = z.strictObject({
  name,
  description: z.string().optional(),
  guest: z.enum(GUESTS).default("linux"),
  accel: z.enum(["auto", "kvm", "tcg"]).default("auto"),
  machine: z.enum(["q35", "pc"]).default("q35"),
  cpu: z.strictObject({
    cores: z.number().int().min(1).max(1024).default(2),
    threads: z.number().int().min(1).max(8).default(1),
    sockets: z.number().int().min(1).max(16).default(1),
    model: z.string().default("host"),
    features: z.array(z.string().regex(/^[+-][\w.-]+$/, 'expected "+feature" or "-feature"'))
      .default([]),
  }).default({ cores: 2, threads: 1, sockets: 1, model: "host", features: [] }),
  memory: z.strictObject({
    size: size.default("2G"),
    hugepages: z.boolean().default(false),
  }).default({ size: "2G", hugepages: false }),
  disks: z.array(DiskSchema).default([]),
  network: z.array(NetworkSchema).default([{ type: "user", model: "virtio", forwards: [] }]),
  display: z.strictObject({
    type: z.enum(["none", "vnc", "spice", "gtk"]).default("none"),
    /** VNC display number or SPICE port. */
    port: z.number().int().min(0).max(65535).optional(),
  }).default({ type: "none" }),
  firmware: z.strictObject({
    type: z.enum(["bios", "uefi"]).default("bios"),
    secure_boot: z.boolean().default(false),
    /** OVMF code and vars template; auto-discovered from the host report when absent. */
    code: absolutePath.optional(),
    vars: absolutePath.optional(),
  }).default({ type: "bios", secure_boot: false }),
  tpm: z.strictObject({ enabled: z.boolean().default(false) }).default({ enabled: false }),
  usb: z.array(
    z.string().regex(/^[0-9a-f]{4}:[0-9a-f]{4}$/i, 'expected "vendor:product" like "046d:c52b"'),
  ).default([]),
  passthrough: z.array(pci).default([]),
  /** Allow passing through the boot display (you need another way into the host). */
  passthrough_force: z.boolean().default(false),
  /** Direct kernel boot. */
  boot: z.strictObject({
    kernel: absolutePath.optional(),
    initrd: absolutePath.optional(),
    cmdline: z.string().optional(),
  }).optional(),
  linux: LinuxSchema.optional(),
  macos: MacosSchema.optional(),
  windows: WindowsSchema.optional(),
  qemu: z.strictObject({
    extra_args: z.array(z.string()).default([]),
    backend: z.enum(["qemu", "libvirt"]).default("qemu"),
    libvirt_uri: z.string().default("qemu:///session"),
  }).default({ extra_args: [], backend: "qemu", libvirt_uri: "qemu:///session" }),
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
