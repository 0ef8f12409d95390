/**
 * macOS releases (data in `releases.json`) and the per-release VM quirks: the CPU model and flags
 * by release and host vendor, with the host CPU features a KVM guest needs, and the disk bus and
 * NIC model the release has drivers for. Shared by qemu-setup, opencore, macos-recovery and the CLI.
 *
 * @module
 */
import data from "./releases.json" with { type: "json" };

/** One installable macOS release. */
export interface MacRelease {
  name: string;
  version: string;
  title: string;
  boardId: string;
  mlb: string;
  os: "default" | "latest";
  cpu: CpuProfileName;
  smbios: "iMacPro1,1" | "MacPro7,1";
  disk: "sata" | "virtio";
  nic: "vmxnet3" | "virtio";
}

export type CpuProfileName = "penryn" | "haswell" | "skylake";

/** A QEMU CPU model macOS boots on, and the host flags KVM must pass through for it. */
export interface CpuProfile {
  model: string;
  features: string[];
  /** /proc/cpuinfo flags the host needs when the guest runs under KVM. */
  hostFlags: string[];
  why: string;
}

/**
 * Penryn (what OSX-KVM uses up to Monterey) lacks AVX2, which Ventura's kernel requires; Sonoma
 * boots on Haswell-noTSX; Sequoia and later want a Skylake client model, with TSX (hle, rtm) off
 * because most hosts have it disabled.
 */
export const CPU_PROFILES: Record<CpuProfileName, CpuProfile> = {
  penryn: {
    model: "Penryn",
    features: ["+ssse3", "+sse4.2", "+popcnt", "+avx", "+aes", "+xsave", "+xsaveopt"],
    hostFlags: ["ssse3", "sse4_2", "popcnt", "avx", "aes", "xsave"],
    why: "up to Monterey: SSE4.2 and AVX",
  },
  haswell: {
    model: "Haswell-noTSX",
    features: ["+avx2", "+fma", "+bmi1", "+bmi2", "+movbe", "+aes", "+xsave", "+xsaveopt"],
    hostFlags: ["avx2", "fma", "bmi1", "bmi2", "movbe", "aes", "xsave"],
    why: "Ventura and Sonoma: AVX2, FMA and BMI2",
  },
  skylake: {
    model: "Skylake-Client",
    features: ["-hle", "-rtm", "+avx2", "+fma", "+bmi2", "+xsavec", "+clflushopt"],
    hostFlags: ["avx2", "fma", "bmi2", "xsavec", "clflushopt"],
    why: "Sequoia and later: a Skylake client CPU (AVX2, XSAVEC)",
  },
};

export const MAC_RELEASES: readonly MacRelease[] = data.releases as MacRelease[];

/** The release named `name` ("monterey", "big-sur", "12"), or undefined. */
export function findRelease(name: string): MacRelease | undefined {
  const key = name.trim().toLowerCase().replace(/[\s_]+/g, "-").replace(/^macos-?/, "");
  return MAC_RELEASES.find((r) =>
    r.name === key || r.version === key || r.name.replace("-", "") === key
  );
}

/** What the VM's CPU will be, or why the host cannot run the release under KVM. */
export type CpuChoice =
  | { ok: true; model: string; features: string[]; profile: CpuProfileName; notes: string[] }
  | { ok: false; missing: string[]; profile: CpuProfileName; reason: string };

/**
 * The CPU for a release on a host. Every model gets `vendor=GenuineIntel` on AMD hosts (macOS
 * only runs on Intel CPUs), `+invtsc` and `vmware-cpuid-freq=on` for a stable TSC, and
 * `kvm=on`. Under KVM the host must have the profile's flags; under TCG QEMU emulates them.
 */
export function chooseCpu(
  release: MacRelease,
  host: { vendor: string; flags: readonly string[] },
  accel: "kvm" | "tcg",
): CpuChoice {
  const profile = CPU_PROFILES[release.cpu];
  const missing = accel === "kvm" ? profile.hostFlags.filter((f) => !host.flags.includes(f)) : [];
  if (missing.length) {
    return {
      ok: false,
      missing,
      profile: release.cpu,
      reason: `${release.title} needs a CPU with ${missing.join(", ")} (${profile.why})`,
    };
  }
  const notes: string[] = [];
  const features = [...profile.features, "+invtsc", "vmware-cpuid-freq=on", "kvm=on"];
  if (host.vendor === "amd") {
    features.unshift("vendor=GenuineIntel");
    notes.push("an AMD host: the guest is shown an Intel CPU (vendor=GenuineIntel)");
  }
  if (accel === "tcg") notes.push(`under TCG QEMU emulates ${profile.model}: expect a slow guest`);
  return { ok: true, model: profile.model, features, profile: release.cpu, notes };
}

/** The key QEMU's isa-applesmc device answers macOS with (as in every macOS-on-QEMU guide). */
export const APPLE_SMC_OSK = "ourhardworkbythesewordsguardedpleasedontsteal(c)AppleComputerInc";

/** A "WIDTHxHEIGHT" resolution. */
export function parseResolution(text: string): { width: number; height: number } | undefined {
  const m = text.match(/^(\d{3,5})x(\d{3,5})$/);
  return m ? { width: Number(m[1]), height: Number(m[2]) } : undefined;
}
