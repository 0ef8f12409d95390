/**
 * The VM file of a macOS guest (`gini new NAME --guest macos --version V`, `gini create-vm`).
 *
 * @module
 */
import { CPU_PROFILES, type MacRelease } from "./releases.ts";

/** Options of a macOS VM file. */
export interface MacVmOptions {
  name: string;
  description?: string;
  release: MacRelease;
  cores: number;
  memory: string;
  disk: string;
}

/** A commented VM file for a macOS guest. */
export function macosVmToml(o: MacVmOptions): string {
  const profile = CPU_PROFILES[o.release.cpu];
  return `# ${
    o.description ?? o.name
  }: a macOS VM made by Gini. Check it with "gini plan", start it with "gini up".
# Gini builds its OpenCore disk and downloads the ${o.release.title} recovery image on the first "gini up".
# Run macOS only on Apple hardware, as Apple's licence requires.
name = "${o.name}"
${o.description ? `description = "${o.description.replaceAll('"', '\\"')}"\n` : ""}guest = "macos"
accel = "auto"          # KVM when usable, else TCG (very slow for macOS)
machine = "q35"         # macOS needs q35

[cpu]
cores = ${o.cores}               # a power of two
threads = 1
model = "host"          # "host": ${profile.model} chosen for ${o.release.title}, checked against this CPU

[memory]
size = "${o.memory}"            # 8G or more is recommended

[[disks]]
name = "macos"
size = "${o.disk}"
format = "qcow2"
bus = "${o.release.disk}"            # ${o.release.title} ${
    o.release.disk === "virtio" ? "has virtio drivers" : "has no virtio-blk driver: sata"
  }

[[network]]
type = "user"
model = "${o.release.nic}"

[display]
type = "vnc"            # connect a VNC viewer to 127.0.0.1:5900 to install

[macos]
version = "${o.release.name}"        # gini macos versions lists them
resolution = "1920x1080"
boot_args = "-v keepsyms=1"
secure_boot_model = "Disabled"
show_picker = true
timeout = 5
# kexts = "mine"        # your .kext bundles in <config-dir>/kexts/mine
`;
}
