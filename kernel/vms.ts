/**
 * New VM files sized for the host.
 *
 * @module
 */
import type { EnvironmentData } from "../plugins/env_check/contracts.ts";

/**
 * A commented VM file, sized quickemu-style from the host: half the threads (≤ 8), a quarter of
 * RAM (≤ 8 GiB). A Linux guest boots `image` (a catalogue name, a path or a URL) configured by
 * cloud-init, so that the file deploys a guest one can log in to.
 */
export function newVmToml(
  name: string,
  guest: string,
  host: EnvironmentData,
  image = "debian-12",
): string {
  const cores = Math.max(1, Math.min(8, Math.floor(host.cpu.threads / 2) || 1));
  const gib = Math.max(1, Math.min(8, Math.floor(host.memory.totalBytes / 1024 ** 3 / 4)));
  const uefi = guest !== "linux" && guest !== "other";
  return `# ${name}: a Gini VM. Check it with "gini plan ${name}.toml", start it with "gini up ${name}.toml".
# Sizes were chosen from this host: ${host.cpu.threads} threads, ${
    (host.memory.totalBytes / 1024 ** 3).toFixed(1)
  } GiB RAM, ${host.accel.toUpperCase()}.
name = "${name}"
guest = "${guest}"       # linux, windows, macos, other
accel = "auto"          # auto (KVM when usable, else TCG), kvm, tcg

[cpu]
cores = ${cores}
threads = 1
model = "host"          # or a named model such as "Skylake-Client"

[memory]
size = "${gib}G"
hugepages = false

[[disks]]
name = "root"
size = "32G"
format = "qcow2"        # qcow2 or raw
bus = "virtio"          # virtio, nvme, sata, ide
# backend = "lvm"       # and volume_group = "vg0"
${
    guest === "linux"
      ? ""
      : '# [[disks]]             # an installer ISO: name = "installer", path = "install.iso", cdrom = true, boot_order = 1\n'
  }
[[network]]
type = "user"           # user, bridge (with bridge = "br0"), tap, macvtap
model = "virtio"
forwards = [{ protocol = "tcp", host = 2222, guest = 22 }]

[display]
type = "none"           # none (headless, serial log), vnc, spice, gtk

[firmware]
type = "${uefi ? "uefi" : "bios"}"         # bios or uefi (OVMF found automatically)
secure_boot = false

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
  }`;
}
