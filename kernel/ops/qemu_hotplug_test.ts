import { parseArgs } from "./types.ts";
import { assert, assertEquals } from "../../tests/_assert.ts";
import { qemuAttach, qemuDetach } from "./qemu_hotplug.ts";
import { hostfwdCommand, qemuForward } from "./qemu_forward.ts";

const disk = {
  name: "vm",
  socket: "/d/vm/qmp.sock",
  id: "data",
  path: "/d/vm/data.qcow2",
  blockdevs: [
    { driver: "file", "node-name": "data-file", filename: "/d/vm/data.qcow2", aio: "threads" },
    { driver: "qcow2", "node-name": "data", file: "data-file" },
  ],
  device: { driver: "virtio-blk-pci", id: "data", drive: "data", bus: "hotplug0" },
};
const nic = {
  name: "vm",
  socket: "/d/vm/qmp.sock",
  id: "hotnic0",
  netdev: { type: "user", id: "hotnic0", hostfwd: [{ str: "tcp:127.0.0.1:8080-:80" }] },
  device: { driver: "virtio-net-pci", id: "hotnic0", netdev: "hotnic0", mac: "52:54:00:aa:bb:cc" },
};

const usb = {
  name: "vm",
  socket: "/d/vm/qmp.sock",
  id: "key",
  device: { driver: "usb-host", id: "key", bus: "xhci.0", vendorid: 0x1050, productid: 0x0407 },
  controller: { driver: "qemu-xhci", id: "xhci", bus: "hotplug1" },
};

const parses = (args: unknown) => qemuAttach.schema.safeParse(args).success;

Deno.test("qemu.attach takes a disk whose nodes open only its checked path, and a user-network NIC", async (t) => {
  await t.step("a disk, a NIC and a host USB device as deploy builds them", () => {
    assert(parses(disk));
    assert(parses(nic));
    assert(parses(usb));
  });
  const refused: [string, unknown][] = [
    ["a protocol node opening another file than path", {
      ...disk,
      blockdevs: [{ ...disk.blockdevs[0], filename: "/etc/shadow" }, disk.blockdevs[1]],
    }],
    ["a format node with a backing file of its own", {
      ...disk,
      blockdevs: [disk.blockdevs[0], { ...disk.blockdevs[1], backing: "x" }],
    }],
    ["a device of another id", { ...disk, device: { ...disk.device, id: "other" } }],
    ["both a disk and a NIC", { ...disk, netdev: nic.netdev }],
    ["a user network that runs a command (guestfwd)", {
      ...nic,
      netdev: { ...nic.netdev, guestfwd: [{ str: "tcp:10.0.2.1:1-cmd:sh" }] },
    }],
    ["a user network sharing a folder (smb)", { ...nic, netdev: { ...nic.netdev, smb: "/" } }],
    ["a tap network", { ...nic, netdev: { ...nic.netdev, type: "tap" } }],
    ["an id with a comma", { ...nic, id: "a,b" }],
    ["a usb-host without its IDs", { ...usb, device: { ...usb.device, vendorid: undefined } }],
    ["a usb-host off the xHCI bus", { ...usb, device: { ...usb.device, bus: "hotplug0" } }],
    ["a controller with a disk", { ...disk, controller: usb.controller }],
  ];
  for (const [what, args] of refused) {
    await t.step(`refused: ${what}`, () => assertEquals(parses(args), false));
  }
});

Deno.test("qemu.attach needs the socket and the image (read or written), and is undone by qemu.detach", () => {
  const args = parseArgs(qemuAttach, disk);
  const needs = qemuAttach.permission(args);
  assertEquals(needs.slice(0, 2), [
    { grant: "write", path: "/d/vm/qmp.sock" },
    { grant: "write", path: "/d/vm/data.qcow2" },
  ]);
  const readOnly = parseArgs(qemuAttach, {
    ...disk,
    blockdevs: [disk.blockdevs[0], { ...disk.blockdevs[1], "read-only": true }],
  });
  assertEquals(qemuAttach.permission(readOnly)[1], { grant: "read", path: "/d/vm/data.qcow2" });
  const [undo] = qemuAttach.inverse(args, null)!;
  assertEquals(undo!.kind, "qemu.detach");
  assertEquals((undo!.args as { ifRunning: boolean }).ifRunning, true);
  assertEquals(qemuDetach.inverse(args, null)![0]!.kind, "qemu.attach");
  // A host USB device is for core plugins: the broker lets only them pass what it cannot check.
  const usbNeeds = qemuAttach.permission(parseArgs(qemuAttach, usb));
  assert(usbNeeds.some((n) => n.grant === "run" && n.program.includes("usb-host")));
});

Deno.test("qemu.forward builds HMP's hostfwd_add and hostfwd_remove, each the other's inverse", () => {
  const add = parseArgs(qemuForward, {
    name: "vm",
    socket: "/d/vm/qmp.sock",
    action: "add",
    netdev: "net0",
    protocol: "udp",
    address: "127.0.0.1",
    host: 5353,
    guest: 53,
  });
  assertEquals(hostfwdCommand(add), "hostfwd_add net0 udp:127.0.0.1:5353-:53");
  const undo = qemuForward.inverse(add, null)![0]!.args as typeof add;
  assertEquals(hostfwdCommand(undo), "hostfwd_remove net0 udp:127.0.0.1:5353");
  // Nothing but a word reaches the monitor's command line.
  assertEquals(
    qemuForward.schema.safeParse({ ...add, address: "127.0.0.1 -:22\nquit" }).success,
    false,
  );
});
