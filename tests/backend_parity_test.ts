/**
 * The two backends describe one machine: for every example VM file (and macOS VMs, a UEFI +
 * Secure Boot + TPM VM, a named CPU model with direct kernel boot, the pc machine, and the
 * examples again on a host without KVM), the QEMU command of start.sh and the libvirt domain
 * XML are read back into the same record — machine, CPU, topology, memory, firmware, disks,
 * NICs, TPM, display, USB, PCI passthrough and the rest — and compared field by field. Where a
 * device sits on the PCI bus is not compared: libvirt puts devices behind root ports, QEMU's
 * command line on the root bus.
 *
 * @module
 */
import { assert, assertEquals } from "./_assert.ts";
import { join } from "node:path";
import { loadPlugins, runStages } from "../kernel/mod.ts";
import type { Json } from "../workers/sdk.ts";
import { startScript } from "../plugins/qemu_setup/start_script.ts";
import type { VmDefinition } from "../plugins/qemu_setup/contracts.ts";
import { findRelease } from "../plugins/opencore/releases.ts";
import { macosVmToml } from "../plugins/opencore/_vmfile.ts";
import { recordingUi, REPO, sh, tempEnv } from "./_helpers.ts";

const HOSTS = join(REPO, "tests/fixtures/hosts");

// ---------------------------------------------------------------------------------------------
// The record both sides are read into.

interface Disk {
  path: string;
  format: string;
  /** virtio, nvme, sata (AHCI) or ide (PIIX). */
  bus: string;
  /** AHCI controller.port or IDE bus.unit; null on buses with one device per controller. */
  port: string | null;
  device: "disk" | "cdrom";
  readonly: boolean;
  boot: number | null;
  cache: string | null;
  io: string | null;
  discard: string | null;
  serial: string | null;
}

interface Nic {
  /** user, bridge, tap or macvtap. */
  type: string;
  model: string;
  mac: string;
  /** The bridge or host interface. */
  source: string | null;
  /** What implements a user network: QEMU's slirp, or passt. */
  stack: string | null;
  /** "tcp 127.0.0.1:2222 -> 22" */
  forwards: string[];
}

/** What a guest would see, and what it is attached to on the host. */
interface Machine {
  identity: { name: string; uuid: string };
  machine: { type: string; accel: string; smm: string; hpet: string; defaultDevices: string };
  cpu: { model: string; features: string[] };
  topology: { vcpus: number; sockets: number; dies: number; cores: number; threads: number };
  memory: { bytes: number; current: number; hugepages: boolean };
  firmware: {
    type: string;
    code: string | null;
    codeReadonly: boolean;
    vars: string | null;
    secureBoot: boolean;
  };
  kernelBoot: { kernel: string; initrd: string | null; cmdline: string | null } | null;
  disks: Disk[];
  nics: Nic[];
  tpm: { model: string; backend: string; version: string } | null;
  display: {
    type: string;
    listen: string | null;
    port: number | null;
    video: string;
    agent: boolean;
  };
  usb: { controllers: string[]; devices: string[] };
  passthrough: string[];
  clock: string;
  /** The serial port: a file, or a socket and its log ("unix:PATH log:FILE"). */
  serial: string | null;
  /** The QEMU guest agent's channel: its socket. */
  guestAgent: string | null;
  rng: string | null;
  /** The panic device and what a panic does: "isa pause". */
  panic: string | null;
  balloon: string | null;
  /** Spare PCIe root ports for hotplug (gini attach), however each side numbers them. */
  hotplugPorts: number;
  /** Arguments neither side models (macOS's SMC, -global, -smbios, extra_args), as QEMU args. */
  other: string[];
}

// ---------------------------------------------------------------------------------------------
// QEMU's side.

/** QEMU's `-opt head,key=value,...` (a doubled comma is a comma in a value). */
function qemuOpts(value: string): { head: string | null; props: [string, string][] } {
  const parts: string[] = [];
  let current = "";
  for (let i = 0; i < value.length; i++) {
    if (value[i] !== ",") current += value[i];
    else if (value[i + 1] === ",") {
      current += ",";
      i++;
    } else {
      parts.push(current);
      current = "";
    }
  }
  parts.push(current);
  let head: string | null = null;
  const props: [string, string][] = [];
  parts.forEach((part, i) => {
    const eq = part.indexOf("=");
    if (eq < 0 && i === 0) head = part;
    else if (eq < 0) props.push([part, "on"]);
    else props.push([part.slice(0, eq), part.slice(eq + 1)]);
  });
  return { head, props };
}

const prop = (props: [string, string][], key: string) =>
  props.findLast(([k]) => k === key)?.[1] ?? null;

/** QEMU's x86 CPU properties whose default is on (target/i386/cpu.c): setting them changes nothing. */
const CPU_DEFAULT_ON = new Set(["kvm", "vmware-cpuid-freq"]);

/** CPU features as a sorted set: `+name`, `-name` or `name=value`, the last setting winning. */
function cpuFeatures(settings: [string, string][]): string[] {
  const state = new Map<string, string>();
  for (const [name, value] of settings) {
    const v = value === "true" ? "on" : value === "false" ? "off" : value;
    state.set(name.replaceAll("_", "-"), v);
  }
  return [...state]
    .filter(([name, value]) => !(CPU_DEFAULT_ON.has(name) && value === "on"))
    .map(([name, value]) =>
      value === "on" ? `+${name}` : value === "off" ? `-${name}` : `${name}=${value}`
    )
    .sort();
}

function qemuSize(text: string): number {
  const m = text.match(/^(\d+)([KMGT]?)B?$/i);
  assert(m, `unreadable size "${text}"`);
  const unit = { "": 1024 ** 2, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[
    m[2]!.toUpperCase()
  ]!;
  return Number(m[1]) * unit;
}

const NIC_MODELS: Record<string, string> = {
  "virtio-net-pci": "virtio",
  e1000e: "e1000e",
  e1000: "e1000",
  vmxnet3: "vmxnet3",
  rtl8139: "rtl8139",
};

/** Flags that take no value. */
const SWITCHES = new Set(["-daemonize", "-nodefaults", "-no-hpet", "-enable-kvm", "-S"]);
/** How the QEMU backend reaches its VM (libvirt has its own): not part of the machine. */
const PLUMBING = new Set(["-daemonize", "-pidfile", "-mon", "-name", "-uuid"]);

/**
 * The machine a QEMU argv starts. `script` is start.sh, which also says what swtpm is started
 * with (the argv only names the socket).
 */
function fromArgv(argv: string[], script = ""): Machine {
  const items: { flag: string; value: string; used: boolean }[] = [];
  for (let i = 1; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = SWITCHES.has(flag) ? "" : argv[++i] ?? "";
    items.push({ flag, value, used: PLUMBING.has(flag) });
  }
  const take = (flag: string) =>
    items.filter((item) => item.flag === flag).map((item) => {
      item.used = true;
      return item.value;
    });
  const one = (flag: string) => take(flag).at(-1) ?? null;
  const devices = items.filter((item) => item.flag === "-device").map((item) => ({
    item,
    ...qemuOpts(item.value),
  }));
  const device = (driver: string) =>
    devices.filter((d) => d.head === driver).map((d) => {
      d.item.used = true;
      return d;
    });

  const nameItem = items.find((i) => i.flag === "-name");
  const identity = {
    name: nameItem ? qemuOpts(nameItem.value).head ?? "" : "",
    uuid: items.find((i) => i.flag === "-uuid")?.value ?? "",
  };

  const machineProps: [string, string][] = [];
  let machineType = "";
  for (const value of take("-machine")) {
    const o = qemuOpts(value);
    if (o.head) machineType = o.head;
    machineProps.push(...o.props);
  }
  const noHpet = take("-no-hpet").length > 0;
  const machine = {
    type: machineType,
    accel: prop(machineProps, "accel") ?? (take("-enable-kvm").length ? "kvm" : "tcg"),
    smm: prop(machineProps, "smm") ?? "default",
    hpet: noHpet ? "off" : prop(machineProps, "hpet") ?? "default",
    defaultDevices: take("-nodefaults").length ? "none" : "QEMU's (parallel port, empty CD-ROM)",
  };

  const [model = "", ...flags] = (one("-cpu") ?? "").split(",");
  const cpu = {
    model,
    features: cpuFeatures(flags.map((f): [string, string] => {
      if (f.startsWith("+")) return [f.slice(1), "on"];
      if (f.startsWith("-")) return [f.slice(1), "off"];
      const eq = f.indexOf("=");
      return eq < 0 ? [f, "on"] : [f.slice(0, eq), f.slice(eq + 1)];
    })),
  };

  const smp = qemuOpts(one("-smp") ?? "1");
  const topology = {
    vcpus: Number(smp.head ?? prop(smp.props, "cpus") ?? 1),
    sockets: Number(prop(smp.props, "sockets") ?? 1),
    dies: Number(prop(smp.props, "dies") ?? 1),
    cores: Number(prop(smp.props, "cores") ?? 1),
    threads: Number(prop(smp.props, "threads") ?? 1),
  };

  const bytes = qemuSize(qemuOpts(one("-m") ?? "128M").head ?? "128M");
  const backends = items.filter((i) => i.flag === "-object").map((i) => ({
    item: i,
    ...qemuOpts(i.value),
  }));
  const memBackend = backends.find((b) => b.head === "memory-backend-file");
  if (memBackend) memBackend.item.used = true;
  const memory = {
    bytes,
    current: bytes,
    hugepages: prop(memBackend?.props ?? [], "mem-path")?.startsWith("/dev/hugepages") ?? false,
  };

  // Block nodes by node-name: a device's drive= names a format node (qcow2, raw), whose file=
  // names the protocol node (the file or block device) that carries the path and the I/O options.
  const nodes = new Map(
    items.filter((i) => i.flag === "-blockdev").map((i) => {
      const o = qemuOpts(i.value);
      return [prop(o.props, "node-name") ?? "", { item: i, props: o.props }] as const;
    }),
  );
  /** A format node and the protocol node under it, marked used. */
  const blockdev = (name: string | null) => {
    const format = nodes.get(name ?? "");
    if (!format) return null;
    const file = nodes.get(prop(format.props, "file") ?? "") ?? format;
    format.item.used = file.item.used = true;
    const direct = prop(file.props, "cache.direct") === "on";
    const noFlush = prop(file.props, "cache.no-flush") === "on";
    return {
      path: prop(file.props, "filename"),
      format: file === format ? "raw" : prop(format.props, "driver") ?? "raw",
      readonly: prop(format.props, "read-only") === "on" || prop(file.props, "read-only") === "on",
      // libvirt's cache modes as QEMU's two switches.
      cache: direct && !noFlush ? "none" : direct ? "directsync" : noFlush ? "unsafe" : null,
      io: prop(file.props, "aio"),
      discard: prop(file.props, "discard"),
    };
  };
  const code = blockdev(prop(machineProps, "pflash0"));
  const vars = blockdev(prop(machineProps, "pflash1"));
  const secureFlash = items.some((i) => {
    const o = qemuOpts(i.value);
    const secure = i.flag === "-global" && prop(o.props, "driver") === "cfi.pflash01" &&
      prop(o.props, "property") === "secure" && prop(o.props, "value") === "on";
    if (secure) i.used = true;
    return secure;
  });
  const firmware = {
    type: code ? "uefi" : "bios",
    code: code?.path ?? null,
    codeReadonly: code?.readonly ?? false,
    vars: vars?.path ?? null,
    secureBoot: secureFlash,
  };

  const kernel = one("-kernel");
  const kernelBoot = kernel ? { kernel, initrd: one("-initrd"), cmdline: one("-append") } : null;

  const ahci = machineType === "q35";
  const disks: Disk[] = [];
  for (const d of devices) {
    if (!["virtio-blk-pci", "nvme", "ide-hd", "ide-cd", "scsi-hd"].includes(d.head ?? "")) {
      continue;
    }
    d.item.used = true;
    const drive = blockdev(prop(d.props, "drive"));
    assert(drive, `no -blockdev for "${d.item.value}"`);
    const ideBus = prop(d.props, "bus")?.match(/^ide\.(\d+)$/)?.[1];
    const sata = prop(d.props, "bus")?.match(/^sata(\d+)\.(\d+)$/);
    const unit = prop(d.props, "unit") ?? "0";
    disks.push({
      path: drive.path ?? "",
      format: drive.format,
      bus: d.head === "virtio-blk-pci"
        ? "virtio"
        : d.head === "nvme"
        ? "nvme"
        : sata || ahci
        ? "sata"
        : "ide",
      // AHCI controller.port (on q35 the ide.N buses are the built-in controller's ports), or
      // IDE bus.unit.
      port: sata
        ? `${sata[1]}.${sata[2]}`
        : ideBus === undefined
        ? null
        : ahci
        ? `0.${ideBus}`
        : `${ideBus}.${unit}`,
      device: d.head === "ide-cd" ? "cdrom" : "disk",
      readonly: drive.readonly,
      boot: prop(d.props, "bootindex") === null ? null : Number(prop(d.props, "bootindex")),
      cache: drive.cache,
      io: drive.io,
      discard: drive.discard,
      serial: prop(d.props, "serial"),
    });
  }

  const netdevs = items.filter((i) => i.flag === "-netdev").map((i) => ({
    item: i,
    ...qemuOpts(i.value),
  }));
  const nics: Nic[] = [];
  for (const d of devices) {
    const netdev = netdevs.find((n) => prop(n.props, "id") === prop(d.props, "netdev"));
    if (!netdev) continue;
    d.item.used = netdev.item.used = true;
    const type = netdev.head ?? "";
    nics.push({
      type,
      model: NIC_MODELS[d.head ?? ""] ?? d.head ?? "",
      mac: prop(d.props, "mac") ?? "",
      source: type === "bridge" ? prop(netdev.props, "br") : prop(netdev.props, "ifname"),
      stack: type === "user" ? "slirp" : null,
      forwards: netdev.props.filter(([k]) => k === "hostfwd").map(([, v]) => {
        const m = v.match(/^(tcp|udp):([^:]*):(\d+)-[^:]*:(\d+)$/);
        assert(m, `unreadable hostfwd "${v}"`);
        return `${m[1]} ${m[2]}:${m[3]} -> ${m[4]}`;
      }),
    });
  }
  if (take("-nic").some((v) => v !== "none")) throw new Error("-nic other than none is not read");

  const tpmdev = qemuOpts(one("-tpmdev") ?? "");
  const tpmDevice = [...device("tpm-tis"), ...device("tpm-crb")][0];
  const tpmChardev = items.find((i) =>
    i.flag === "-chardev" && prop(qemuOpts(i.value).props, "id") === prop(tpmdev.props, "chardev")
  );
  if (tpmChardev) tpmChardev.used = true;
  const tpm = tpmDevice
    ? {
      model: tpmDevice.head ?? "",
      backend: tpmdev.head ?? "",
      // swtpm is started by start.sh, ahead of QEMU.
      version: /swtpm socket --tpm2/.test(script) ? "2.0" : "1.2",
    }
    : null;

  const vnc = one("-vnc");
  const spice = qemuOpts(one("-spice") ?? "");
  const displayArg = qemuOpts(one("-display") ?? "none").head ?? "none";
  const agentPort = device("virtserialport").find((d) =>
    prop(d.props, "name") === "com.redhat.spice.0"
  );
  if (agentPort) {
    device("virtio-serial-pci");
    const chardev = items.find((i) =>
      i.flag === "-chardev" && qemuOpts(i.value).head === "spicevmc"
    );
    if (chardev) chardev.used = true;
  }
  const vncMatch = vnc?.match(/^(.*):(\d+)$/);
  const display = {
    type: spice.props.length ? "spice" : vnc ? "vnc" : displayArg,
    listen: spice.props.length ? prop(spice.props, "addr") : vncMatch ? vncMatch[1]! : null,
    port: spice.props.length
      ? Number(prop(spice.props, "port"))
      : vncMatch
      ? 5900 + Number(vncMatch[2])
      : null,
    video: one("-vga") ?? "none",
    agent: agentPort !== undefined,
  };

  // The AHCI controllers SATA disks sit on (q35 has one built in, libvirt adds the others).
  device("ich9-ahci");
  const usb = {
    controllers: device("qemu-xhci").map(() => "qemu-xhci"),
    devices: [
      ...device("usb-host").map((d) =>
        `${prop(d.props, "vendorid")}:${prop(d.props, "productid")}`
      ),
      ...device("usb-tablet").map(() => "tablet"),
    ],
  };
  const passthrough = device("vfio-pci").map((d) => prop(d.props, "host") ?? "");

  const rngDevice = device("virtio-rng-pci")[0];
  const rngBackend = backends.find((b) =>
    b.head === "rng-random" && prop(b.props, "id") === prop(rngDevice?.props ?? [], "rng")
  );
  if (rngBackend) rngBackend.item.used = true;
  const rng = rngDevice ? `virtio ${prop(rngBackend?.props ?? [], "filename")}` : null;
  const balloon = device("virtio-balloon-pci").length ? "virtio" : null;
  const hotplugPorts = device("pcie-root-port").length;
  const panicAction = take("-action").map((v) => v.match(/^panic=(\w+)$/)?.[1]).find(Boolean);
  const panic = device("pvpanic").length ? `isa ${panicAction ?? "shutdown"}` : null;

  const rtc = qemuOpts(one("-rtc") ?? "base=utc");
  const qmp = items.find((i) => i.flag === "-chardev" && /(^|,)id=qmp(,|$)/.test(i.value));
  if (qmp) qmp.used = true;
  const chardev = (id: string | null) => {
    const found = items.find((i) =>
      i.flag === "-chardev" && prop(qemuOpts(i.value).props, "id") === id
    );
    if (found) found.used = true;
    return qemuOpts(found?.value ?? "").props;
  };
  const serialArg = one("-serial");
  const serialSocket = serialArg?.startsWith("chardev:") ? chardev(serialArg.slice(8)) : null;
  const serial = serialSocket
    ? `unix:${prop(serialSocket, "path")} log:${prop(serialSocket, "logfile")}`
    : serialArg?.startsWith("file:")
    ? serialArg.slice(5)
    : serialArg;
  const agentChannel = device("virtserialport").find((d) =>
    prop(d.props, "name") === "org.qemu.guest_agent.0"
  );
  if (agentChannel) device("virtio-serial-pci");
  const guestAgent = agentChannel
    ? prop(chardev(prop(agentChannel.props, "chardev")), "path")
    : null;

  // Where a device sits on the root bus is not compared: libvirt puts its own devices behind
  // root ports, and the devices it is given as they are in slots of their own.
  const other = items.filter((i) => !i.used).flatMap((i) =>
    [
      i.flag,
      i.flag === "-device" ? i.value.replace(/,bus=pcie?\.0|,addr=[\w.]+/g, "") : i.value,
    ].filter(Boolean)
  );
  return {
    identity,
    machine,
    cpu,
    topology,
    memory,
    firmware,
    kernelBoot,
    disks,
    nics,
    tpm,
    display,
    usb,
    passthrough,
    clock: prop(rtc.props, "base") ?? "utc",
    serial,
    guestAgent,
    rng,
    panic,
    balloon,
    hotplugPorts,
    other,
  };
}

// ---------------------------------------------------------------------------------------------
// libvirt's side.

interface Element {
  name: string;
  attrs: Record<string, string>;
  children: Element[];
  text: string;
}

const ENTITIES: Record<string, string> = {
  lt: "<",
  gt: ">",
  amp: "&",
  apos: "'",
  quot: '"',
};
const unescape = (text: string) => text.replace(/&(lt|gt|amp|apos|quot);/g, (_, e) => ENTITIES[e]!);

/** A small parser for well-formed XML without DTDs or CDATA. */
function parseXml(text: string): Element {
  const root: Element = { name: "#document", attrs: {}, children: [], text: "" };
  const stack = [root];
  const token =
    /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<(\/?)([\w:.-]+)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|([^<]+)/g;
  let at = 0;
  for (const m of text.matchAll(token)) {
    assert(m.index === at, `unreadable XML at offset ${at}: ${text.slice(at, at + 40)}`);
    at = m.index + m[0].length;
    const top = stack.at(-1)!;
    if (m[5] !== undefined) top.text += unescape(m[5]);
    else if (m[2] === undefined) continue;
    else if (m[1]) {
      assert(top.name === m[2], `</${m[2]}> closes <${top.name}>`);
      stack.pop();
    } else {
      const attrs: Record<string, string> = {};
      for (const a of m[3]!.matchAll(/([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
        attrs[a[1]!] = unescape(a[2] ?? a[3] ?? "");
      }
      const element: Element = { name: m[2], attrs, children: [], text: "" };
      top.children.push(element);
      if (!m[4]) stack.push(element);
    }
  }
  assert(at === text.length && stack.length === 1, "the XML ends inside an element");
  const [domain] = root.children;
  assert(domain && root.children.length === 1, "the XML has one root element");
  return domain;
}

/** The child elements at a path such as "devices/disk". */
function all(element: Element | undefined, path: string): Element[] {
  let current = element ? [element] : [];
  for (const name of path.split("/")) {
    current = current.flatMap((e) => e.children.filter((c) => c.name === name));
  }
  return current;
}
const first = (element: Element | undefined, path: string) => all(element, path)[0];
const text = (element: Element | undefined, path: string) => {
  const found = first(element, path);
  return found ? found.text.trim() : null;
};

const KIB: Record<string, number> = { KiB: 1, k: 1, KB: 1, MiB: 1024, M: 1024, GiB: 1024 ** 2 };
const libvirtBytes = (e: Element | undefined) =>
  e ? Number(e.text.trim()) * (KIB[e.attrs.unit ?? "KiB"] ?? NaN) * 1024 : 0;

/** The machine a domain XML defines, as libvirt would start it with QEMU. */
function fromXml(xml: string): Machine {
  const d = parseXml(xml);
  const os = first(d, "os");
  const features = first(d, "features");
  const cpuEl = first(d, "cpu");
  const devices = first(d, "devices");
  // Arguments given to QEMU as they are: read by the argv reader, and merged below.
  const commandline = all(d, "qemu:commandline/qemu:arg").map((a) => a.attrs.value ?? "");
  const extra = fromArgv(["qemu", ...commandline]);
  // Device property overrides (qemu:override), by the alias of the device they change.
  const overrides = new Map<string, [string, string | null][]>();
  for (const dev of all(d, "qemu:override/qemu:device")) {
    overrides.set(
      dev.attrs.alias ?? "",
      all(dev, "qemu:frontend/qemu:property").map((p) => [
        p.attrs.name ?? "",
        p.attrs.type === "remove" ? null : p.attrs.value ?? "",
      ]),
    );
  }

  const timers = all(d, "clock/timer");
  const hpet = timers.find((t) => t.attrs.name === "hpet")?.attrs.present;
  const machine = {
    type: first(os, "type")?.attrs.machine ?? "",
    accel: d.attrs.type === "kvm" ? "kvm" : "tcg",
    smm: first(features, "smm")?.attrs.state ?? "default",
    hpet: hpet === "no" ? "off" : hpet === "yes" ? "on" : "default",
    // libvirt always starts QEMU with -nodefaults.
    defaultDevices: "none",
  };

  const mode = cpuEl?.attrs.mode ?? "custom";
  const modelEl = first(cpuEl, "model");
  const settings: [string, string][] = [];
  if (modelEl?.attrs.vendor_id) settings.push(["vendor", modelEl.attrs.vendor_id]);
  for (const f of all(cpuEl, "feature")) {
    const policy = f.attrs.policy ?? "require";
    settings.push([
      f.attrs.name ?? "",
      policy === "require" || policy === "force"
        ? "on"
        : policy === "disable" || policy === "forbid"
        ? "off"
        : policy,
    ]);
  }
  const hidden = first(features, "kvm/hidden")?.attrs.state;
  if (hidden) settings.push(["kvm", hidden === "on" ? "off" : "on"]);
  const vendorId = first(features, "hyperv/vendor_id");
  if (vendorId?.attrs.state === "on") settings.push(["hv-vendor-id", vendorId.attrs.value ?? ""]);
  // Hyper-V enlightenments: <relaxed state="on"/> is hv-relaxed, spinlocks' retries its value in
  // hex, the hypervclock timer hv-time.
  for (const hv of first(features, "hyperv")?.children ?? []) {
    if (hv.name === "vendor_id" || !hv.attrs.state) continue;
    const state = hv.attrs.state === "on" ? "on" : "off";
    settings.push(
      hv.name === "spinlocks" && state === "on"
        ? ["hv-spinlocks", `0x${Number(hv.attrs.retries).toString(16)}`]
        : [`hv-${hv.name}`, state],
    );
  }
  const hypervClock = all(d, "clock/timer").find((t) => t.attrs.name === "hypervclock");
  if (hypervClock) settings.push(["hv-time", hypervClock.attrs.present === "yes" ? "on" : "off"]);
  const cpu = {
    model: mode === "host-passthrough"
      ? "host"
      : mode === "maximum"
      ? "max"
      : mode === "custom"
      ? modelEl?.text.trim() ?? "qemu64"
      : mode,
    features: cpuFeatures(settings),
  };

  const topologyEl = first(cpuEl, "topology");
  const topology = {
    vcpus: Number(text(d, "vcpu") ?? 1),
    sockets: Number(topologyEl?.attrs.sockets ?? 1),
    dies: Number(topologyEl?.attrs.dies ?? 1),
    cores: Number(topologyEl?.attrs.cores ?? 1),
    threads: Number(topologyEl?.attrs.threads ?? 1),
  };

  const memory = {
    bytes: libvirtBytes(first(d, "memory")),
    current: libvirtBytes(first(d, "currentMemory") ?? first(d, "memory")),
    hugepages: first(d, "memoryBacking/hugepages") !== undefined,
  };

  const loader = first(os, "loader");
  const firmware = {
    type: loader ? "uefi" : "bios",
    code: loader ? loader.text.trim() : null,
    codeReadonly: loader?.attrs.readonly === "yes",
    vars: text(os, "nvram"),
    secureBoot: loader?.attrs.secure === "yes",
  };

  const kernel = text(os, "kernel");
  const kernelBoot = kernel
    ? { kernel, initrd: text(os, "initrd"), cmdline: text(os, "cmdline") }
    : null;

  const disks: Disk[] = all(devices, "disk").map((disk) => {
    const driver = first(disk, "driver");
    const source = first(disk, "source");
    const target = first(disk, "target");
    const bus = target?.attrs.bus ?? "";
    const dev = target?.attrs.dev ?? "";
    // libvirt numbers disks from their names (sda: controller 0, port 0; sdg: controller 1).
    const index = [...dev.replace(/^(sd|hd|vd)/, "")].reduce((n, c) =>
      n * 26 + c.charCodeAt(0) - 96, 0) - 1;
    const boot = first(disk, "boot")?.attrs.order;
    const record: Disk = {
      path: source?.attrs.file ?? source?.attrs.dev ?? "",
      format: driver?.attrs.type ?? "raw",
      bus,
      port: bus === "sata"
        ? `${Math.floor(index / 6)}.${index % 6}`
        : bus === "ide"
        ? `${Math.floor(index / 2)}.${index % 2}`
        : null,
      device: disk.attrs.device === "cdrom" ? "cdrom" : "disk",
      readonly: first(disk, "readonly") !== undefined,
      boot: boot === undefined ? null : Number(boot),
      cache: driver?.attrs.cache ?? null,
      io: driver?.attrs.io ?? null,
      discard: driver?.attrs.discard ?? null,
      serial: text(disk, "serial"),
    };
    for (const [name, value] of overrides.get(first(disk, "alias")?.attrs.name ?? "") ?? []) {
      if (name === "driver" && value === "nvme") {
        record.bus = "nvme";
        record.port = null;
      } else if (name === "serial") record.serial = value;
    }
    return record;
  });

  const NIC_TYPES: Record<string, string> = {
    user: "user",
    bridge: "bridge",
    ethernet: "tap",
    direct: "macvtap",
  };
  const nics: Nic[] = all(devices, "interface").map((nic) => ({
    type: NIC_TYPES[nic.attrs.type ?? ""] ?? nic.attrs.type ?? "",
    model: first(nic, "model")?.attrs.type ?? "",
    mac: first(nic, "mac")?.attrs.address ?? "",
    source: first(nic, "source")?.attrs.bridge ?? first(nic, "source")?.attrs.dev ??
      first(nic, "target")?.attrs.dev ?? null,
    stack: nic.attrs.type === "user" ? first(nic, "backend")?.attrs.type ?? "slirp" : null,
    forwards: all(nic, "portForward").flatMap((f) =>
      all(f, "range").map((r) =>
        `${f.attrs.proto} ${f.attrs.address ?? ""}:${r.attrs.start} -> ${r.attrs.to}`
      )
    ),
  }));

  const tpmEl = first(devices, "tpm");
  const tpm = tpmEl
    ? {
      model: tpmEl.attrs.model ?? "tpm-tis",
      backend: first(tpmEl, "backend")?.attrs.type ?? "",
      version: first(tpmEl, "backend")?.attrs.version ?? "1.2",
    }
    : null;

  const graphics = first(devices, "graphics");
  const display = {
    type: graphics?.attrs.type ?? "none",
    listen: graphics?.attrs.listen ?? null,
    port: graphics?.attrs.port ? Number(graphics.attrs.port) : null,
    video: first(devices, "video/model")?.attrs.type ?? "none",
    agent: all(devices, "channel").some((c) =>
      c.attrs.type === "spicevmc" && first(c, "target")?.attrs.name === "com.redhat.spice.0"
    ),
  };

  const usbControllers = all(devices, "controller").filter((c) => c.attrs.type === "usb");
  const usb = {
    controllers: [
      // Without a USB controller element libvirt adds its own.
      ...(usbControllers.length === 0 ? ["libvirt's default"] : []),
      ...usbControllers.map((c) => c.attrs.model ?? "libvirt's default").filter((m) =>
        m !== "none"
      ),
      ...extra.usb.controllers,
    ],
    devices: [
      ...all(devices, "hostdev").filter((h) => h.attrs.type === "usb").map((h) =>
        `${first(h, "source/vendor")?.attrs.id}:${first(h, "source/product")?.attrs.id}`
      ),
      ...all(devices, "input").filter((i) => i.attrs.type === "tablet" && i.attrs.bus === "usb")
        .map(() => "tablet"),
      ...extra.usb.devices,
    ],
  };
  const passthrough = all(devices, "hostdev").filter((h) => h.attrs.type === "pci").map((h) => {
    const a = first(h, "source/address")?.attrs ?? {};
    const hex = (v: string | undefined, width: number) =>
      (v ?? "").replace(/^0x/, "").padStart(width, "0");
    return `${hex(a.domain, 4)}:${hex(a.bus, 2)}:${hex(a.slot, 2)}.${hex(a.function, 1)}`;
  });

  const rngEl = first(devices, "rng");
  const libvirtFilled = disks.filter((d) => d.bus === "virtio").length +
    all(devices, "interface").length +
    (all(devices, "channel").some((c) =>
        c.attrs.type === "spicevmc" || first(c, "target")?.attrs.type === "virtio"
      )
      ? 1
      : 0) +
    (rngEl ? 1 : 0) +
    usbControllers.filter((c) => c.attrs.model === "qemu-xhci").length +
    passthrough.length;
  const balloonModel = first(devices, "memballoon")?.attrs.model ?? "virtio";
  const serialEl = all(devices, "serial")[0];
  return {
    identity: { name: text(d, "name") ?? "", uuid: text(d, "uuid") ?? "" },
    machine,
    cpu,
    topology,
    memory,
    firmware,
    kernelBoot,
    disks: [...disks, ...extra.disks],
    nics: [...nics, ...extra.nics],
    tpm: tpm ?? extra.tpm,
    display,
    usb,
    passthrough: [...passthrough, ...extra.passthrough],
    clock: first(d, "clock")?.attrs.offset ?? "utc",
    serial: serialEl?.attrs.type === "file"
      ? first(serialEl, "source")?.attrs.path ?? null
      : serialEl?.attrs.type === "unix"
      ? `unix:${first(serialEl, "source")?.attrs.path} log:${first(serialEl, "log")?.attrs.file}`
      : null,
    guestAgent: first(
      all(devices, "channel").find((c) =>
        c.attrs.type === "unix" && first(c, "target")?.attrs.name === "org.qemu.guest_agent.0"
      ) ?? { name: "", attrs: {}, children: [], text: "" },
      "source",
    )?.attrs.path ?? null,
    rng: rngEl ? `${rngEl.attrs.model} ${text(rngEl, "backend")}` : extra.rng,
    // libvirt's on_crash "preserve" is QEMU's panic=pause.
    panic: first(devices, "panic")
      ? `${first(devices, "panic")!.attrs.model} ${
        text(d, "on_crash") === "preserve" ? "pause" : text(d, "on_crash")
      }`
      : extra.panic,
    balloon: balloonModel === "none" ? extra.balloon : balloonModel,
    // The spare ones: libvirt puts its own PCIe devices behind the root ports it is given first.
    hotplugPorts: Math.max(
      0,
      all(devices, "controller").filter((c) =>
        c.attrs.type === "pci" && c.attrs.model === "pcie-root-port"
      ).length + extra.hotplugPorts - (machine.type === "q35" ? libvirtFilled : 0),
    ),
    other: extra.other,
  };
}

/** The fields in which two records differ. */
function differing(a: Machine, b: Machine): (keyof Machine)[] {
  return (Object.keys(a) as (keyof Machine)[]).filter((k) =>
    JSON.stringify(a[k]) !== JSON.stringify(b[k])
  );
}

// ---------------------------------------------------------------------------------------------
// The VMs.

/** A copy of a fixture host without /dev/kvm: QEMU will run under TCG. */
async function withoutKvm(host: string): Promise<string> {
  const copy = await Deno.makeTempDir({ prefix: `gini-${host}-nokvm-` });
  await sh("cp", "-a", `${join(HOSTS, host)}/.`, copy);
  await Deno.remove(join(copy, "dev/kvm"));
  return copy;
}

/**
 * The definition, start.sh and vm.xml of a VM file, planned by the real stages. macOS's recovery
 * image comes from Apple's servers: for a macOS VM macos-recovery's stage is left out and the
 * image it would have prepared is given instead.
 */
async function plan(file: string, hostRoot: string, recovery: string | null = null) {
  const env = await tempEnv(hostRoot);
  let loaded = await loadPlugins(env, []);
  const seeds: Record<string, Json> = {
    "session.user_vm_request": { file, text: await Deno.readTextFile(file) },
  };
  if (recovery) {
    const stage = loaded.producers.get("session.macos_recovery");
    loaded = {
      ...loaded,
      stages: new Map([...loaded.stages].filter(([id]) => id !== stage)),
      producers: new Map([...loaded.producers].filter(([, id]) => id !== stage)),
    };
    seeds["session.macos_recovery"] = { path: recovery, sizeBytes: 3 * 1024 ** 3 };
  }
  const { result } = await runStages({
    env,
    loaded,
    ui: recordingUi(),
    dryRun: true,
    targets: ["qemu-setup:generate-libvirt-xml"],
    seeds,
  });
  assert(result.ok, result.error?.message);
  const def = result.context["session.vm_definition"] as unknown as VmDefinition;
  return { def, script: startScript(def), xml: result.context["session.libvirt_xml"] as string };
}

const SECURE =
  `# A Windows 11 guest: UEFI with Secure Boot, a TPM 2.0, VNC, a SATA disk and a fixed MAC.
name = "secure-win"
guest = "windows"

[cpu]
cores = 2
threads = 2

[memory]
size = "6G"

[[disks]]
name = "system"
size = "64G"
bus = "sata"

[[disks]]
name = "data"
size = "8G"
format = "raw"
bus = "virtio"

[[network]]
type = "bridge"
bridge = "br0"
model = "e1000e"
mac = "52:54:00:AB:CD:EF"

[display]
type = "vnc"
port = 3

[firmware]
type = "uefi"
secure_boot = true

[tpm]
enabled = true
`;

const CUSTOM_CPU = `# A named CPU model with features, direct kernel boot and a tap device.
name = "custom-cpu"
guest = "linux"

[cpu]
model = "Skylake-Client"
features = ["-hle", "-rtm", "+invtsc"]
sockets = 2
cores = 2

[memory]
size = "1536M"

[boot]
kernel = "vmlinuz"
initrd = "initrd.img"
cmdline = "console=ttyS0 root=/dev/vda"

[[disks]]
name = "root"
size = "4G"

[[network]]
type = "tap"
interface = "tap0"
model = "virtio"

[qemu]
extra_args = ["-device", "virtio-balloon-pci", "-global", "kvm-pit.lost_tick_policy=discard"]
`;

const PC = `# The pc machine: IDE disks on its IDE buses, SATA disks on an AHCI controller, BIOS.
name = "old-pc"
guest = "other"
machine = "pc"

[[disks]]
name = "a"
size = "1G"
bus = "ide"

[[disks]]
name = "b"
size = "1G"
bus = "sata"

[[disks]]
name = "c"
size = "1G"
bus = "ide"

[[disks]]
name = "cd"
path = "debian-12-amd64-netinst.iso"
format = "raw"
cdrom = true

[[disks]]
name = "d"
size = "1G"
bus = "ide"

[[network]]
type = "user"
model = "rtl8139"

[display]
type = "vnc"
`;

const EXAMPLES = ["headless-linux", "desktop-spice", "lvm", "passthrough"];

Deno.test("start.sh and vm.xml describe the same machine for every example, macOS, Secure Boot and TCG", async (t) => {
  const work = await Deno.makeTempDir({ prefix: "gini-parity-" });
  // The installer ISO the pc-machine VM file names (the examples name catalogue images).
  await sh(
    "qemu-img",
    "create",
    "-q",
    "-f",
    "raw",
    join(work, "debian-12-amd64-netinst.iso"),
    "1M",
  );
  await Deno.writeTextFile(join(work, "vmlinuz"), "kernel\n");
  await Deno.writeTextFile(join(work, "initrd.img"), "initrd\n");
  const vmFile = async (name: string, text: string) => {
    const file = join(work, `${name}.toml`);
    await Deno.writeTextFile(file, text);
    return file;
  };
  const example = (name: string) =>
    Deno.readTextFile(join(REPO, "examples", `${name}.toml`)).then((t) => vmFile(name, t));
  const macos = (release: string) =>
    vmFile(
      `macos-${release}`,
      macosVmToml({
        name: `mac-${release}`,
        release: findRelease(release)!,
        cores: 4,
        memory: "8G",
        disk: "64G",
      }),
    );
  const intel = join(HOSTS, "intel-nvidia");
  const noKvm = await withoutKvm("intel-nvidia");
  const recovery = join(work, "BaseSystem.img");
  const cases: { name: string; file: () => Promise<string>; host: string; macos?: boolean }[] = [
    ...EXAMPLES.map((name) => ({ name, file: () => example(name), host: intel })),
    {
      name: "macOS Sonoma on an AMD host",
      file: () => macos("sonoma"),
      host: join(HOSTS, "amd-amd"),
      macos: true,
    },
    {
      name: "macOS High Sierra (SATA disks, vmxnet3)",
      file: () => macos("high-sierra"),
      host: intel,
      macos: true,
    },
    { name: "UEFI with Secure Boot and a TPM", file: () => vmFile("secure", SECURE), host: intel },
    {
      name: "a named CPU model with kernel boot",
      file: () => vmFile("custom", CUSTOM_CPU),
      host: intel,
    },
    { name: "the pc machine with IDE and SATA disks", file: () => vmFile("pc", PC), host: intel },
    ...EXAMPLES.map((name) => ({
      name: `${name} without KVM`,
      file: () => example(name),
      host: noKvm,
    })),
    { name: "macOS Sonoma without KVM", file: () => macos("sonoma"), host: noKvm, macos: true },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const { def, script, xml } = await plan(await c.file(), c.host, c.macos ? recovery : null);
      const xmlFile = join(work, `${def.name}.xml`);
      await Deno.writeTextFile(xmlFile, xml);
      const check = await new Deno.Command("virt-xml-validate", {
        args: [xmlFile, "domain"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const decode = (b: Uint8Array) => new TextDecoder().decode(b);
      assertEquals(check.code, 0, decode(check.stderr) + decode(check.stdout));
      const qemu = fromArgv(def.argv, script);
      const libvirt = fromXml(xml);
      // The readers saw the machine, not an empty record on both sides.
      assertEquals(qemu.identity, { name: def.name, uuid: def.uuid });
      assertEquals(qemu.disks.length, def.disks.length, "start.sh: disks");
      assertEquals(qemu.nics.length, def.nics.length, "start.sh: NICs");
      const fields = differing(libvirt, qemu);
      const pick = (m: Machine) => Object.fromEntries(fields.map((f) => [f, m[f]]));
      assertEquals(
        pick(libvirt),
        pick(qemu),
        `vm.xml (actual) and start.sh (expected) differ in: ${fields.join(", ")}`,
      );
    });
  }
});

Deno.test("the comparison names the field in which vm.xml and start.sh differ", async (t) => {
  const argv = [
    "qemu-system-x86_64",
    "-name",
    "x,process=gini-x",
    "-nodefaults",
    "-machine",
    "q35,accel=tcg",
    "-cpu",
    "max",
    "-smp",
    "2,sockets=1,cores=2,threads=1",
    "-m",
    "1024M",
    "-blockdev",
    "driver=file,node-name=disk0-file,filename=/vm/a.qcow2",
    "-blockdev",
    "driver=qcow2,node-name=disk0,file=disk0-file",
    "-device",
    "ide-hd,drive=disk0,bus=ide.0,bootindex=1",
    "-netdev",
    "user,id=net0",
    "-device",
    "e1000e,netdev=net0,mac=52:54:00:00:00:01",
    "-display",
    "none",
    "-vga",
    "none",
  ];
  const xml = `<domain type="qemu">
  <name>x</name>
  <memory unit="KiB">1048576</memory>
  <vcpu placement="static">2</vcpu>
  <os>
    <type arch="x86_64" machine="q35">hvm</type>
  </os>
  <cpu mode="maximum" check="none" migratable="on">
    <topology sockets="1" dies="1" cores="2" threads="1"/>
  </cpu>
  <devices>
    <disk type="file" device="disk">
      <driver name="qemu" type="qcow2"/>
      <source file="/vm/a.qcow2"/>
      <target dev="sda" bus="sata"/>
      <boot order="1"/>
    </disk>
    <controller type="usb" model="none"/>
    <interface type="user">
      <mac address="52:54:00:00:00:01"/>
      <model type="e1000e"/>
    </interface>
    <video>
      <model type="none"/>
    </video>
    <memballoon model="none"/>
  </devices>
</domain>
`;
  assertEquals(differing(fromXml(xml), fromArgv(argv)), []);
  const cases: [string, string[], string, (keyof Machine)[]][] = [
    [
      "qemu64 for -cpu max",
      argv,
      xml.replace(/<cpu mode="maximum"[^>]*>/, '<cpu mode="custom"><model>qemu64</model>'),
      ["cpu"],
    ],
    ["no -nodefaults", argv.filter((a) => a !== "-nodefaults"), xml, ["machine"]],
    ["another SATA port", argv, xml.replace('dev="sda"', 'dev="sdb"'), ["disks"]],
    ["another MAC", argv, xml.replace(":01", ":02"), ["nics"]],
    [
      "passt for QEMU's user network",
      argv,
      xml.replace(
        '<model type="e1000e"/>',
        '<model type="e1000e"/>\n      <backend type="passt"/>',
      ),
      ["nics"],
    ],
    [
      "libvirt's own balloon and USB controller",
      argv,
      xml.replace(/ *<(memballoon|controller) [^>]*>\n/g, ""),
      ["usb", "balloon"],
    ],
  ];
  for (const [name, qemu, libvirt, fields] of cases) {
    await t.step(name, () => assertEquals(differing(fromXml(libvirt), fromArgv(qemu)), fields));
  }
});
