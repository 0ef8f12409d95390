/**
 * `gini new NAME`: a commented VM file sized for this host, written where the user said
 * (`--output`, NAME.toml by default) and nowhere else. A macOS guest's file is made by the plugin
 * that answers "vm:file-requested" (opencore), from the sizes chosen here.
 *
 * @module
 */
import { dirname, isAbsolute, relative } from "../../workers/path.ts";
import {
  type ContextKey,
  didYouMean,
  type Json,
  type StageContext,
  UsageError,
} from "../../workers/sdk.ts";
import { ENVIRONMENT_DATA, type EnvironmentData } from "../env_check/contracts.ts";
import { CATALOGUE } from "../linux_setup/catalogue.ts";
import { VM_NAME } from "./vm_schema.ts";

/** `session.command` of `gini new`, as the kernel parsed it (`--output` absolute, defaulted). */
type NewCommand = {
  args: { name: string };
  flags: {
    guest: string;
    image: string | null;
    version: string | null;
    iso: string | null;
    output: string;
  };
  cwd: string;
};
export const NEW_COMMAND: ContextKey<NewCommand> = "session.command";

/** `qemu_setup.new_vm_file`: the file `gini new` writes, and its text. */
export type NewVmFile = {
  file: string;
  text: string;
};
export const NEW_VM_FILE: ContextKey<NewVmFile> = "qemu_setup.new_vm_file";

/** A new VM's size. */
export interface VmSize {
  cores: number;
  /** Memory as the VM file gives it: "4G". */
  memory: string;
  /** The system disk's size: "32G". */
  disk: string;
}

const GIB = 1024 ** 3;

/**
 * A new VM's size from the host, quickemu-style: half the threads (at most 8) and a quarter of
 * RAM (at most 8 GiB); a macOS guest gets a power of two cores (at least 2), 8 GiB on a host with
 * 16 GiB or more (else 4 GiB), and a 64 GiB disk.
 */
export function newVmSize(host: EnvironmentData, guest: string): VmSize {
  const threads = host.cpu.threads;
  if (guest === "macos") {
    return {
      cores: Math.max(2, 2 ** Math.floor(Math.log2(Math.max(2, threads / 2)))),
      memory: host.memory.totalBytes >= 16 * GIB ? "8G" : "4G",
      disk: "64G",
    };
  }
  const gib = Math.max(1, Math.min(8, Math.floor(host.memory.totalBytes / GIB / 4)));
  if (guest === "windows") {
    // Windows 11's own minimum: 2 cores, 4 GiB, 64 GB.
    return {
      cores: Math.max(2, Math.min(8, Math.floor(threads / 2))),
      memory: `${Math.max(4, gib)}G`,
      disk: "64G",
    };
  }
  return {
    cores: Math.max(1, Math.min(8, Math.floor(threads / 2) || 1)),
    memory: `${gib}G`,
    disk: "32G",
  };
}

/**
 * A commented VM file of the given size. A Linux guest boots `image` (a catalogue name, a path or
 * a URL) configured by cloud-init, so that the file deploys a guest one can log in to.
 */
export function newVmToml(
  name: string,
  guest: string,
  host: EnvironmentData,
  size: VmSize,
  image = "debian-12",
  iso: string | null = null,
): string {
  const uefi = guest !== "linux" && guest !== "other";
  const windows = guest === "windows";
  return `# ${name}: a Gini VM. Check it with "gini plan ${name}.toml", start it with "gini up ${name}.toml".
# Sizes were chosen from this host: ${host.cpu.threads} threads, ${
    (host.memory.totalBytes / 1024 ** 3).toFixed(1)
  } GiB RAM, ${host.accel.toUpperCase()}.
name = "${name}"
guest = "${guest}"       # linux, windows, macos, other
accel = "auto"          # auto (KVM when usable, else TCG), kvm, tcg

[cpu]
cores = ${size.cores}
threads = 1
model = "host"          # or a named model such as "Skylake-Client"

[memory]
size = "${size.memory}"
hugepages = false

[[disks]]
name = "root"
size = "${size.disk}"
format = "qcow2"        # qcow2 or raw
bus = "virtio"          # virtio, nvme, sata, ide
# backend = "lvm"       # and volume_group = "vg0"
${
    guest === "linux" || windows
      ? ""
      : '# [[disks]]             # an installer ISO: name = "installer", path = "install.iso", cdrom = true, boot_order = 1\n'
  }
[[network]]
type = "user"           # user, bridge (with bridge = "br0"), tap, macvtap
model = "virtio"
forwards = [{ protocol = "tcp", host = 2222, guest = 22 }]

[display]
type = "${windows ? "vnc" : "none"}"${
    windows ? "            " : "           "
  }# none (headless, serial log), vnc, spice, gtk

[firmware]
type = "${uefi ? "uefi" : "bios"}"         # bios or uefi (OVMF found automatically)
secure_boot = ${windows ? "true " : "false"}     # Windows 11 wants Secure Boot and a TPM 2.0

[tpm]
enabled = ${guest === "windows" ? "true" : "false"}

# [boot]                # direct kernel boot
# kernel = "vmlinuz"
# initrd = "initrd.img"
# cmdline = "console=ttyS0 root=/dev/vda1"

# passthrough = ["0000:01:00.0", "0000:01:00.1"]   # see "gini check --iommu"
# usb = ["046d:c52b"]

[qemu]
backend = "qemu"        # qemu, or libvirt (libvirt_uri = "qemu:///system" or "qemu+ssh://host/system")
extra_args = []
${
    guest === "linux"
      ? `
[linux]                 # a cloud image, configured on first boot by cloud-init
image = ${JSON.stringify(image)}   # gini images list; or a local .qcow2 path, or a URL
# user = "ada"          # default: your login name; log in with: ssh -p 2222 USER@localhost
# ssh_authorized_keys = ["ssh-ed25519 AAAA…"]   # default: your ~/.ssh/*.pub
# packages = ["qemu-guest-agent"]
`
      : ""
  }${windows ? windowsTable(name, iso!) : ""}`;
}

/**
 * The `[windows]` table of a new Windows VM: the user's ISO, and a password file next to the VM
 * file that the user writes (Gini never makes up a password nobody has seen).
 */
function windowsTable(name: string, iso: string): string {
  return `
[windows]               # installed unattended from your own ISO (gini windows editions ISO)
iso = ${JSON.stringify(iso)}
password_file = "${name}.password"   # its first line; next to this file, chmod 600
user = "gini"           # the local administrator Setup creates; gini ssh logs in as it
# edition = "Windows 11 Pro"     # or its index; default: the only image, else Pro
# language = "en-US"             # default: the image's own
# timezone = "UTC"
# first_logon = ["winget install --silent Git.Git"]
# drivers = "virtio-win-0.1.271" # the catalogue release (sha256-pinned), or a virtio-win ISO
`;
}

/** Refuses a VM name QEMU, libvirt or a file name would not take, suggesting one that works. */
function checkName(name: string): void {
  if (VM_NAME.test(name)) return;
  throw new UsageError(
    `Cannot name a VM "${name}": expected letters, digits, '.', '_' and '-', starting with a letter or digit (at most 63)`,
    {
      hint: `For example: gini new ${
        name.replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "").slice(0, 63) ||
        "my-vm"
      }`,
    },
  );
}

/** `--iso` is for Windows, and Windows needs it. */
function checkIso(guest: string, iso: string | null): void {
  if (iso !== null && guest !== "windows") {
    throw new UsageError(`Cannot use --iso with --guest ${guest}`, {
      location: { flag: "--iso" },
      hint: "--iso is the Windows installation ISO: use it with --guest windows",
    });
  }
  if (iso === null && guest === "windows") {
    throw new UsageError("Cannot write a Windows VM file without the installation ISO", {
      location: { flag: "--iso" },
      hint: "Add --iso PATH: your own Windows ISO (Microsoft's download page gives one)",
    });
  }
}

/** Refuses `--image` for a guest other than Linux, and a name that is in no catalogue. */
function checkImage(guest: string, image: string | null): void {
  if (image !== null && guest !== "linux") {
    throw new UsageError(`Cannot use --image with --guest ${guest}`, {
      location: { flag: "--image" },
      hint: "Cloud images are for Linux guests: drop --image, or use --guest linux",
    });
  }
  const name = image ?? "debian-12";
  if (
    guest !== "linux" || CATALOGUE[name] || /^(https?|file):\/\//.test(name) || /[/.]/.test(name)
  ) return;
  throw new UsageError(
    `Cannot use --image "${name}": not in the catalogue, and not a path or a URL`,
    {
      location: { flag: "--image" },
      hint: didYouMean(name, Object.keys(CATALOGUE)) ??
        `Known: ${Object.keys(CATALOGUE).join(", ")} (gini images list)`,
    },
  );
}

/** A macOS guest's VM file, from the plugin that makes them (opencore answers with `{ text }`). */
async function requestedVmFile(ctx: StageContext, request: Record<string, Json>): Promise<string> {
  const replies = await ctx.emit("vm:file-requested", request);
  const reply = replies.find((r) => r !== null && typeof r === "object" && !Array.isArray(r)) as
    | { text?: Json; error?: Json; hint?: Json }
    | undefined;
  if (typeof reply?.error === "string") {
    throw new UsageError(reply.error, typeof reply.hint === "string" ? { hint: reply.hint } : {});
  }
  if (typeof reply?.text !== "string") {
    throw new UsageError(`Cannot write a ${request.guest} VM file: no loaded plugin makes one`, {
      hint: 'Enable the core plugin that makes them ("opencore" for macOS): gini plugins list',
    });
  }
  return reply.text;
}

/** The ISO as the VM file names it: relative to the file when it is beside it or below. */
function isoFromFile(flags: NewCommand["flags"]): string | null {
  if (!flags.iso) return null;
  const below = relative(dirname(flags.output), flags.iso);
  return below && !below.startsWith("..") && !isAbsolute(below) ? below : flags.iso;
}

/**
 * The stage of `gini new`: checks the name and flags, sizes the VM from the host report, and
 * writes the file, never over an existing one.
 */
export async function writeNewVmFile(ctx: StageContext): Promise<void> {
  const { args: { name }, flags } = ctx.get(NEW_COMMAND)!;
  checkName(name);
  checkImage(flags.guest, flags.image);
  checkIso(flags.guest, flags.iso);
  const host = ctx.get(ENVIRONMENT_DATA)!;
  const size = newVmSize(host, flags.guest);
  const text = flags.guest === "macos"
    ? await requestedVmFile(ctx, {
      name,
      guest: flags.guest,
      version: flags.version ?? "sonoma",
      ...size,
    })
    : newVmToml(name, flags.guest, host, size, flags.image ?? "debian-12", isoFromFile(flags));
  try {
    // Refused live (the file exists) before anything is written; a plan shows it as a conflict.
    await ctx.op("fs.write", { path: flags.output, content: text, overwrite: false });
  } catch (error) {
    if ((error as { code?: unknown }).code !== "CONFLICT") throw error;
    throw new UsageError(`Cannot write "${flags.output}": it exists`, {
      hint: "Choose another name with --output",
    });
  }
  ctx.set(NEW_VM_FILE, { file: flags.output, text });
}
