/**
 * `gini vfio` against the distribution fixture roots: the golden plan (devices,
 * diffs, commands), apply then undo restoring every file byte for byte, apply
 * twice equal to apply once, rebuild commands really run through chroot into the
 * root (a busybox shell and stand-ins for the distribution's programs, which log
 * what they saw), the sysfs binding writes, and the refusals.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { REPO, runGini, sh } from "./_helpers.ts";
import { chrootableRoot, REBUILD_LOG } from "./_vfio_roots.ts";
import { sha256Hex } from "../kernel/ops/_fs.ts";

const UPDATE = Deno.env.get("GINI_UPDATE_GOLDEN") === "1";
const DISTROS = join(REPO, "tests/fixtures/distros");

/** The distribution roots, the device passed through on each, and the commands expected. */
const CASES: Record<string, { device: string; commands: string[]; force?: boolean }> = {
  "debian-grub": {
    device: "0000:01:00.0",
    commands: ["update-initramfs -u -k all", "grub-mkconfig -o /boot/grub/grub.cfg"],
  },
  "fedora-dracut-bls": {
    // The host's only GPU: a headless server reached over ssh.
    device: "0000:0b:00.0",
    force: true,
    commands: ["dracut --force --regenerate-all", "grub2-mkconfig -o /boot/grub2/grub.cfg"],
  },
  "arch-systemd-boot": { device: "0000:01:00.0", commands: ["mkinitcpio -P"] },
  "arch-booster-limine": {
    device: "0000:01:00.0",
    commands: ["booster build --force --kernel-version 6.7.4-arch1-1 /boot/booster-linux.img"],
  },
  "popos-kernelstub": {
    device: "0000:01:00.0",
    commands: ["update-initramfs -u -k all", "kernelstub"],
  },
  "arch-uki": { device: "0000:01:00.0", commands: ["mkinitcpio -P"] },
  "arch-refind": { device: "0000:01:00.0", commands: ["mkinitcpio -P"] },
};

/** Every path under `root` with its mode and content hash; the rebuild log is left out. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string, prefix: string) => {
    for (const entry of [...Deno.readDirSync(dir)].sort((a, b) => a.name.localeCompare(b.name))) {
      const key = `${prefix}${entry.name}`;
      const path = join(dir, entry.name);
      if (key === REBUILD_LOG) continue;
      if (entry.isSymlink) out[key] = `-> ${await Deno.readLink(path)}`;
      else if (entry.isDirectory) {
        out[`${key}/`] = (await Deno.stat(path)).mode!.toString(8);
        await walk(path, `${key}/`);
      } else {
        out[key] = `${(await Deno.stat(path)).mode!.toString(8)} ${await sha256Hex(
          await Deno.readFile(path),
        )}`;
      }
    }
  };
  await walk(root, "");
  return out;
}

async function home(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "gini-vfio-home-" });
}

const readLog = (root: string) => Deno.readTextFile(join(root, REBUILD_LOG)).catch(() => "");

function changedPaths(a: Record<string, string>, b: Record<string, string>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => a[k] !== b[k]).sort();
}

Deno.test("gini vfio on every distribution root: golden plan, apply, apply again, undo", async (t) => {
  for (const [name, c] of Object.entries(CASES)) {
    await t.step(name, async () => {
      const root = await chrootableRoot(join(DISTROS, name));
      const h = await home();
      const flags = ["--host-root", root, "--device", c.device, ...(c.force ? ["--force"] : [])];
      const original = await snapshot(root);

      const plan = await runGini(h, ["vfio", "plan", ...flags]);
      assertEquals(plan.code, 0, plan.stderr);
      const text = plan.stdout.replaceAll(root, "{root}");
      const golden = join(DISTROS, `${name}.plan.expected`);
      if (UPDATE) await Deno.writeTextFile(golden, text);
      assertEquals(
        text,
        await Deno.readTextFile(golden),
        `${name}: the plan differs from ${golden}`,
      );
      assertEquals(await snapshot(root), original, "a plan changes nothing");

      const apply = await runGini(h, ["--yes", "--json", "vfio", "apply", ...flags]);
      assertEquals(apply.code, 0, apply.stderr);
      const applied = await snapshot(root);
      const changed = changedPaths(original, applied);
      assert(changed.length >= 2, `${name}: apply changed ${changed.join(", ")}`);
      assert(changed.includes("etc/modprobe.d/gini-vfio.conf"), changed.join(", "));
      const modprobe = await Deno.readTextFile(join(root, "etc/modprobe.d/gini-vfio.conf"));
      assertMatch(
        modprobe,
        /^options vfio-pci ids=[0-9a-f]{4}:[0-9a-f]{4},[0-9a-f]{4}:[0-9a-f]{4}$/m,
      );
      assertStringIncludes(modprobe, "softdep snd_hda_intel pre: vfio-pci");
      assertEquals(
        (await readLog(root)).trim().split("\n"),
        c.commands.map((cmd) => `${cmd} (configured)`),
        `${name}: the rebuilds run after the files are written`,
      );

      const again = await runGini(h, ["--yes", "vfio", "apply", ...flags]);
      assertEquals(again.code, 0, again.stderr);
      assertStringIncludes(again.stdout, "Nothing to change");
      assertEquals(await snapshot(root), applied, "applying twice equals applying once");
      assertEquals((await readLog(root)).trim().split("\n").length, c.commands.length);

      const status = await runGini(h, ["--json", "--host-root", root, "vfio", "status"]);
      assertEquals(status.code, 0, status.stderr);
      const s = JSON.parse(status.stdout);
      assertEquals(s.rebootPending, true);
      assert(
        s.configured.kernelArgs.some((a: string) => a.startsWith("vfio-pci.ids=")),
        status.stdout,
      );

      const undo = await runGini(h, ["vfio", "undo"]);
      assertEquals(undo.code, 0, undo.stderr);
      assertEquals(
        changedPaths(original, await snapshot(root)),
        [],
        `${name}: undo restores every byte`,
      );
      assertEquals(
        (await readLog(root)).trim().split("\n").slice(c.commands.length),
        c.commands.map((cmd) => `${cmd} (clean)`),
        `${name}: undo reruns the rebuilds once the files are restored`,
      );
      const nothing = await runGini(h, ["vfio", "undo"]);
      assertStringIncludes(nothing.stdout, "Nothing to undo");
      await Deno.remove(root, { recursive: true });
      await Deno.remove(h, { recursive: true });
    });
  }
});

Deno.test("gini vfio --bind-now moves devices to vfio-pci through sysfs, and undo writes the previous drivers back", async () => {
  const root = await chrootableRoot(join(DISTROS, "fedora-dracut-bls"));
  const h = await home();
  const flags = ["--host-root", root, "--device", "0b:00.0", "--force", "--bind-now"];
  const apply = await runGini(h, ["--yes", "vfio", "apply", ...flags]);
  assertEquals(apply.code, 0, apply.stderr);
  const list = JSON.parse((await runGini(h, ["--json", "journal", "list"])).stdout);
  const show = JSON.parse((await runGini(h, ["--json", "journal", "show", list[0].id])).stdout);
  const sys = (p: string) => join(root, p);
  const writes = show.records.filter((r: { type: string; kind?: string }) =>
    r.type === "intent" && r.kind === "sysfs.write"
  ).map((r: { args: { path: string; value: string } }) => [r.args.path, r.args.value]);
  assertEquals(writes, [
    [sys("sys/bus/pci/drivers/amdgpu/unbind"), "0000:0b:00.0"],
    [sys("sys/bus/pci/devices/0000:0b:00.0/driver_override"), "vfio-pci"],
    [sys("sys/bus/pci/drivers_probe"), "0000:0b:00.0"],
    [sys("sys/bus/pci/drivers/snd_hda_intel/unbind"), "0000:0b:00.1"],
    [sys("sys/bus/pci/devices/0000:0b:00.1/driver_override"), "vfio-pci"],
    [sys("sys/bus/pci/drivers_probe"), "0000:0b:00.1"],
  ]);
  const read = (p: string) => Deno.readTextFile(sys(p));
  assertEquals(await read("sys/bus/pci/devices/0000:0b:00.0/driver_override"), "vfio-pci");

  const undo = await runGini(h, ["vfio", "undo"]);
  assertEquals(undo.code, 0, undo.stderr);
  // Newest first: off vfio-pci, override cleared, back to the driver it had.
  assertEquals(await read("sys/bus/pci/drivers/vfio-pci/unbind"), "0000:0b:00.0");
  assertEquals(await read("sys/bus/pci/devices/0000:0b:00.0/driver_override"), "\n");
  assertEquals(await read("sys/bus/pci/drivers/amdgpu/bind"), "0000:0b:00.0");
  assertEquals(await read("sys/bus/pci/drivers/snd_hda_intel/bind"), "0000:0b:00.1");
  const order = JSON.parse((await runGini(h, ["--json", "journal", "show", list[0].id])).stdout)
    .records.filter((r: { type: string }) => r.type === "undone").map((r: { seq: number }) =>
      r.seq
    );
  const seqOf = (path: string, value: string) =>
    show.records.find((r: { type: string; args?: { path: string; value: string } }) =>
      r.type === "intent" && r.args?.path === sys(path) && r.args.value === value
    ).seq;
  assert(
    order.indexOf(seqOf("sys/bus/pci/drivers_probe", "0000:0b:00.0")) <
        order.indexOf(seqOf("sys/bus/pci/devices/0000:0b:00.0/driver_override", "vfio-pci")) &&
      order.indexOf(seqOf("sys/bus/pci/devices/0000:0b:00.0/driver_override", "vfio-pci")) <
        order.indexOf(seqOf("sys/bus/pci/drivers/amdgpu/unbind", "0000:0b:00.0")),
    `undo order: ${order}`,
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("gini vfio refuses what would hurt the host, with the reason and the next step", async (t) => {
  const h = await home();
  const debian = join(DISTROS, "debian-grub");
  const cases: [string, string[], RegExp, RegExp][] = [
    [
      "the boot display without --force",
      ["--host-root", debian, "--device", "0000:00:02.0"],
      /"0000:00:02\.0" is the boot display/,
      /--force/,
    ],
    [
      "a group shared with unrelated devices",
      ["--host-root", join(REPO, "tests/fixtures/hosts/shared-group"), "--device", "0000:07:00.0"],
      /its IOMMU group 15 also holds/,
      /ACS/,
    ],
    [
      "a device that does not exist",
      ["--host-root", debian, "--device", "0000:42:00.0"],
      /Cannot find PCI device "0000:42:00\.0"/,
      /gini check --iommu/,
    ],
    [
      "an unknown boot loader name",
      ["--host-root", debian, "--device", "01:00.0", "--bootloader", "lilo"],
      /unknown boot loader/,
      /grub, grub-bls/,
    ],
  ];
  for (const [name, args, message, hint] of cases) {
    await t.step(name, async () => {
      const out = await runGini(h, ["vfio", "plan", ...args]);
      assertEquals(out.code, 2, out.stderr);
      assertMatch(out.stderr, message);
      assertMatch(out.stderr, hint);
    });
  }

  await t.step("two boot loaders: asks for --bootloader, then plans with it", async () => {
    const root = await chrootableRoot(debian);
    await Deno.mkdir(join(root, "boot/loader/entries"), { recursive: true });
    await Deno.writeTextFile(join(root, "boot/loader/loader.conf"), "default debian.conf\n");
    await Deno.writeTextFile(
      join(root, "boot/loader/entries/debian.conf"),
      "title Debian\nlinux /vmlinuz\noptions root=/dev/sda1 ro quiet\n",
    );
    const out = await runGini(h, ["vfio", "plan", "--host-root", root, "--device", "01:00.0"]);
    assertEquals(out.code, 2, out.stderr);
    assertMatch(
      out.stderr,
      /Cannot tell which boot loader the host uses: found grub and systemd-boot/,
    );
    assertMatch(out.stderr, /--bootloader grub/);
    const chosen = await runGini(h, [
      "vfio",
      "plan",
      "--host-root",
      root,
      "--device",
      "01:00.0",
      "--bootloader",
      "systemd-boot",
    ]);
    assertEquals(chosen.code, 0, chosen.stderr);
    assertStringIncludes(chosen.stdout, "+options root=/dev/sda1 ro quiet intel_iommu=on");
    await Deno.remove(root, { recursive: true });
  });

  await t.step(
    "a file changed between plan and edit: refused, and everything rolled back",
    async () => {
      const root = await chrootableRoot(debian);
      const before = await snapshot(root);
      const out = await runGini(h, [
        "--plugin-dir",
        join(REPO, "tests/fixtures/plugins/vfio-meddler"),
        "--yes",
        "vfio",
        "apply",
        "--host-root",
        root,
        "--device",
        "01:00.0",
      ]);
      assertEquals(out.code, 1, out.stderr);
      // The approved plan showed the file as it was: the changed edit is refused before it runs.
      assertMatch(
        out.stderr,
        /Refused a change the approved plan \(sha256:[0-9a-f]{12}…\) did not show: Edit file "[^"]*default\/grub"/,
      );
      assertEquals(changedPaths(before, await snapshot(root)), []);
      assertEquals(await readLog(root), "", "no rebuild ran");
      await Deno.remove(root, { recursive: true });
    },
  );
});

Deno.test("lifecycle hooks: nvidia-code43 changes the VM definition in on_pre_vm_start, and registers a command", async (t) => {
  const h = await home();
  const host = join(REPO, "tests/fixtures/hosts/intel-nvidia");
  const work = await Deno.makeTempDir({ prefix: "gini-code43-" });
  const vm = join(work, "gpu.toml");
  await Deno.writeTextFile(
    vm,
    'name = "gpu"\nguest = "windows"\npassthrough = ["0000:01:00.0", "0000:01:00.1"]\n[firmware]\ntype = "bios"\n[[disks]]\nsize = "1G"\n',
  );
  const plan = (plugins: string[]) =>
    runGini(h, [...plugins, "--json", "--host-root", host, "plan", vm]);

  await t.step("without the plugin, KVM stays visible", async () => {
    const out = await plan([]);
    assertEquals(out.code, 0, out.stderr);
    const result = JSON.parse(out.stdout);
    // A Windows guest under KVM on this Intel host gets enlightened VMCS too.
    assertEquals(result.vmDefinition.hypervisor, {
      kvmHidden: false,
      hypervVendorId: null,
      evmcs: true,
    });
    assert(!result.libvirtXml.includes("<hidden"));
  });
  await t.step("with it, the definition, argv and domain XML hide KVM", async () => {
    const out = await plan(["--plugin-dir", join(REPO, "plugins/examples")]);
    assertEquals(out.code, 0, out.stderr);
    const result = JSON.parse(out.stdout);
    assertEquals(result.vmDefinition.hypervisor, {
      kvmHidden: true,
      hypervVendorId: "GiniVfio0001",
      evmcs: true,
    });
    const cpu = result.vmDefinition.argv[result.vmDefinition.argv.indexOf("-cpu") + 1];
    assertMatch(cpu, /,kvm=off,hv-vendor-id=GiniVfio0001$/);
    assertStringIncludes(result.libvirtXml, '<hidden state="on"/>');
    assertStringIncludes(result.libvirtXml, '<vendor_id state="on" value="GiniVfio0001"/>');
    const xml = join(work, "gpu.xml");
    await Deno.writeTextFile(xml, result.libvirtXml);
    await sh("virt-xml-validate", xml, "domain");
  });
  await t.step("register_commands: gini code43 comes from the plugin's manifest", async () => {
    const out = await runGini(h, [
      "--plugin-dir",
      join(REPO, "plugins/examples"),
      "--host-root",
      host,
      "code43",
    ]);
    assertEquals(out.code, 0, out.stderr);
    assertStringIncludes(out.stdout, "0000:01:00.0 NVIDIA Corporation GA104 [GeForce RTX 3070]");
    const help = await runGini(h, ["--plugin-dir", join(REPO, "plugins/examples"), "--help"]);
    assertMatch(help.stdout, /code43\s[^\n]*\n?[^\n]*\(plugin\s+nvidia-code43\)/);
    const without = await runGini(h, ["code43"]);
    assertEquals(without.code, 2);
  });
  await Deno.remove(work, { recursive: true });
});

Deno.test("a real Debian root: apply runs update-initramfs and grub-mkconfig through chroot, undo restores", async () => {
  const tar = await sh("bash", join(REPO, "scripts/build-vfio-root.sh"));
  const root = await Deno.makeTempDir({ prefix: "gini-vfio-debian-" });
  await sh("tar", "-C", root, "--numeric-owner", "-xf", tar);
  // The hardware is the intel-nvidia fixture's (this machine has no GPU and no IOMMU).
  const fixture = join(REPO, "tests/fixtures/hosts/intel-nvidia");
  await sh("cp", "-a", `${fixture}/sys/.`, `${root}/sys/`);
  await sh("cp", "-a", `${fixture}/proc/.`, `${root}/proc/`);
  await Deno.mkdir(join(root, "usr/share/misc"), { recursive: true });
  await Deno.copyFile(`${fixture}/usr/share/misc/pci.ids`, join(root, "usr/share/misc/pci.ids"));
  // grub-probe finds the device of "/" in /proc/self/mountinfo: give it this machine's root line,
  // and the block device node it names.
  const line = (await Deno.readTextFile("/proc/self/mountinfo")).split("\n").find((l) =>
    l.split(" ")[4] === "/"
  )!;
  await Deno.writeTextFile(join(root, "proc/self/mountinfo"), `${line}\n`);
  const device = line.split(" - ")[1]!.split(" ")[1]!;
  await sh("cp", "-a", device, join(root, device));
  const chroot = (...argv: string[]) => sh("chroot", root, ...argv);
  // What grub-install leaves: /boot/grub, then the first grub.cfg.
  await Deno.mkdir(join(root, "boot/grub"), { recursive: true });
  await chroot("grub-mkconfig", "-o", "/boot/grub/grub.cfg");
  const kernel = (await chroot("linux-version", "list")).split("\n")[0]!;
  const initrd = `/boot/initrd.img-${kernel}`;
  const etc = await snapshot(join(root, "etc"));
  const grubBefore = await Deno.readTextFile(join(root, "boot/grub/grub.cfg"));
  assert(!grubBefore.includes("vfio-pci.ids"));

  const h = await home();
  const apply = await runGini(h, [
    "--yes",
    "vfio",
    "apply",
    "--host-root",
    root,
    "--device",
    "01:00.0",
  ]);
  assertEquals(apply.code, 0, apply.stderr + apply.stdout);
  const grub = await Deno.readTextFile(join(root, "boot/grub/grub.cfg"));
  assertMatch(
    grub,
    /linux\s+\/boot\/vmlinuz-\S+ .*intel_iommu=on iommu=pt vfio-pci\.ids=10de:2484,10de:228b/,
  );
  const listing = await chroot("lsinitramfs", initrd);
  assertMatch(listing, /vfio[-_]pci\.ko/);
  assertMatch(listing, /vfio_iommu_type1\.ko/);
  assertMatch(listing, /etc\/modprobe\.d\/gini-vfio\.conf/);

  const undo = await runGini(h, ["vfio", "undo"]);
  assertEquals(undo.code, 0, undo.stderr + undo.stdout);
  assertEquals(
    changedPaths(etc, await snapshot(join(root, "etc"))),
    [],
    "every file under /etc restored",
  );
  assert(!(await Deno.readTextFile(join(root, "boot/grub/grub.cfg"))).includes("vfio-pci.ids"));
  assert(!(await chroot("lsinitramfs", initrd)).includes("gini-vfio.conf"), "initramfs rebuilt");
  await Deno.remove(root, { recursive: true });
});

/** The root without sysfs, whose action files keep what was last written to them. */
const withoutSys = (tree: Record<string, string>) =>
  Object.fromEntries(Object.entries(tree).filter(([k]) => !k.startsWith("sys/")));

Deno.test("a VFIO apply killed after any op, or between an op and its journal record, rolls back to the exact tree, or resumes to the tree of an uninterrupted apply", async (t) => {
  const source = join(DISTROS, "fedora-dracut-bls");
  const flags = ["--host-root", "", "--device", "0b:00.0", "--force", "--bind-now"];
  const withRoot = (root: string) => flags.map((f) => f === "" ? root : f);
  const probe = await chrootableRoot(source);
  const h0 = await home();
  const plan = JSON.parse(
    (await runGini(h0, ["--json", "vfio", "plan", ...withRoot(probe)])).stdout,
  );
  const ops: { seq: number; kind: string }[] = plan.stages.flatMap((s: { ops: unknown[] }) => s.ops)
    .filter((op: { readOnly: boolean }) => !op.readOnly);
  assert(ops.length >= 12, `ops: ${ops.map((o) => o.kind).join(", ")}`);
  const original = withoutSys(await snapshot(probe));
  for (const variable of ["GINI_CRASH_AFTER_OP", "GINI_CRASH_BEFORE_DONE"]) {
    for (const [i, op] of ops.entries()) {
      await t.step(`${variable}=${i + 1} (${op.kind})`, async () => {
        const root = await chrootableRoot(source);
        const h = await home();
        const crashed = await runGini(h, ["--yes", "vfio", "apply", ...withRoot(root)], {
          [variable]: String(i + 1),
        });
        assertEquals(crashed.code, 137, crashed.stderr);
        const recovered = await runGini(h, ["recover", "--rollback"]);
        assertEquals(recovered.code, 0, recovered.stderr + recovered.stdout);
        assertEquals(changedPaths(original, withoutSys(await snapshot(root))), []);
        for (const address of ["0000:0b:00.0", "0000:0b:00.1"]) {
          const override = await Deno.readTextFile(
            join(root, `sys/bus/pci/devices/${address}/driver_override`),
          );
          assert(override === "(null)\n" || override === "\n", `${address}: ${override}`);
        }
        await Deno.remove(root, { recursive: true });
      });
    }
  }
  // The tree an uninterrupted apply leaves, for resume to match.
  const reference = await chrootableRoot(source);
  const applied = await runGini(await home(), ["--yes", "vfio", "apply", ...withRoot(reference)]);
  assertEquals(applied.code, 0, applied.stderr);
  const expected = withoutSys(await snapshot(reference));
  const overrides = async (root: string) =>
    await Promise.all(
      ["0000:0b:00.0", "0000:0b:00.1"].map((a) =>
        Deno.readTextFile(join(root, `sys/bus/pci/devices/${a}/driver_override`))
      ),
    );
  const expectedOverrides = await overrides(reference);
  assertEquals(expectedOverrides, ["vfio-pci", "vfio-pci"]);
  for (const [i, op] of ops.entries()) {
    await t.step(`GINI_CRASH_AFTER_OP=${i + 1} (${op.kind}), then recover --resume`, async () => {
      const root = await chrootableRoot(source);
      const h = await home();
      const crashed = await runGini(h, ["--yes", "vfio", "apply", ...withRoot(root)], {
        GINI_CRASH_AFTER_OP: String(i + 1),
      });
      assertEquals(crashed.code, 137, crashed.stderr);
      const dry = await runGini(h, ["recover", "--resume", "--dry-run"]);
      assertEquals(dry.code, 0, dry.stderr + dry.stdout);
      assertStringIncludes(dry.stdout, "Would resume");
      const resumed = await runGini(h, ["recover", "--resume"]);
      assertEquals(resumed.code, 0, resumed.stderr + resumed.stdout);
      assertEquals(changedPaths(expected, withoutSys(await snapshot(root))), []);
      assertEquals(await overrides(root), expectedOverrides);
      // The last rebuild saw the configuration in place.
      const log = (await Deno.readTextFile(join(root, REBUILD_LOG))).trim().split("\n");
      assertStringIncludes(log.at(-1)!, "(configured)");
      assertEquals((await runGini(h, ["recover"])).stdout.trim(), "Nothing to recover");
      await Deno.remove(root, { recursive: true });
    });
  }
  await Deno.remove(reference, { recursive: true });
  await t.step("a recovery killed at any step, then run again, ends in the same tree", async () => {
    const last = ops.length;
    for (let step = 1; step <= ops.length; step++) {
      const root = await chrootableRoot(source);
      const h = await home();
      const crashed = await runGini(h, ["--yes", "vfio", "apply", ...withRoot(root)], {
        GINI_CRASH_AFTER_OP: String(last),
      });
      assertEquals(crashed.code, 137, crashed.stderr);
      const interrupted = await runGini(h, ["recover", "--rollback"], {
        GINI_CRASH_AFTER_UNDO: String(step),
      });
      assertEquals(interrupted.code, 137, `recovery step ${step}: ${interrupted.stderr}`);
      const again = await runGini(h, ["recover", "--rollback"]);
      assertEquals(again.code, 0, again.stderr);
      assertEquals(changedPaths(original, withoutSys(await snapshot(root))), [], `step ${step}`);
      assertEquals((await runGini(h, ["recover"])).stdout.trim(), "Nothing to recover");
      await Deno.remove(root, { recursive: true });
    }
  });
});

Deno.test("gini journal prune removes old transactions and unneeded backups, keeping what vfio undo and recover need", async () => {
  const h = await home();
  const apply = async (name: string, env: Record<string, string> = {}) => {
    const root = await chrootableRoot(join(DISTROS, name));
    const c = CASES[name]!;
    const flags = ["--host-root", root, "--device", c.device, ...(c.force ? ["--force"] : [])];
    const original = await snapshot(root);
    const out = await runGini(h, ["--yes", "vfio", "apply", ...flags], env);
    return { root, flags, original, out };
  };
  // A: a configuration still in place. B1-B3: applied, then undone. C: killed part-way.
  const a = await apply("debian-grub");
  assertEquals(a.out.code, 0, a.out.stderr);
  const applied = await snapshot(a.root);
  const undone: string[] = [];
  for (const name of ["arch-systemd-boot", "arch-uki", "popos-kernelstub"]) {
    const b = await apply(name);
    assertEquals(b.out.code, 0, b.out.stderr);
    assertEquals((await runGini(h, ["vfio", "undo"])).code, 0);
    undone.push(b.root);
  }
  const c = await apply("fedora-dracut-bls", { GINI_CRASH_AFTER_OP: "3" });
  assertEquals(c.out.code, 137, c.out.stderr);
  const journal = join(h, ".local/state/gini/journal");
  const listed = async () =>
    JSON.parse((await runGini(h, ["--json", "journal", "list"])).stdout) as {
      id: string;
      command: string;
      state: string;
      changes: number;
    }[];
  const all = await listed();
  // An undone apply ends as aborted, with no change left in place.
  assertEquals(all.map((t) => t.state), [
    "incomplete",
    "aborted",
    "aborted",
    "aborted",
    "committed",
  ]);
  // Newest first: C, B3, B2, B1, A. With --keep 1, B3 stays; B2 and B1 go.
  const oldest = all.slice(2, 4);
  assertEquals(all.map((t) => t.changes).slice(1, 4), [0, 0, 0]);
  const blobs = () => Array.fromAsync(Deno.readDir(join(journal, "blobs")), (e) => e.name);
  const before = (await blobs()).sort();
  assert(before.length >= 4, `blobs: ${before.join(", ")}`);

  const dry = await runGini(h, ["--dry-run", "--json", "journal", "prune", "--keep", "1"]);
  assertEquals(dry.code, 0, dry.stderr);
  assertEquals(JSON.parse(dry.stdout).removed.length, 2);
  // Every blob is younger than an hour: none would go.
  assertEquals(JSON.parse(dry.stdout).blobs.removed, 0);
  assertEquals((await listed()).length, 5, "a dry run removes nothing");

  // Blobs written in the last hour are spared (a run may be about to use one): age them.
  const old = new Date(Date.now() - 2 * 3600_000);
  for (const name of before) await Deno.utime(join(journal, "blobs", name), old, old);
  const pruned = await runGini(h, ["--json", "journal", "prune", "--keep", "1"]);
  assertEquals(pruned.code, 0, pruned.stderr);
  const r = JSON.parse(pruned.stdout);
  assertEquals(r.kept, { incomplete: 1, inPlace: 1, recent: 1 });
  assertEquals(r.removed.map((t: { id: string }) => t.id), oldest.map((t) => t.id));
  assert(r.blobs.removed >= 1, pruned.stdout);
  const left = await listed();
  assertEquals(left.map((t) => t.state), ["incomplete", "aborted", "committed"]);
  assertEquals((await blobs()).length, before.length - r.blobs.removed);

  // What was kept still works: C rolls back and A undoes, byte for byte.
  const recovered = await runGini(h, ["recover", "--rollback"]);
  assertEquals(recovered.code, 0, recovered.stderr);
  assertEquals(changedPaths(c.original, await snapshot(c.root)), []);
  assertEquals(changedPaths(applied, await snapshot(a.root)), []);
  const undo = await runGini(h, ["vfio", "undo"]);
  assertEquals(undo.code, 0, undo.stderr);
  assertEquals(changedPaths(a.original, await snapshot(a.root)), []);
  for (const root of [a.root, ...undone, c.root, h]) await Deno.remove(root, { recursive: true });
});
