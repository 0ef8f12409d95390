import { assertEquals, assertThrows } from "../../tests/_assert.ts";
import type { VmDefinition, VmDisk, VmNic } from "../qemu_setup/contracts.ts";
import { type Attached, parseRule, withAttached } from "./_attached.ts";

const dir = "/d/vms/box";
const disk = (id: string, path: string, port?: string): VmDisk => ({
  id,
  name: id,
  backend: "file",
  path,
  format: "qcow2",
  sizeBytes: 1 << 30,
  bus: "virtio",
  backing: null,
  create: true,
  volumeGroup: null,
  logicalVolume: null,
  bootIndex: null,
  readonly: false,
  cdrom: false,
  ...(port ? { hotplugPort: port } : {}),
});
const nic = (id: string, forwards: VmNic["forwards"], port?: string): VmNic => ({
  id,
  type: "user",
  model: "virtio",
  device: "virtio-net-pci",
  mac: "52:54:00:00:00:01",
  bridge: null,
  interface: null,
  forwards,
  ...(port ? { hotplugPort: port } : {}),
});
const ssh = { protocol: "tcp" as const, address: "127.0.0.1", host: 2222, guest: 22 };
const web = { protocol: "tcp" as const, address: "127.0.0.1", host: 8080, guest: 80 };

/** What a VM file makes: a root disk and a NIC forwarding ssh. */
const fromFile = {
  paths: { dir },
  disks: [disk("disk0", `${dir}/root.qcow2`)],
  nics: [nic("net0", [ssh])],
  usb: [{ vendor: "046d", product: "c52b" }],
} as unknown as Omit<VmDefinition, "argv">;

const none: Attached = { disks: [], nics: [], usb: [], forwards: { added: [], removed: [] } };

Deno.test("withAttached() adds to what a VM file makes what was attached by command", async (t) => {
  await t.step("nothing attached: no patch", () => {
    assertEquals(withAttached(fromFile, none), null);
  });
  await t.step("a disk in the VM's folder and a NIC come back; one outside is left out", () => {
    const data = disk("data", `${dir}/data.qcow2`, "hotplug0");
    const outside = disk("ext", "/srv/ext.qcow2", "hotplug1");
    const hotnic = nic("hotnic0", [web], "hotplug2");
    const merged = withAttached(fromFile, { ...none, disks: [data, outside], nics: [hotnic] })!;
    assertEquals(merged.disks.map((d) => d.id), ["disk0", "data"]);
    assertEquals(merged.skipped.map((d) => d.id), ["ext"]);
    assertEquals(merged.nics.map((n) => [n.id, n.forwards]), [["net0", [ssh]], [
      "hotnic0",
      [web],
    ]]);
  });
  await t.step("a disk the file names since (same image) is the file's", () => {
    const named = { ...fromFile, disks: [...fromFile.disks, disk("disk1", `${dir}/data.qcow2`)] };
    const attached = { ...none, disks: [disk("data", `${dir}/data.qcow2`, "hotplug0")] };
    assertEquals(withAttached(named, attached), null);
  });
  await t.step("a host USB device comes back, unless the file names it since", () => {
    const key = { vendor: "1050", product: "0407", id: "yubikey" };
    assertEquals(withAttached(fromFile, { ...none, usb: [key] })!.usb, [...fromFile.usb, key]);
    const named = { ...fromFile, usb: [...fromFile.usb, { vendor: "1050", product: "0407" }] };
    assertEquals(withAttached(named, { ...none, usb: [key] }), null);
  });
  await t.step("forwards added and removed by command apply to the file's NIC", () => {
    const merged = withAttached(fromFile, {
      ...none,
      forwards: { added: [{ nic: "net0", ...web }], removed: [{ nic: "net0", ...ssh }] },
    })!;
    assertEquals(merged.nics[0]!.forwards, [web]);
  });
});

Deno.test("parseRule() reads tcp|udp:[ADDRESS:]HOST:GUEST and names the expected form otherwise", () => {
  assertEquals(parseRule("tcp:8080:80"), {
    protocol: "tcp",
    address: "127.0.0.1",
    ...{ host: 8080, guest: 80 },
  });
  assertEquals(parseRule("udp:0.0.0.0:5353:53"), {
    protocol: "udp",
    address: "0.0.0.0",
    host: 5353,
    guest: 53,
  });
  for (const bad of ["8080:80", "tcp:8080", "sctp:1:2", "tcp:70000:80", "tcp:0:80", null]) {
    assertThrows(() => parseRule(bad), Error, "expected tcp|udp:HOST:GUEST");
  }
});
