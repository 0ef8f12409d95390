/**
 * The libvirt domain XML of a VM definition, for `virsh define` and virt-manager.
 *
 * @module
 */
import type { VmDefinition, VmDisk, VmNic } from "./contracts.ts";
import { hypervEnlightened, hypervList, nicArgs, usbController, usbTablet } from "./_qemu_args.ts";
import { HOTPLUG_PORTS } from "./names.ts";

function esc(text: string | number): string {
  return String(text).replace(
    /[<>&'"]/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c]!,
  );
}

/**
 * The CPU element, the libvirt form of the `-cpu` that `qemuArgv` writes, and whether the guest
 * is not to see KVM (`kvm=off`, said in libvirt's features instead).
 */
function cpuXml(def: VmDefinition): { lines: string[]; kvmHidden: boolean } {
  const topology =
    `<topology sockets="${def.cpu.sockets}" dies="1" cores="${def.cpu.cores}" threads="${def.cpu.threads}"/>`;
  let vendor: string | null = null;
  let kvm = true;
  const features: string[] = [];
  for (const f of def.cpu.features) {
    const [, sign, name, value] = f.match(/^([+-]?)([\w.-]+)(?:=(.*))?$/) ?? [];
    const state = sign === "+" ? "on" : sign === "-" ? "off" : value;
    const onOff = state === "on" || state === "off";
    if (name === "vendor" && value) vendor = value;
    else if (name === "kvm" && onOff) kvm = state === "on";
    // QEMU's default (on), for which libvirt has no word.
    else if (name === "vmware-cpuid-freq" && state === "on") continue;
    else if (name && onOff && name !== "vmware-cpuid-freq") {
      features.push(
        `    <feature policy="${state === "on" ? "require" : "disable"}" name="${esc(name)}"/>`,
      );
    } else throw new Error(`Cannot write CPU feature "${f}" in the domain XML`);
  }
  // qemuArgv runs "host" as "max" under TCG.
  const model = def.cpu.model === "host" && def.accel === "tcg" ? "max" : def.cpu.model;
  if (vendor && (model === "host" || model === "max")) {
    throw new Error(`Cannot write vendor=${vendor} in the domain XML of a "${model}" CPU`);
  }
  const head = model === "host"
    ? ['  <cpu mode="host-passthrough" check="none" migratable="on">']
    : model === "max"
    ? ['  <cpu mode="maximum" check="none" migratable="on">']
    : [
      '  <cpu mode="custom" match="exact" check="none">',
      // "forbid": the named model or nothing, as QEMU runs it.
      `    <model fallback="forbid"${vendor ? ` vendor_id="${esc(vendor)}"` : ""}>${
        esc(model)
      }</model>`,
    ];
  return {
    lines: [...head, `    ${topology}`, ...features, "  </cpu>"],
    // qemuArgv writes kvm=off after the features when the definition hides KVM.
    kvmHidden: !kvm || (def.hypervisor?.kvmHidden ?? false),
  };
}

/** The target of each disk, numbered as libvirt numbers them (and as `qemuArgv` plugs them). */
function diskTargets(def: VmDefinition): { bus: string; dev: string; nvme: boolean }[] {
  const q35 = def.machine === "q35";
  const bus = (d: VmDisk) =>
    d.cdrom || d.bus === "sata" || (d.bus === "ide" && q35)
      ? "sata"
      : d.bus === "ide"
      ? "ide"
      : d.bus === "nvme"
      ? "nvme"
      : d.bus === "usb"
      ? "usb"
      : "virtio";
  const name = (prefix: string, n: number) =>
    prefix + (n >= 26 ? String.fromCharCode(96 + Math.floor(n / 26)) : "") +
    String.fromCharCode(97 + (n % 26));
  // libvirt 9.0 has no NVMe disk bus: an NVMe disk is a SATA disk whose device is overridden,
  // numbered after the real SATA disks so that theirs keep the ports QEMU gives them.
  let sata = 0;
  let nvme = def.disks.filter((d) => bus(d) === "sata").length;
  // USB disks share the sd names too, after both.
  let usb = nvme + def.disks.filter((d) => bus(d) === "nvme").length;
  let virtio = 0;
  let ide = 0;
  return def.disks.map((d) => {
    switch (bus(d)) {
      case "sata":
        return { bus: "sata", dev: name("sd", sata++), nvme: false };
      case "nvme":
        return { bus: "sata", dev: name("sd", nvme++), nvme: true };
      case "ide":
        return { bus: "ide", dev: name("hd", ide++), nvme: false };
      case "usb":
        return { bus: "usb", dev: name("sd", usb++), nvme: false };
      default:
        return { bus: "virtio", dev: name("vd", virtio++), nvme: false };
    }
  });
}

/** A disk's `<disk>` element (indented for the domain's `<devices>`). */
function diskElement(disk: VmDisk, target: { bus: string; dev: string; nvme: boolean }): string[] {
  const block = disk.backend === "lvm";
  return [
    `    <disk type="${block ? "block" : "file"}" device="${disk.cdrom ? "cdrom" : "disk"}">`,
    `      <driver name="qemu" type="${disk.format}" cache="none" io="threads" discard="unmap"/>`,
    `      <source ${block ? "dev" : "file"}="${esc(disk.path)}"/>`,
    `      <target dev="${target.dev}" bus="${target.bus}"${
      target.bus === "usb" ? ' removable="on"' : ""
    }/>`,
    ...(disk.readonly || disk.cdrom ? ["      <readonly/>"] : []),
    ...(disk.bootIndex ? [`      <boot order="${disk.bootIndex}"/>`] : []),
    ...(target.nvme
      ? [`      <serial>${esc(disk.id)}</serial>`, `      <alias name="ua-${esc(disk.id)}"/>`]
      : []),
    // A disk gini attach added: its alias is its id, as QEMU's device id is (virsh detach-device).
    ...(disk.hotplugPort ? [`      <alias name="ua-${esc(disk.id)}"/>`] : []),
    "    </disk>",
  ];
}

/** A NIC's `<interface>` element (a user network without forwards, a bridge, macvtap or tap). */
function nicElement(nic: VmNic): string[] {
  const model = nic.model === "virtio" ? "virtio" : nic.model;
  const [type, source] = nic.type === "user"
    ? ["user", []]
    : nic.type === "bridge"
    ? ["bridge", [`      <source bridge="${esc(nic.bridge!)}"/>`]]
    : nic.type === "macvtap"
    ? ["direct", [`      <source dev="${esc(nic.interface!)}" mode="bridge"/>`]]
    : ["ethernet", [`      <target dev="${esc(nic.interface!)}" managed="no"/>`]];
  return [
    `    <interface type="${type}">`,
    `      <mac address="${nic.mac}"/>`,
    ...source,
    `      <model type="${model}"/>`,
    ...(nic.hotplugPort ? [`      <alias name="ua-${esc(nic.id)}"/>`] : []),
    "    </interface>",
  ];
}

/** A host USB device's `<hostdev>` element. */
function usbElement(u: VmDefinition["usb"][number]): string[] {
  return [
    '    <hostdev mode="subsystem" type="usb" managed="yes">',
    "      <source>",
    `        <vendor id="0x${esc(u.vendor)}"/>`,
    `        <product id="0x${esc(u.product)}"/>`,
    "      </source>",
    ...(u.id ? [`      <alias name="ua-${esc(u.id)}"/>`] : []),
    "    </hostdev>",
  ];
}

/**
 * The element of one disk, NIC or host USB device of the definition, by id, as
 * `virsh attach-device` and `detach-device` take it (a disk's target numbered as in the whole
 * domain); null when the definition has no such device.
 */
export function deviceXml(def: VmDefinition, id: string): string | null {
  const i = def.disks.findIndex((d) => d.id === id);
  if (i >= 0) return dedent(diskElement(def.disks[i]!, diskTargets(def)[i]!));
  const nic = def.nics.find((n) => n.id === id);
  if (nic) return dedent(nicElement(nic));
  const usb = def.usb.find((u) => u.id === id);
  if (usb) return dedent(usbElement(usb));
  return null;
}

const dedent = (lines: string[]) => lines.map((l) => l.slice(4)).join("\n") + "\n";

/**
 * How many root ports libvirt fills with the domain's own devices, which it places in the root
 * ports it is given before adding any: virtio disks, NIC elements, the virtio-serial controller
 * (guest agent, SPICE), the RNG, the USB controller and PCI host devices. The spare ports come on
 * top of them (a count too high leaves a port more free, never fewer).
 */
function libvirtPortDevices(def: VmDefinition, targets: { bus: string }[]): number {
  const nics = def.nics.filter((n) => !(n.type === "user" && n.forwards.length)).length;
  const serial = def.guest !== "macos" || def.display.type === "spice" ? 1 : 0;
  return targets.filter((t) => t.bus === "virtio").length + nics + serial + 1 +
    (usbController(def) ? 1 : 0) + def.passthrough.length;
}

/** PCI devices QEMU may be given as they are (by extra_args too). */
const PCI_DEVICE =
  /-pci$|^(qemu-xhci|nec-usb-xhci|usb-ehci|ich9-usb-ehci1|nvme|e1000e?|vmxnet3|rtl8139|ich9-ahci|ahci|virtio-vga|qxl-vga|qxl|VGA|intel-hda|ich9-intel-hda)$/;

/**
 * Slots on the root bus for the PCI devices libvirt does not place itself: NVMe disks and the
 * devices given to QEMU as they are, which QEMU creates before libvirt's own and would put in
 * the first free slot, the one libvirt then gives its video card. They count down from slot
 * 0x1c, which libvirt leaves alone (its video card is at slot 1, its root ports from slot 2).
 */
function rootSlots(def: VmDefinition): () => { bus: string; addr: string } {
  const bus = def.machine === "q35" ? "pcie.0" : "pci.0";
  let slot = 0x1c;
  return () => ({ bus, addr: `0x${(slot--).toString(16)}` });
}

/** The arguments with a root-bus slot for each PCI device that has no place yet. */
function placed(args: string[], slot: () => { bus: string; addr: string }): string[] {
  return args.map((arg, i) => {
    if (args[i - 1] !== "-device" || /,(bus|addr)=/.test(arg)) return arg;
    if (!PCI_DEVICE.test(arg.split(",")[0]!)) return arg;
    const { bus, addr } = slot();
    return `${arg},bus=${bus},addr=${addr}`;
  });
}

/**
 * The domain XML. `nvramFormat`: the installed libvirt reads `<nvram format>` (9.2.0 or later);
 * without it a qcow2 variables file is named with a comment (the VM runs on QEMU directly).
 */
export function libvirtXml(def: VmDefinition, options = { nvramFormat: false }): string {
  const x: string[] = [];
  const kib = Math.floor(def.memory.bytes / 1024);
  x.push(
    `<domain type="${
      def.accel === "kvm" ? "kvm" : "qemu"
    }" xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0">`,
  );
  x.push(`  <name>${esc(def.name)}</name>`);
  x.push(`  <uuid>${def.uuid}</uuid>`);
  x.push(`  <description>Generated by Gini from ${esc(def.configFile)}</description>`);
  x.push(`  <memory unit="KiB">${kib}</memory>`);
  x.push(`  <currentMemory unit="KiB">${kib}</currentMemory>`);
  if (def.memory.hugepages) x.push("  <memoryBacking>", "    <hugepages/>", "  </memoryBacking>");
  x.push(`  <vcpu placement="static">${def.cpu.vcpus}</vcpu>`);
  const firmware = def.firmware;
  x.push("  <os>");
  x.push(`    <type arch="x86_64" machine="${def.machine}">hvm</type>`);
  if (firmware.type === "uefi") {
    x.push(
      `    <loader readonly="yes"${firmware.secureBoot ? ' secure="yes"' : ""} type="pflash">${
        esc(firmware.code!)
      }</loader>`,
    );
    if (firmware.varsFormat === "raw") {
      x.push(`    <nvram template="${esc(firmware.varsTemplate!)}">${esc(firmware.vars!)}</nvram>`);
    } else if (options.nvramFormat) {
      // Gini makes the qcow2 file; a raw template with another format is not libvirt's to copy.
      x.push(`    <nvram format="qcow2">${esc(firmware.vars!)}</nvram>`);
    } else {
      x.push(
        "    <!-- qcow2 variables: libvirt reads them only from 9.2.0 on (nvram format) -->",
        `    <nvram>${esc(firmware.vars!)}</nvram>`,
      );
    }
  }
  if (def.kernelBoot) {
    x.push(`    <kernel>${esc(def.kernelBoot.kernel)}</kernel>`);
    if (def.kernelBoot.initrd) x.push(`    <initrd>${esc(def.kernelBoot.initrd)}</initrd>`);
    if (def.kernelBoot.cmdline) x.push(`    <cmdline>${esc(def.kernelBoot.cmdline)}</cmdline>`);
  }
  x.push("  </os>");
  const cpu = cpuXml(def);
  x.push("  <features>", "    <acpi/>", "    <apic/>");
  const enlightened = hypervEnlightened(def);
  if (def.hypervisor?.hypervVendorId || enlightened) {
    x.push('    <hyperv mode="custom">');
    // qemuArgv's HYPERV_ENLIGHTENMENTS, in libvirt's words (hv-time is the hypervclock timer).
    for (const hv of hypervList(def)) {
      const [name, value] = hv.slice(3).split("=");
      if (name === "time") continue;
      x.push(
        name === "spinlocks"
          ? `      <spinlocks state="on" retries="${Number(value)}"/>`
          : `      <${name} state="on"/>`,
      );
    }
    if (def.hypervisor?.hypervVendorId) {
      x.push(`      <vendor_id state="on" value="${esc(def.hypervisor.hypervVendorId)}"/>`);
    }
    x.push("    </hyperv>");
  }
  if (cpu.kvmHidden) x.push("    <kvm>", '      <hidden state="on"/>', "    </kvm>");
  if (firmware.secureBoot) x.push('    <smm state="on"/>');
  x.push("  </features>");
  x.push(...cpu.lines);
  const offset = def.guest === "windows" ? "localtime" : "utc";
  // macOS misbehaves with an HPET (qemuArgv: hpet=off); Windows under KVM keeps time with the
  // Hyper-V clock (hv-time) instead.
  if (def.guest === "macos") {
    x.push(`  <clock offset="${offset}">`, '    <timer name="hpet" present="no"/>', "  </clock>");
  } else if (enlightened) {
    x.push(
      `  <clock offset="${offset}">`,
      '    <timer name="hpet" present="no"/>',
      '    <timer name="hypervclock" present="yes"/>',
      "  </clock>",
    );
  } else x.push(`  <clock offset="${offset}"/>`);
  x.push(
    "  <on_poweroff>destroy</on_poweroff>",
    "  <on_reboot>restart</on_reboot>",
    // A panicked guest (pvpanic) stays paused for inspection, as QEMU's panic=pause keeps it.
    `  <on_crash>${def.guest === "macos" ? "destroy" : "preserve"}</on_crash>`,
  );
  x.push("  <devices>");
  // No <emulator>: libvirt wants an absolute path and picks the right one from its capabilities.
  const targets = diskTargets(def);
  const overrides: string[] = [];
  const slot = rootSlots(def);
  def.disks.forEach((disk, i) => {
    const target = targets[i]!;
    x.push(...diskElement(disk, target));
    if (target.nvme) {
      const { bus, addr } = slot();
      overrides.push(
        `    <qemu:device alias="ua-${esc(disk.id)}">`,
        "      <qemu:frontend>",
        '        <qemu:property name="driver" type="string" value="nvme"/>',
        `        <qemu:property name="bus" type="string" value="${bus}"/>`,
        `        <qemu:property name="addr" type="string" value="${addr}"/>`,
        "      </qemu:frontend>",
        "    </qemu:device>",
      );
    }
  });
  // Only the USB controller the definition needs (libvirt would add one by itself).
  x.push(`    <controller type="usb" model="${usbController(def) ? "qemu-xhci" : "none"}"/>`);
  if (usbTablet(def)) x.push('    <input type="tablet" bus="usb"/>');
  // Spare root ports for hotplug (gini attach: virsh attach-device), as virt-install adds them,
  // after the root complex (which libvirt would take the first unnumbered PCI controller for).
  if (def.machine === "q35") {
    x.push('    <controller type="pci" index="0" model="pcie-root"/>');
    const ports = HOTPLUG_PORTS.length + libvirtPortDevices(def, targets);
    for (let i = 0; i < ports; i++) x.push('    <controller type="pci" model="pcie-root-port"/>');
  }
  const commandline: string[] = [];
  for (const nic of def.nics) {
    if (nic.type === "user" && nic.forwards.length) {
      // libvirt forwards the ports of a user network only through passt (which libvirt 9.0
      // refuses, and which the host may lack), a different network stack: QEMU's own user
      // network is passed as qemuArgv gives it, forwards and all.
      commandline.push(...nicArgs(nic));
    } else x.push(...nicElement(nic));
  }
  // The serial console on a socket (gini console), its output also kept in the log.
  x.push(
    '    <serial type="unix">',
    `      <source mode="bind" path="${esc(def.paths.serialSocket)}"/>`,
    `      <log file="${esc(def.paths.serialLog)}" append="on"/>`,
    '      <target port="0"/>',
    "    </serial>",
  );
  x.push(
    '    <console type="unix">',
    `      <source mode="bind" path="${esc(def.paths.serialSocket)}"/>`,
    '      <target type="serial" port="0"/>',
    "    </console>",
  );
  if (def.guest !== "macos") {
    x.push(
      '    <channel type="unix">',
      `      <source mode="bind" path="${esc(def.paths.agentSocket)}"/>`,
      '      <target type="virtio" name="org.qemu.guest_agent.0"/>',
      "    </channel>",
    );
  }
  if (def.display.type === "vnc") {
    x.push(
      `    <graphics type="vnc" port="${5900 + (def.display.port ?? 0)}" listen="127.0.0.1"/>`,
      "    <video>",
      '      <model type="virtio"/>',
      "    </video>",
    );
  } else if (def.display.type === "spice") {
    x.push(
      `    <graphics type="spice" port="${def.display.port ?? 5930}" listen="127.0.0.1"/>`,
      '    <channel type="spicevmc">',
      '      <target type="virtio" name="com.redhat.spice.0"/>',
      "    </channel>",
      "    <video>",
      '      <model type="qxl"/>',
      "    </video>",
    );
  } else if (def.display.type === "gtk") {
    x.push(
      '    <graphics type="sdl"/>',
      "    <video>",
      '      <model type="virtio"/>',
      "    </video>",
    );
  } else {
    x.push("    <video>", '      <model type="none"/>', "    </video>");
  }
  if (def.tpm.enabled) {
    x.push(
      `    <tpm model="${def.tpm.model ?? "tpm-tis"}">`,
      '      <backend type="emulator" version="2.0"/>',
      "    </tpm>",
    );
  }
  for (const u of def.usb) x.push(...usbElement(u));
  for (const p of def.passthrough) {
    const [domain, bus, rest] = p.address.split(":") as [string, string, string];
    const [slot, fn] = rest.split(".") as [string, string];
    x.push(
      '    <hostdev mode="subsystem" type="pci" managed="yes">',
      "      <source>",
      `        <address domain="0x${domain}" bus="0x${bus}" slot="0x${slot}" function="0x${fn}"/>`,
      "      </source>",
      "    </hostdev>",
    );
  }
  x.push(
    '    <rng model="virtio">',
    '      <backend model="random">/dev/urandom</backend>',
    "    </rng>",
  );
  if (def.guest !== "macos") x.push('    <panic model="isa"/>');
  // No balloon: qemuArgv has none, and libvirt would add one by itself.
  x.push('    <memballoon model="none"/>');
  x.push("  </devices>");
  commandline.push(...def.extraArgs);
  if (commandline.length) {
    x.push("  <qemu:commandline>");
    for (const arg of placed(commandline, slot)) x.push(`    <qemu:arg value="${esc(arg)}"/>`);
    x.push("  </qemu:commandline>");
  }
  if (overrides.length) x.push("  <qemu:override>", ...overrides, "  </qemu:override>");
  x.push("</domain>", "");
  return x.join("\n");
}
