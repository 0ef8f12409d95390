import { assertEquals, assertThrows } from "../../tests/_assert.ts";
import type { EventReply, Json, VmPatchScope } from "../../workers/sdk.ts";
import type { VmDefinition } from "./contracts.ts";
import { applyVmPatches, isInside, VmPatchRefusedError } from "./_vm_patch.ts";

const DIR = "/data/vms/win";

/** A UEFI VM with a TPM, a disk of its own and the user's existing image. */
const BASE: Omit<VmDefinition, "argv"> = {
  name: "win",
  uuid: "6a0b3c1e-2f4d-4e5a-8b6c-7d8e9f0a1b2c",
  guest: "windows",
  configFile: "/home/u/win.toml",
  accel: "kvm",
  machine: "q35",
  cpu: { model: "host", features: [], sockets: 1, cores: 2, threads: 1, vcpus: 2 },
  memory: { bytes: 4 * 1024 ** 3, hugepages: false },
  hypervisor: { kvmHidden: false, hypervVendorId: null },
  disks: [
    disk("disk0", `${DIR}/disk0.qcow2`, { create: true }),
    disk("disk1", "/home/u/data.qcow2", { readonly: true }),
  ],
  nics: [],
  display: { type: "vnc", port: null },
  firmware: {
    type: "uefi",
    secureBoot: false,
    code: "/usr/share/OVMF/OVMF_CODE.fd",
    varsTemplate: "/usr/share/OVMF/OVMF_VARS.fd",
    vars: `${DIR}/OVMF_VARS.qcow2`,
    varsFormat: "qcow2",
  },
  tpm: { enabled: true, socket: `${DIR}/swtpm.sock`, stateDir: `${DIR}/tpm` },
  usb: [],
  passthrough: [],
  kernelBoot: null,
  extraArgs: [],
  backend: "qemu",
  libvirtUri: "qemu:///system",
  paths: {
    dir: DIR,
    startScript: `${DIR}/start.sh`,
    domainXml: `${DIR}/vm.xml`,
    definition: `${DIR}/vm.json`,
    qmpSocket: `${DIR}/qmp.sock`,
    serialSocket: `${DIR}/serial.sock`,
    agentSocket: `${DIR}/qga.sock`,
    serialLog: `${DIR}/serial.log`,
    pidFile: `${DIR}/qemu.pid`,
  },
  login: null,
  emulator: "qemu-system-x86_64",
  warnings: [],
};

function disk(id: string, path: string, over: Partial<VmDefinition["disks"][number]> = {}) {
  return {
    id,
    name: id,
    backend: "file" as const,
    path,
    format: "qcow2" as const,
    sizeBytes: 1024 ** 3,
    bus: "virtio" as const,
    backing: null,
    create: false,
    volumeGroup: null,
    logicalVolume: null,
    bootIndex: null,
    readonly: false,
    cdrom: false,
    ...over,
  };
}

function reply(patch: Json, vmPatch: VmPatchScope[] = [], plugin = "patcher"): EventReply {
  return {
    plugin,
    manifest: `/plugins/${plugin}/plugin.toml`,
    grants: { vm_patch: vmPatch },
    reply: { patch },
  };
}

/** The disks of BASE with disk `i` changed by `over`. */
function disksWith(i: number, over: Partial<VmDefinition["disks"][number]>): Json {
  return BASE.disks.map((d, j) => (j === i ? { ...d, ...over } : d)) as Json;
}

const REFUSED: [string, Json, VmPatchScope[], string][] = [
  [
    "extra QEMU arguments without a grant",
    { extraArgs: ["-no-reboot"] },
    [],
    'it changes "extraArgs"',
  ],
  [
    "the name, even with every grant",
    { name: "other" },
    ["extra_args", "disks"],
    'it changes "name"',
  ],
  ["the VM's folder", { paths: { dir: "/etc" } }, [], 'it changes "paths"'],
  [
    "the machine, which no grant opens",
    { machine: "pc" },
    ["cpu"],
    "which no vm_patch grant allows",
  ],
  ["the CPU topology without the cpu grant", { cpu: { cores: 64 } }, [], 'it changes "cpu"'],
  [
    "a CPU feature that widens -cpu",
    { cpu: { features: ["+avx,x=y"] } },
    [],
    "is not a CPU feature",
  ],
  ["memory without a grant", { memory: { hugepages: true } }, ["disks"], 'add "memory"'],
  [
    "a disk at a host file, granted",
    { disks: disksWith(0, { path: "/etc/shadow", create: false }) },
    ["disks"],
    'disks[0].path "/etc/shadow" is outside the VM\'s folder',
  ],
  [
    "a disk climbing out with ..",
    { disks: disksWith(0, { path: `${DIR}/../../../etc/shadow` }) },
    ["disks"],
    "is outside the VM's folder",
  ],
  [
    "a disk at the VM's start.sh",
    { disks: disksWith(0, { path: `${DIR}/start.sh` }) },
    ["disks"],
    "is one of the files Gini keeps for the VM",
  ],
  [
    "the user's read-only image made writable",
    { disks: disksWith(1, { readonly: false }) },
    ["disks"],
    "would be created, made writable or moved",
  ],
  [
    "the user's image created over",
    { disks: disksWith(1, { create: true, readonly: true }) },
    ["disks"],
    "would be created, made writable or moved",
  ],
  [
    "a backing image at a host file",
    { disks: disksWith(0, { backing: { path: "/etc/shadow", format: "raw" } }) },
    ["disks"],
    "disks[0].backing.path",
  ],
  [
    "firmware variables written over the firmware code",
    { firmware: { vars: "/usr/share/OVMF/OVMF_CODE.fd" } },
    ["firmware"],
    "firmware.vars",
  ],
  ["TPM state in /etc", { tpm: { stateDir: "/etc" } }, ["tpm"], "tpm.stateDir"],
  [
    "a kernel the VM did not name",
    { kernelBoot: { kernel: "/boot/vmlinuz", initrd: `${DIR}/initrd`, cmdline: "quiet" } },
    ["kernel_boot"],
    "kernelBoot.kernel",
  ],
  [
    "a disk path inside the folder that adds a file= option",
    { disks: disksWith(0, { path: `${DIR}/a.qcow2,file.filename=/etc/shadow` }) },
    ["disks"],
    "holds a comma",
  ],
  [
    "a bridge that adds a helper program",
    {
      nics: [{
        id: "net0",
        type: "bridge",
        model: "virtio",
        device: "virtio-net-pci",
        mac: "52:54:00:12:34:56",
        bridge: "br0,helper=/tmp/evil.sh",
        interface: null,
        forwards: [],
      }],
    },
    ["nics"],
    'nics[0].bridge "br0,helper=/tmp/evil.sh" holds a comma',
  ],
  [
    "a PCI device that is not an address",
    {
      passthrough: [{
        address: "0000:01:00.0/../../x",
        vendor: "10de",
        device: "2484",
        multifunction: false,
      }],
    },
    ["passthrough"],
    "passthrough[0] is not a device",
  ],
  ["an emulator by name only", { emulator: "qemu-system-aarch64" }, ["emulator"], "absolute path"],
  ["an emulator not named qemu-system-*", { emulator: "/tmp/evil" }, ["emulator"], "absolute"],
  [
    "an emulator path with ..",
    { emulator: "/usr/bin/../../tmp/qemu-system-x86_64" },
    ["emulator"],
    "absolute",
  ],
  ["a patch that is not an object", ["-no-reboot"], ["extra_args"], "not a JSON object"],
  [
    "a patch that breaks the schema",
    { memory: { bytes: -1 } },
    ["memory"],
    "invalid at memory.bytes",
  ],
];

Deno.test("applyVmPatches() refuses what the replying plugin may not change, naming it", async (t) => {
  for (const [name, patch, grants, expected] of REFUSED) {
    await t.step(name, () => {
      const error = assertThrows(
        () => applyVmPatches(BASE, [reply(patch, grants)]),
        VmPatchRefusedError,
        'Cannot apply the on_pre_vm_start patch of plugin "patcher"',
      );
      if (!error.message.includes(expected) && !error.hint.includes(expected)) {
        throw new Error(`Expected "${expected}" in: ${error.message} / ${error.hint}`);
      }
    });
  }
});

const ACCEPTED: [string, Json, VmPatchScope[]][] = [
  ["hypervisor flags", { hypervisor: { kvmHidden: true, hypervVendorId: "Gini01" } }, []],
  [
    "CPU model and features",
    { cpu: { model: "Skylake-Client", features: ["+avx2", "kvm=off"] } },
    [],
  ],
  ["the display", { display: { type: "spice", port: 5931 } }, []],
  ["extra arguments, granted", { extraArgs: ["-no-reboot"] }, ["extra_args"]],
  ["the CPU topology, granted", { cpu: { cores: 4, vcpus: 4 } }, ["cpu"]],
  ["a new disk inside the VM's folder", {
    disks: [...BASE.disks, disk("disk2", `${DIR}/disk2.qcow2`, { create: true })] as Json,
  }, ["disks"]],
  ["the user's image, reordered", { disks: [BASE.disks[1]!, BASE.disks[0]!] as Json }, ["disks"]],
  ["firmware code swapped for the VM's template", {
    firmware: { code: "/usr/share/OVMF/OVMF_VARS.fd", vars: `${DIR}/vars2.fd` },
  }, ["firmware"]],
  ["an absolute qemu-system-*", { emulator: "/usr/bin/qemu-system-aarch64" }, ["emulator"]],
  ["a kernel command line with commas", {
    kernelBoot: {
      kernel: `${DIR}/vmlinuz`,
      initrd: `${DIR}/initrd.img`,
      cmdline: "console=ttyS0,115200",
    },
  }, ["kernel_boot"]],
  ["a USB device", { usb: [{ vendor: "046D", product: "c52b" }] }, ["usb"]],
];

Deno.test("applyVmPatches() applies what every subscriber, or the grant, allows", async (t) => {
  for (const [name, patch, grants] of ACCEPTED) {
    await t.step(name, () => {
      const out = applyVmPatches(BASE, [reply(patch, grants)]);
      const [key] = Object.keys(patch as Record<string, Json>);
      if (JSON.stringify(out) === JSON.stringify(BASE)) throw new Error(`${key} did not change`);
      assertEquals(out.name, BASE.name);
    });
  }
});

Deno.test("applyVmPatches() judges each reply by its own plugin's grants, in order", () => {
  const granted = reply({ extraArgs: ["-no-reboot"] }, ["extra_args"], "granted");
  const after = applyVmPatches(BASE, [granted, reply({ display: { port: 5 } })]);
  assertEquals(after.extraArgs, ["-no-reboot"]);
  assertEquals(after.display.port, 5);
  // The second reply keeps the first one's argument: it did not change extraArgs.
  const other = reply({ extraArgs: ["-no-reboot", "-S"] }, [], "other");
  assertThrows(
    () => applyVmPatches(BASE, [granted, other]),
    VmPatchRefusedError,
    'plugin "other": it changes "extraArgs"',
  );
  // A reply without a patch (or not an object) changes nothing.
  const quiet: EventReply = { ...granted, reply: "hello" };
  assertEquals(applyVmPatches(BASE, [quiet]), BASE);
});

Deno.test("isInside() resolves .. and wants an absolute path strictly below the folder", () => {
  assertEquals(isInside(`${DIR}/a.qcow2`, DIR), true);
  assertEquals(isInside(`${DIR}/../win2/a.qcow2`, DIR), false);
  assertEquals(isInside(DIR, DIR), false);
  assertEquals(isInside(`${DIR}2/a.qcow2`, DIR), false);
  assertEquals(isInside("a.qcow2", DIR), false);
});
