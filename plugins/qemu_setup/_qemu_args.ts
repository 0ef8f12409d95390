/**
 * The QEMU command line of a VM definition: the array the kernel launches, and
 * start.sh shows one flag per line (`start_script.ts`).
 *
 * @module
 */
import type { VmDefinition, VmDisk, VmNic } from "./contracts.ts";
import { diskNodes, FIRMWARE_NODES, HOTPLUG_CHASSIS, HOTPLUG_PORTS } from "./names.ts";

type Definition = Omit<VmDefinition, "argv">;

/**
 * The Hyper-V enlightenments a Windows guest gets under KVM: virt-install's list, never
 * hv-passthrough (QEMU's docs call it a debugging feature that prevents migration). `hv-time` is
 * libvirt's hypervclock timer; `hv-evmcs` follows on Intel hosts ({@linkcode hypervList}).
 */
export const HYPERV_ENLIGHTENMENTS = [
  "hv-relaxed",
  "hv-vapic",
  "hv-spinlocks=0x1fff",
  "hv-vpindex",
  "hv-runtime",
  "hv-synic",
  "hv-stimer",
  "hv-frequencies",
  "hv-tlbflush",
  "hv-ipi",
  "hv-time",
] as const;

/** The enlightenments of a VM: the list above, and enlightened VMCS on an Intel host. */
export function hypervList(def: Pick<Definition, "guest" | "accel" | "hypervisor">): string[] {
  if (!hypervEnlightened(def)) return [];
  return [...HYPERV_ENLIGHTENMENTS, ...(def.hypervisor?.evmcs ? ["hv-evmcs"] : [])];
}

/** Whether a VM gets the Hyper-V enlightenments (and no HPET): a Windows guest under KVM. */
export function hypervEnlightened(def: Pick<Definition, "guest" | "accel">): boolean {
  return def.guest === "windows" && def.accel === "kvm";
}

/**
 * The TPM's interface for a new definition: CRB for Windows (what virt-install gives Windows 11;
 * TPM 2.0 only), TIS for the others.
 */
export function tpmModel(guest: Definition["guest"]): "tpm-crb" | "tpm-tis" {
  return guest === "windows" ? "tpm-crb" : "tpm-tis";
}

/** A Windows guest with a display gets a USB tablet. */
export function usbTablet(def: Pick<Definition, "guest" | "display">): boolean {
  return def.guest === "windows" && def.display.type !== "none";
}

/** Whether a VM has a USB controller: for host USB devices, a USB disk or the tablet. */
export function usbController(
  def: Pick<Definition, "guest" | "display" | "usb" | "disks">,
): boolean {
  return def.usb.length > 0 || def.disks.some((d) => d.bus === "usb") || usbTablet(def);
}

function cpuArg(def: Definition): string {
  // "host" is only meaningful with KVM; under TCG "max" gives every feature TCG can emulate.
  const model = def.cpu.model === "host" && def.accel === "tcg" ? "max" : def.cpu.model;
  const hv = def.hypervisor;
  return [
    model,
    // Before the file's own features, so that vm_patch additions stay last (kvm=off, hv-vendor-id).
    ...hypervList(def),
    ...def.cpu.features,
    ...(hv?.kvmHidden ? ["kvm=off"] : []),
    ...(hv?.hypervVendorId ? [`hv-vendor-id=${hv.hypervVendorId}`] : []),
  ].join(",");
}

/** Where a disk plugs in: its QEMU device and the controller it needs, if any. */
interface DiskSlot {
  device: string;
  /** An AHCI controller to add first (the one q35 has built in is not added). */
  controller: string | null;
}

/**
 * The device of each disk. SATA disks (and CD-ROMs) fill AHCI ports in order, six to a
 * controller, and IDE disks on `pc` fill its two IDE buses of two units, as libvirt numbers
 * sda… and hda… in the domain XML; on q35, which has no IDE, IDE disks go on AHCI too.
 */
function diskSlots(def: Definition): DiskSlot[] {
  let sata = 0;
  let ide = 0;
  const q35 = def.machine === "q35";
  return def.disks.map((disk) => {
    const boot = disk.bootIndex ? `,bootindex=${disk.bootIndex}` : "";
    if (disk.bus === "usb") {
      return {
        device: `usb-storage,bus=xhci.0,drive=${disk.id},removable=on${boot}`,
        controller: null,
      };
    }
    if (!disk.cdrom && disk.bus === "virtio") {
      const port = disk.hotplugPort ? `,bus=${disk.hotplugPort}` : "";
      return { device: `virtio-blk-pci,drive=${disk.id}${boot}${port}`, controller: null };
    }
    if (!disk.cdrom && disk.bus === "nvme") {
      return { device: `nvme,drive=${disk.id},serial=${disk.id}${boot}`, controller: null };
    }
    const kind = disk.cdrom ? "ide-cd" : "ide-hd";
    if (disk.bus === "ide" && !disk.cdrom && !q35) {
      const n = ide++;
      return {
        device: `${kind},drive=${disk.id},bus=ide.${Math.floor(n / 2)},unit=${n % 2}${boot}`,
        controller: null,
      };
    }
    const n = sata++;
    const index = Math.floor(n / 6);
    // q35's built-in AHCI controller names its ports ide.0 to ide.5.
    const builtIn = q35 && index === 0;
    return {
      device: `${kind},drive=${disk.id},bus=${builtIn ? "ide" : `sata${index}`}.${n % 6}${boot}`,
      controller: builtIn || n % 6 !== 0 ? null : `ich9-ahci,id=sata${index}`,
    };
  });
}

/** A path in a QEMU option value, its commas doubled. */
const optPath = (path: string) => path.replaceAll(",", ",,");

/**
 * The options of a disk's two -blockdev nodes, a protocol node (the file or block device) and a
 * format node (qcow2 or raw), as `-blockdev` takes them and QMP's `blockdev-add` (hotplug).
 */
export function diskNodeOptions(
  disk: VmDisk,
): [Record<string, string | boolean>, Record<string, string | boolean>] {
  const nodes = diskNodes(disk);
  const readOnly = disk.readonly || disk.cdrom ? { "read-only": true } : {};
  const cache = { "cache.direct": true, "cache.no-flush": false };
  return [
    {
      driver: disk.backend === "lvm" ? "host_device" : "file",
      "node-name": nodes.file,
      filename: disk.path,
      aio: "threads",
      ...cache,
      discard: "unmap",
      ...readOnly,
    },
    {
      driver: disk.format,
      "node-name": nodes.format,
      file: nodes.file,
      ...cache,
      discard: "unmap",
      ...readOnly,
    },
  ];
}

/**
 * A disk as two -blockdev nodes, a protocol node (the file or block device) and a format node
 * (qcow2 or raw), with what `-drive cache=none,aio=threads,discard=unmap` meant; read-only for
 * CD-ROMs (the cloud-init seed) and read-only disks.
 */
function diskArgs(disk: VmDisk, slot: DiskSlot): { nodes: string[]; device: string[] } {
  const option = ([key, value]: [string, string | boolean]) =>
    `${key}=${typeof value === "boolean" ? (value ? "on" : "off") : optPath(value)}`;
  const [file, format] = diskNodeOptions(disk).map((o) => Object.entries(o).map(option).join(","));
  return {
    nodes: [
      ...(slot.controller ? ["-device", slot.controller] : []),
      "-blockdev",
      file!,
      "-blockdev",
      format!,
    ],
    device: ["-device", `${slot.device},id=${disk.id}`],
  };
}

/** The -netdev and -device of a NIC. */
export function nicArgs(nic: VmNic): string[] {
  let netdev: string;
  switch (nic.type) {
    case "user":
      netdev = [
        `user,id=${nic.id}`,
        ...nic.forwards.map((f) => `hostfwd=${f.protocol}:${f.address}:${f.host}-:${f.guest}`),
      ].join(",");
      break;
    case "bridge":
      netdev = `bridge,id=${nic.id},br=${nic.bridge}`;
      break;
    default:
      netdev = `tap,id=${nic.id},ifname=${nic.interface},script=no,downscript=no`;
  }
  return ["-netdev", netdev, "-device", `${nic.device},netdev=${nic.id},mac=${nic.mac}`];
}

/**
 * The spare PCIe root ports (q35) `gini attach` plugs devices into. They come after every device
 * QEMU places by itself, so that adding them moves no device of an existing VM to another slot.
 */
function hotplugPortArgs(def: Definition): string[] {
  if (def.machine !== "q35") return [];
  return HOTPLUG_PORTS.flatMap((id, i) => [
    "-device",
    `pcie-root-port,id=${id},bus=pcie.0,chassis=${HOTPLUG_CHASSIS + i},slot=0`,
  ]);
}

/** The argv, program first. */
export function qemuArgv(def: Definition): string[] {
  const a: string[] = [def.emulator];
  const push = (...items: string[]) => a.push(...items);
  push("-name", `${def.name},process=gini-${def.name}`);
  push("-uuid", def.uuid);
  // No devices QEMU would add by itself (a parallel port, an empty CD-ROM): libvirt starts QEMU
  // the same way, so both backends run the machine the definition describes and nothing else.
  push("-nodefaults");
  push(
    "-machine",
    [
      def.machine,
      `accel=${def.accel}`,
      ...(def.firmware.type === "uefi"
        ? [`pflash0=${FIRMWARE_NODES.code}`, `pflash1=${FIRMWARE_NODES.vars}`]
        : []),
      ...(def.firmware.secureBoot ? ["smm=on"] : []),
      // macOS misbehaves with an HPET; Windows keeps time with the Hyper-V clock instead.
      ...(def.guest === "macos" || hypervEnlightened(def) ? ["hpet=off"] : []),
    ].join(","),
  );
  if (def.firmware.secureBoot) push("-global", "driver=cfi.pflash01,property=secure,value=on");
  push("-cpu", cpuArg(def));
  push(
    "-smp",
    `${def.cpu.vcpus},sockets=${def.cpu.sockets},cores=${def.cpu.cores},threads=${def.cpu.threads}`,
  );
  const mib = Math.floor(def.memory.bytes / 1024 / 1024);
  if (def.memory.hugepages) {
    push(
      "-object",
      `memory-backend-file,id=mem0,size=${mib}M,mem-path=/dev/hugepages,share=on,prealloc=on`,
    );
    push("-machine", "memory-backend=mem0");
  }
  push("-m", `${mib}M`);
  if (def.firmware.type === "uefi") {
    // Nodes, not -drive if=pflash: the variables are a qcow2 node that snapshots include.
    const fw = FIRMWARE_NODES;
    push(
      "-blockdev",
      `driver=file,node-name=${fw.code},filename=${optPath(def.firmware.code!)},read-only=on`,
    );
    push(
      "-blockdev",
      `driver=file,node-name=${fw.varsFile},filename=${optPath(def.firmware.vars!)}`,
    );
    push("-blockdev", `driver=${def.firmware.varsFormat},node-name=${fw.vars},file=${fw.varsFile}`);
  }
  if (def.kernelBoot) {
    push("-kernel", def.kernelBoot.kernel);
    if (def.kernelBoot.initrd) push("-initrd", def.kernelBoot.initrd);
    if (def.kernelBoot.cmdline) push("-append", def.kernelBoot.cmdline);
  }
  const slots = diskSlots(def);
  // Devices `gini attach` added sit on a spare port: they follow the ports that hold them.
  const attached: string[] = [];
  // USB disks follow the USB controller.
  const usbDisks: string[] = [];
  def.disks.forEach((disk, i) => {
    const { nodes, device } = diskArgs(disk, slots[i]!);
    push(...nodes);
    (disk.hotplugPort ? attached : disk.bus === "usb" ? usbDisks : a).push(...device);
  });
  for (const nic of def.nics) {
    const [netdev, value, flag, device] = nicArgs(nic) as [string, string, string, string];
    push(netdev, value);
    if (nic.hotplugPort) attached.push(flag, `${device},id=${nic.id},bus=${nic.hotplugPort}`);
    else push(flag, device);
  }
  if (def.nics.length === 0) push("-nic", "none");
  push("-object", "rng-random,id=rng0,filename=/dev/urandom", "-device", "virtio-rng-pci,rng=rng0");
  if (def.tpm.enabled) {
    push("-chardev", `socket,id=chrtpm,path=${def.tpm.socket}`);
    push("-tpmdev", "emulator,id=tpm0,chardev=chrtpm");
    // A definition saved before the model was chosen has TIS.
    push("-device", `${def.tpm.model ?? "tpm-tis"},tpmdev=tpm0`);
  }
  if (usbController(def)) {
    push("-device", "qemu-xhci,id=xhci", ...usbDisks);
    // Windows' pointer follows the host's exactly with an absolute device.
    if (usbTablet(def)) push("-device", "usb-tablet,bus=xhci.0");
    for (const u of def.usb) {
      const id = u.id ? `,id=${u.id}` : "";
      push("-device", `usb-host,bus=xhci.0,vendorid=0x${u.vendor},productid=0x${u.product}${id}`);
    }
  }
  for (const p of def.passthrough) {
    push("-device", `vfio-pci,host=${p.address}${p.multifunction ? ",multifunction=on" : ""}`);
  }
  switch (def.display.type) {
    case "none":
      push("-display", "none", "-vga", "none");
      break;
    case "vnc":
      push("-vga", "virtio", "-display", "none", "-vnc", `127.0.0.1:${def.display.port ?? 0}`);
      break;
    case "spice":
      push(
        "-vga",
        "qxl",
        "-display",
        "none",
        "-spice",
        `port=${def.display.port ?? 5930},addr=127.0.0.1,disable-ticketing=on`,
      );
      push("-device", "virtio-serial-pci", "-chardev", "spicevmc,id=vdagent,name=vdagent");
      push("-device", "virtserialport,chardev=vdagent,name=com.redhat.spice.0");
      break;
    case "gtk":
      push("-vga", "virtio", "-display", "gtk");
  }
  // A guest whose kernel panics says so through the pvpanic device (Linux's and virtio-win's
  // drivers); QEMU then keeps it paused, memory and all, for gini status to report as crashed.
  if (def.guest !== "macos") push("-device", "pvpanic", "-action", "panic=pause");
  push("-rtc", def.guest === "windows" ? "base=localtime" : "base=utc");
  push(
    "-chardev",
    `socket,id=qmp,path=${def.paths.qmpSocket},server=on,wait=off`,
    "-mon",
    "chardev=qmp,mode=control",
  );
  // The serial port is a socket `gini console` attaches to, and a log kept while nobody is.
  push(
    "-chardev",
    `socket,id=serial0,path=${optPath(def.paths.serialSocket)},server=on,wait=off,logfile=${
      optPath(def.paths.serialLog)
    },logappend=on`,
    "-serial",
    "chardev:serial0",
  );
  // The QEMU guest agent's channel (`gini exec`, the guest's addresses); macOS has no agent.
  if (def.guest !== "macos") {
    push(
      "-device",
      "virtio-serial-pci,id=agent-serial",
      "-chardev",
      `socket,id=qga0,path=${optPath(def.paths.agentSocket)},server=on,wait=off`,
      "-device",
      "virtserialport,bus=agent-serial.0,chardev=qga0,name=org.qemu.guest_agent.0",
    );
  }
  push(...hotplugPortArgs(def), ...attached);
  push("-pidfile", def.paths.pidFile);
  if (def.display.type !== "gtk") push("-daemonize");
  push(...def.extraArgs);
  return a;
}
