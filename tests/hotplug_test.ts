/**
 * `gini attach`, `gini detach` and `gini forward` on a real QEMU under TCG with the tiny guest
 * (booted with gini.tick, it prints its block devices every second): a disk plugged into a spare
 * PCIe root port appears in the guest's /sys/block and leaves it when detached; a forward added
 * at runtime binds its host port and frees it when removed; a crash part-way is rolled back by
 * `gini recover`; what was attached is kept across a restart and by `gini up FILE`; a stopped VM
 * changes in its definition only, until its four spare ports are used; a libvirt VM changes
 * through `virsh attach-device/detach-device --live --config` on the real libvirtd.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { qmpCommand } from "../kernel/host/qmp.ts";
import { runGini, sh, tinyGuest, tinyVmHome } from "./_helpers.ts";

const gini = (root: string, ...args: string[]) => runGini(root, args);

type Hotplug = {
  action: string;
  verb: string;
  live: boolean;
  device: { id: string; port: string | null; path: string | null; created: boolean } | null;
  forwards: { protocol: string; host: number; guest: number; nic: string; from: string }[];
};

async function json<T>(root: string, ...args: string[]): Promise<T> {
  const out = await gini(root, ...args, "--json");
  assertEquals(out.code, 0, `gini ${args.join(" ")}: ${out.stderr}`);
  return JSON.parse(out.stdout) as T;
}

/** The tiny VM with a 64 MiB root disk and a user network, its guest printing /sys/block. */
function tinyVm() {
  return tinyVmHome(`[[disks]]\nname = "root"\nsize = "64M"\n`, "gini.tick");
}

/**
 * Waits until the guest prints its block devices as `blocks` (" vda vdb") after `from` bytes of
 * its serial log; gives the log's length then, for the next wait.
 */
async function guestBlocks(dir: string, from: number, blocks: string, seconds = 90) {
  const log = join(dir, "serial.log");
  const deadline = Date.now() + seconds * 1000;
  let text = "";
  while (Date.now() < deadline) {
    text = await Deno.readTextFile(log).catch(() => "");
    const lines = text.slice(from).split(/\r?\n/).filter((l) => l.startsWith("tick "));
    if (lines.some((l) => l.endsWith(`blocks:${blocks}`))) return text.length;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`The guest did not list "${blocks}" in ${seconds} s:\n${text.slice(-1500)}`);
}

const qmp = <T>(dir: string, command: string, args?: Record<string, unknown>) =>
  qmpCommand(join(dir, "qmp.sock"), command, args) as Promise<T>;

/** The qdev ids of the block devices QEMU has (a virtio disk's is its device's). */
async function blockDevices(dir: string): Promise<string[]> {
  const blocks = await qmp<{ qdev?: string }[]>(dir, "query-block");
  return blocks.map((b) => b.qdev ?? "").map((q) =>
    q.replace(/^\/machine\/peripheral\//, "").replace(/\/virtio-backend$/, "")
  );
}

type PciDevice = { qdev_id: string; pci_bridge?: { devices?: PciDevice[] } };

/** The ids of the devices behind each root port, by port id. */
async function portDevices(dir: string): Promise<Record<string, string[]>> {
  const buses = await qmp<{ devices: PciDevice[] }[]>(dir, "query-pci");
  const out: Record<string, string[]> = {};
  for (const d of buses[0]!.devices) {
    if (d.qdev_id.startsWith("hotplug")) {
      out[d.qdev_id] = (d.pci_bridge?.devices ?? []).map((c) => c.qdev_id);
    }
  }
  return out;
}

/** Whether something accepts a TCP connection on 127.0.0.1:port (slirp does for a forward). */
async function accepts(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused) return false;
    throw error;
  }
}

/** A TCP port nothing listens on now. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

const events = async (root: string) =>
  (await json<{ records: { event: string }[] }>(root, "history", "tiny")).records.map((r) =>
    r.event
  );

Deno.test("a running VM: a disk attached appears in the guest and leaves it when detached; forwards bind and free their port; a crash part-way is rolled back; a restart and gini up keep what was attached", async (t) => {
  const { root, dir } = await tinyVm();
  const up = await gini(root, "up", "tiny.toml");
  assertEquals(up.code, 0, up.stderr);
  try {
    let seen = await guestBlocks(dir, 0, " vda");
    const definition = () => Deno.readTextFile(join(dir, "vm.json"));

    await t.step("--dry-run shows the ops and changes nothing", async () => {
      const before = await definition();
      const plan = await gini(root, "attach", "tiny", "disk", "--size", "32M", "--dry-run");
      assertEquals(plan.code, 0, plan.stderr);
      assertStringIncludes(plan.stdout, `Would create qcow2 disk "${join(dir, "hotdisk0.qcow2")}"`);
      assertStringIncludes(
        plan.stdout,
        `Would plug disk "hotdisk0" (${
          join(dir, "hotdisk0.qcow2")
        }) into running VM "tiny" on "hotplug0"`,
      );
      assertStringIncludes(plan.stdout, `Would record "attached"`);
      assertEquals(await definition(), before);
      assertEquals(await Deno.stat(join(dir, "hotdisk0.qcow2")).then(() => 1, () => 0), 0);
    });

    await t.step(
      "attach: the guest lists the new disk; QEMU has it on the first spare port",
      async () => {
        const out = await gini(root, "attach", "tiny", "disk", "--size", "32M", "--id", "data");
        assertEquals(out.code, 0, out.stderr);
        assertStringIncludes(
          out.stdout,
          `VM "tiny": attached disk "data" (${
            join(dir, "data.qcow2")
          }, qcow2 32 MiB) on hotplug0, in the running VM and its definition`,
        );
        seen = await guestBlocks(dir, seen, " vda vdb");
        assertEquals(await blockDevices(dir), ["disk0", "data"]);
        assertEquals((await portDevices(dir)).hotplug0, ["data"]);
        const def = JSON.parse(await definition());
        assertEquals(def.disks.map((d: { id: string }) => d.id), ["disk0", "data"]);
        assertEquals(def.disks[1].hotplugPort, "hotplug0");
        assertStringIncludes(
          await Deno.readTextFile(join(dir, "start.sh")),
          "-device virtio-blk-pci,drive=data,bus=hotplug0,id=data",
        );
      },
    );

    await t.step("refusals name what is wrong and change nothing", async () => {
      const before = await definition();
      const dup = await gini(root, "attach", "tiny", "disk", "--size", "8M", "--id", "data");
      assertEquals(dup.code, 2, dup.stderr);
      assertStringIncludes(
        dup.stderr,
        'Cannot attach disk "data" to VM "tiny": it has a device "data" already',
      );
      const unknown = await gini(root, "attach", "nope", "nic");
      assertEquals(unknown.code, 2);
      assertStringIncludes(unknown.stderr, 'Cannot find VM "nope"');
      const spec = await gini(root, "forward", "tiny", "add", "8080:80");
      assertEquals(spec.code, 2);
      assertStringIncludes(
        spec.stderr,
        'Cannot use "8080:80" as a forward (RULE): expected tcp|udp:HOST:GUEST',
      );
      const fromFile = await gini(root, "detach", "tiny", "disk0", "--yes");
      assertEquals(fromFile.code, 2);
      assertStringIncludes(
        fromFile.stderr,
        'Cannot detach "disk0" from VM "tiny": it comes from the VM file',
      );
      const json = await gini(root, "attach", "tiny", "disk", "--id", "x", "--json");
      assertEquals(JSON.parse(json.stdout).error.code, "USAGE");
      assertEquals(await definition(), before);
    });

    const port = freePort();
    await t.step("forward add binds the host port at once, remove frees it", async () => {
      assertEquals(await accepts(port), false, "nothing listens before");
      const added = await json<Hotplug>(root, "forward", "tiny", "add", `tcp:${port}:80`);
      assertEquals(added.live, true);
      assertEquals(await accepts(port), true, "QEMU's user network accepts on the forward");
      const list = await gini(root, "forward", "tiny", "list");
      assertMatch(list.stdout, new RegExp(`tcp +127\\.0\\.0\\.1:${port} +80 +net0 +command`));
      assertStringIncludes(
        await Deno.readTextFile(join(dir, "start.sh")),
        `hostfwd=tcp:127.0.0.1:${port}-:80`,
      );
      const removed = await gini(root, "forward", "tiny", "remove", `tcp:${port}:80`);
      assertEquals(removed.code, 0, removed.stderr);
      assertEquals(await accepts(port), false, "the port is free again");
      assertEquals((await json<Hotplug>(root, "forward", "tiny", "list")).forwards, []);
    });

    await t.step(
      "a crash after the device is plugged in: recover --rollback unplugs it and removes its image",
      async () => {
        const before = await definition();
        const crashed = await runGini(root, [
          "attach",
          "tiny",
          "disk",
          "--size",
          "16M",
          "--id",
          "crash",
        ], {
          GINI_CRASH_AFTER_OP: "2",
        });
        assertEquals(crashed.code, 137, crashed.stderr);
        assertEquals(
          await blockDevices(dir),
          ["disk0", "data", "crash"],
          "plugged in when it died",
        );
        seen = await guestBlocks(dir, seen, " vda vdb vdc");
        const rolled = await gini(root, "recover", "--rollback");
        assertEquals(rolled.code, 0, rolled.stderr + rolled.stdout);
        assertEquals(await blockDevices(dir), ["disk0", "data"]);
        seen = await guestBlocks(dir, seen, " vda vdb");
        assertEquals(await Deno.stat(join(dir, "crash.qcow2")).then(() => 1, () => 0), 0);
        assertEquals(await definition(), before);
      },
    );

    await t.step("detach: the guest releases the disk; QEMU has no node of it left", async () => {
      const out = await gini(root, "detach", "tiny", "data", "--yes");
      assertEquals(out.code, 0, out.stderr);
      assertStringIncludes(out.stdout, `VM "tiny": detached disk "data"`);
      assertStringIncludes(out.stderr, `Its image ${join(dir, "data.qcow2")} is kept`);
      seen = await guestBlocks(dir, seen, " vda");
      assertEquals(await blockDevices(dir), ["disk0"]);
      const nodes = await qmp<{ "node-name": string }[]>(dir, "query-named-block-nodes");
      assertEquals(nodes.filter((n) => n["node-name"].startsWith("data")), []);
      assertEquals((await portDevices(dir)).hotplug0, []);
      const def = JSON.parse(await definition());
      assertEquals(def.disks.map((d: { id: string }) => d.id), ["disk0"]);
    });

    await t.step(
      "a restart and gini up FILE keep a disk and a forward attached by command",
      async () => {
        const out = await json<Hotplug>(
          root,
          "attach",
          "tiny",
          "disk",
          "--file",
          join(dir, "data.qcow2"),
          "--id",
          "keep",
        );
        assertEquals([out.device!.id, out.device!.created], ["keep", false]);
        seen = await guestBlocks(dir, seen, " vda vdb");
        assertEquals((await gini(root, "forward", "tiny", "add", `tcp:${port}:22`)).code, 0);
        assertEquals((await gini(root, "kill", "tiny")).code, 0);
        assertEquals(await accepts(port), false);
        // The log is appended to: the new boot's lines are those after the old one's.
        const before = (await Deno.readTextFile(join(dir, "serial.log"))).length;
        const start = await gini(root, "start", "tiny");
        assertEquals(start.code, 0, start.stderr);
        await guestBlocks(dir, before, " vda vdb");
        assertEquals((await portDevices(dir)).hotplug0, ["keep"]);
        assertEquals(await accepts(port), true, "the forward is back");
        // The VM file names neither: up converges to the file and what was attached by command.
        const again = await gini(root, "up", "tiny.toml");
        assertEquals(again.code, 0, again.stderr);
        assertStringIncludes(
          again.stdout,
          'VM "tiny" is running and its file is unchanged: nothing to do',
        );
      },
    );

    await t.step(
      "a host USB device: a VM without a USB controller gets a qemu-xhci on a spare port first",
      async () => {
        const peripherals = async () =>
          (await qmp<{ name: string }[]>(dir, "qom-list", { path: "/machine/peripheral" }))
            .map((p) => p.name);
        assertEquals((await peripherals()).includes("xhci"), false);
        const out = await gini(root, "attach", "tiny", "usb", "--host", "DEAD:beef", "--id", "key");
        assertEquals(out.code, 0, out.stderr);
        assertStringIncludes(out.stdout, 'VM "tiny": attached USB device "key" (dead:beef)');
        assert((await peripherals()).includes("key"));
        assertEquals((await portDevices(dir)).hotplug1, ["xhci"]);
        assertStringIncludes(
          await Deno.readTextFile(join(dir, "start.sh")),
          "-device usb-host,bus=xhci.0,vendorid=0xdead,productid=0xbeef,id=key",
        );
        const bad = await gini(root, "attach", "tiny", "usb", "--host", "mouse");
        assertEquals(bad.code, 2);
        assertStringIncludes(bad.stderr, "expected --host VENDOR:PRODUCT, like --host 046d:c52b");
        const gone = await gini(root, "detach", "tiny", "key", "--yes");
        assertEquals(gone.code, 0, gone.stderr);
        assertEquals((await peripherals()).includes("key"), false);
        assertEquals(JSON.parse(await Deno.readTextFile(join(dir, "vm.json"))).usb, []);
      },
    );

    await t.step("history records each change", async () => {
      const all = await events(root);
      assertEquals(all.filter((e) => e !== "undone" && e !== "started" && e !== "killed"), [
        "deployed",
        "attached",
        "forwarded",
        "unforwarded",
        "detached",
        "attached",
        "forwarded",
        "attached",
        "detached",
      ]);
    });
  } finally {
    await gini(root, "kill", "tiny");
  }
});

Deno.test("a stopped VM changes in its definition only, until its four spare ports are used; QEMU starts with what was attached; an attach QEMU refuses after its image was made is undone; a port holding a device plugged by hand is not spare", async () => {
  const { root, dir } = await tinyVm();
  const up = await gini(root, "up", "tiny.toml", "--no-start");
  assertEquals(up.code, 0, up.stderr);
  const nic = await json<Hotplug>(root, "attach", "tiny", "nic");
  assertEquals([nic.live, nic.device!.id, nic.device!.port], [false, "hotnic0", "hotplug0"]);
  for (const [i, id] of ["a", "b", "c"].entries()) {
    const disk = await json<Hotplug>(root, "attach", "tiny", "disk", "--size", "8M", "--id", id);
    assertEquals(disk.device!.port, `hotplug${i + 1}`);
  }
  const full = await gini(root, "attach", "tiny", "disk", "--size", "8M");
  assertEquals(full.code, 2);
  assertStringIncludes(
    full.stderr,
    'Cannot attach a device to VM "tiny": no spare PCIe port is left',
  );
  assertStringIncludes(full.stderr, "gini detach tiny ID");
  const usb = await json<Hotplug>(root, "attach", "tiny", "usb", "--host", "1d50:6089");
  assertEquals([usb.live, usb.device!.id], [false, "hotusb0"]);
  const forward = await gini(root, "forward", "tiny", "add", "udp:15353:53", "--nic", "hotnic0");
  assertEquals(forward.code, 0, forward.stderr);
  assertStringIncludes(forward.stdout, "in its definition (the next start has it)");

  // The VM file is unchanged and so is the VM: gini plan shows no difference.
  const plan = await gini(root, "plan", "tiny.toml");
  assertEquals(plan.code, 0, plan.stderr);
  assertStringIncludes(plan.stdout, 'VM "tiny" exists and its file is unchanged');

  const detached = await gini(root, "detach", "tiny", "b", "--yes");
  assertEquals(detached.code, 0, detached.stderr);
  const start = await gini(root, "start", "tiny");
  assertEquals(start.code, 0, start.stderr);
  try {
    // query-pci lists what is behind a root port once the firmware has numbered its bus: wait
    // until the guest's kernel has seen the disks (under load that can take a while).
    await guestBlocks(dir, 0, " vda vdb vdc");
    assertEquals(await portDevices(dir), {
      hotplug0: ["hotnic0"],
      hotplug1: ["a"],
      hotplug2: [],
      hotplug3: ["c"],
    });
    assertEquals(await blockDevices(dir), ["disk0", "a", "c"]);
    const peripherals = await qmp<{ name: string }[]>(dir, "qom-list", {
      path: "/machine/peripheral",
    });
    assert(peripherals.some((p) => p.name === "hotusb0"), "the USB device attached while stopped");
    const usernet = await qmp<string>(dir, "human-monitor-command", {
      "command-line": "info usernet",
    });
    assertMatch(usernet, /UDP\[HOST_FORWARD\][^\n]*15353/);
    assert((await events(root)).filter((e) => e === "attached").length === 5);

    // A device plugged by hand (not by Gini) has the id the next attach takes: QEMU's id check
    // refuses it after its image was made, and the run is undone (the image removed).
    await qmp(dir, "device_add", {
      driver: "virtserialport",
      id: "late",
      bus: "agent-serial.0",
      name: "by-hand",
    });
    const definition = await Deno.readTextFile(join(dir, "vm.json"));
    const failed = await gini(root, "attach", "tiny", "disk", "--size", "8M", "--id", "late");
    assertEquals(failed.code, 1, failed.stdout);
    assertStringIncludes(failed.stderr, "The run failed; undoing the 1 change(s) it made");
    assertStringIncludes(failed.stderr, 'to VM "tiny": it has a device "late"');
    assertEquals(await Deno.stat(join(dir, "late.qcow2")).then(() => 1, () => 0), 0);
    assertEquals(await blockDevices(dir), ["disk0", "a", "c"]);
    assertEquals(await Deno.readTextFile(join(dir, "vm.json")), definition);
    // A port holding a device plugged by hand is no spare port.
    await qmp(dir, "device_add", { driver: "virtio-rng-pci", id: "squatter", bus: "hotplug2" });
    const full = await gini(root, "attach", "tiny", "nic");
    assertEquals(full.code, 2, full.stdout);
    assertStringIncludes(full.stderr, "hotplug2: a device Gini did not plug");
  } finally {
    await gini(root, "kill", "tiny");
  }
});

/** libvirtd and virtlogd, started when no init system did (containers, CI), as vm_test does. */
async function ensureLibvirtd(): Promise<void> {
  const up = async () =>
    (await new Deno.Command("virsh", {
      args: ["-c", "qemu:///system", "version"],
      stdout: "null",
      stderr: "null",
    }).output()).success;
  if (await up()) return;
  await sh("libvirtd", "-d");
  await sh("virtlogd", "-d");
  for (let i = 0; i < 40; i++) {
    if (await up()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error("libvirtd did not start");
}

Deno.test("a libvirt VM: attach and detach go through virsh --live --config; the guest and libvirt's definition both see them", async () => {
  await ensureLibvirtd();
  const guest = await tinyGuest();
  // libvirt runs QEMU as its own user: everything it opens must be reachable by that user.
  const root = await Deno.makeTempDir({ prefix: "gini-libvirt-hotplug-" });
  await Deno.chmod(root, 0o755);
  await Deno.copyFile(join(guest, "vmlinuz"), join(root, "vmlinuz"));
  await Deno.copyFile(join(guest, "initrd.img"), join(root, "initrd.img"));
  const name = `gini-hotplug-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(
    join(root, "vm.toml"),
    `name = "${name}"\n[memory]\nsize = "256M"\n[[disks]]\nname = "root"\nsize = "16M"\n[boot]\nkernel = "vmlinuz"\ninitrd = "initrd.img"\ncmdline = "console=ttyS0 panic=-1 gini.tick"\n[qemu]\nbackend = "libvirt"\nlibvirt_uri = "qemu:///system"\n`,
  );
  const data = ["--data-dir", join(root, "data")];
  const dir = join(root, "data/vms", name);
  const virsh = async (...args: string[]) =>
    new TextDecoder().decode(
      (await new Deno.Command("virsh", {
        args: ["-c", "qemu:///system", ...args],
        stdout: "piped",
        stderr: "null",
      }).output()).stdout,
    );
  /** The disks' targets libvirt lists, live or in its persistent definition. */
  const targets = async (...flags: string[]) =>
    (await virsh("domblklist", name, ...flags)).split("\n").slice(2).map((l) => l.trim())
      .filter(Boolean).map((l) => l.split(/\s+/)[0]);
  try {
    const up = await gini(root, ...data, "up", "vm.toml");
    assertEquals(up.code, 0, up.stderr);
    let seen = await guestBlocks(dir, 0, " vda", 120);
    const attached = await json<Hotplug>(
      root,
      ...data,
      "attach",
      name,
      "disk",
      "--size",
      "16M",
      "--id",
      "data",
    );
    assertEquals([attached.live, attached.device!.path], [true, join(dir, "data.qcow2")]);
    seen = await guestBlocks(dir, seen, " vda vdb");
    assertEquals(await targets(), ["vda", "vdb"]);
    assertEquals(await targets("--inactive"), ["vda", "vdb"], "kept for the next start");
    const detached = await gini(root, ...data, "detach", name, "data", "--yes");
    assertEquals(detached.code, 0, detached.stderr);
    await guestBlocks(dir, seen, " vda");
    assertEquals(await targets("--inactive"), ["vda"]);
    const events = JSON.parse((await gini(root, ...data, "history", name, "--json")).stdout)
      .records.map((r: { event: string }) => r.event);
    assertEquals(events, ["deployed", "started", "attached", "detached"]);
  } finally {
    await virsh("destroy", name);
    await virsh("undefine", name, "--nvram");
  }
});
