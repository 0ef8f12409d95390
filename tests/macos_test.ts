import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import plist from "plist";
import { runGini, sh } from "./_helpers.ts";
import {
  BOOT_MARKER,
  chunklistKey,
  macHome,
  type RecoveryFaults,
  recoveryImage,
} from "./_macos_fakes.ts";
import { chooseCpu, MAC_RELEASES } from "../plugins/opencore/releases.ts";
import { identityProblems, type MacIdentity } from "../plugins/opencore/_smbios.ts";
import { ovmfResolution } from "../plugins/opencore/_ovmf.ts";

const HOSTS = join(import.meta.dirname!, "fixtures/hosts");

/** Whether a converted raw image holds `image` (qemu-img pads it to whole 512-byte sectors). */
async function holdsImage(path: string, image: Uint8Array): Promise<boolean> {
  const raw = await Deno.readFile(path);
  const digest = async (b: Uint8Array) =>
    new Uint8Array(await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>)).join();
  return raw.byteLength === Math.ceil(image.byteLength / 512) * 512 &&
    raw.subarray(image.byteLength).every((b) => b === 0) &&
    await digest(raw.subarray(0, image.byteLength)) === await digest(image);
}

/** Reads a file from the FAT partition of a raw copy of the OpenCore disk. */
async function espRaw(qcow2: string): Promise<string> {
  const raw = `${qcow2}.test.raw`;
  await sh("qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2, raw);
  return raw;
}

function hostCpu(name: string): { vendor: string; flags: string[] } {
  const text = Deno.readTextFileSync(join(HOSTS, name, "proc/cpuinfo"));
  const vendor = text.match(/vendor_id\s*:\s*(\S+)/)![1] === "AuthenticAMD" ? "amd" : "intel";
  return { vendor, flags: text.match(/^flags\s*:\s*(.*)$/m)![1]!.split(/\s+/) };
}

Deno.test("CPU model for every macOS release on Intel and AMD host fixtures, with refusals", () => {
  const intel = hostCpu("intel-nvidia");
  const amd = hostCpu("amd-amd");
  // An Ivy Bridge-era Intel: the same host without AVX2 and what came with it.
  const old = {
    vendor: "intel",
    flags: intel.flags.filter((f) =>
      !["avx2", "fma", "bmi1", "bmi2", "movbe", "xsavec", "clflushopt"].includes(f)
    ),
  };
  const expected: Record<string, string> = {
    "high-sierra": "Penryn",
    mojave: "Penryn",
    catalina: "Penryn",
    "big-sur": "Penryn",
    monterey: "Penryn",
    ventura: "Haswell-noTSX",
    sonoma: "Haswell-noTSX",
    sequoia: "Skylake-Client",
    tahoe: "Skylake-Client",
  };
  assertEquals(MAC_RELEASES.map((r) => r.name), Object.keys(expected));
  for (const release of MAC_RELEASES) {
    const onIntel = chooseCpu(release, intel, "kvm");
    const onAmd = chooseCpu(release, amd, "kvm");
    assert(onIntel.ok && onAmd.ok, release.name);
    assertEquals(onIntel.model, expected[release.name]);
    assertEquals(onAmd.model, expected[release.name]);
    assert(!onIntel.features.includes("vendor=GenuineIntel"));
    assertEquals(onAmd.features[0], "vendor=GenuineIntel");
    if (release.cpu === "skylake") {
      assert(onIntel.features.includes("-hle") && onIntel.features.includes("-rtm"));
    }
    const onOld = chooseCpu(release, old, "kvm");
    if (release.cpu === "penryn") assert(onOld.ok, release.name);
    else {
      assert(!onOld.ok, release.name);
      assert(onOld.missing.includes("avx2"));
      assertStringIncludes(onOld.reason, "AVX2");
    }
    // TCG emulates the model whatever the host has.
    assert(chooseCpu(release, old, "tcg").ok);
  }
});

Deno.test("the seed's create-vm --dry-run prints the stage-by-stage report and changes nothing", async () => {
  const home = await Deno.makeTempDir({ prefix: "gini-macos-" });
  const out = await runGini(home, [
    "create-vm",
    "--name",
    "My macOS VM",
    "--version",
    "monterey",
    "--cpu-cores",
    "4",
    "--ram",
    "8G",
    "--dry-run",
  ]);
  assertEquals(out.code, 0, out.stderr);
  // The design's own example on a host with fewer threads: over-commit is a warning.
  const threads = navigator.hardwareConcurrency;
  if (threads < 4) {
    assertStringIncludes(out.stderr, `gets 4 vCPUs on a host with ${threads} threads`);
  }
  for (
    const stage of [
      "macos-recovery:prepare",
      "opencore:gather",
      "opencore:edit",
      "opencore:assemble",
      "opencore:compile",
      "deploy:create-disks",
      "deploy:start",
    ]
  ) assertStringIncludes(out.stdout, stage);
  assertStringIncludes(out.stdout, "Mac-E43C1C25D4880AD6");
  assertMatch(out.stdout, /operations: +\d+/);
  // Allocated now: the VM's files and its qcow2 metadata; the 64 GiB disk is a virtual size,
  // shown apart; the recovery overlay is as large as the image it overlays, not downloaded yet.
  assertMatch(out.stdout, /disk usage: +[\d.]+ (KiB|MiB) \(estimated/);
  assertMatch(out.stdout, /virtual disks: +64\.0 GiB/);
  assertMatch(out.stdout, /BaseSystem\.qcow2" \(the size of its backing image, overlay of/);
  // Files whose content comes from a download not made yet are described by their source.
  assertMatch(
    out.stdout,
    /BOOTx64\.efi" \(from OpenCore-[\d.]+-RELEASE\.zip: X64\/EFI\/BOOT\/BOOTx64\.efi\)/,
  );
  assert(!/\(0 B\)/.test(out.stdout), out.stdout);
  assertMatch(out.stdout, /time: +[\d.]+ s/);
  assertMatch(out.stdout, /conflicts: +0/);
  assertStringIncludes(out.stdout, 'name = "My-macOS-VM"');
  // The VM file is written by the deploy, so the plan shows it.
  assertStringIncludes(
    out.stdout,
    `Would create file "${join(home, ".config/gini/vms/My-macOS-VM.toml")}"`,
  );
  const left = [...Deno.readDirSync(home)].map((e) => e.name);
  assertEquals(left.filter((n) => n !== ".local"), []);
  const versions = await runGini(home, ["macos", "versions", "--json"]);
  assertEquals(
    JSON.parse(versions.stdout).map((r: { name: string }) => r.name),
    Object.keys({
      "high-sierra": 1,
      mojave: 1,
      catalina: 1,
      "big-sur": 1,
      monterey: 1,
      ventura: 1,
      sonoma: 1,
      sequoia: 1,
      tahoe: 1,
    }),
  );
  const created = await runGini(home, ["new", "box", "--guest", "macos", "--version", "sonoma"]);
  assertEquals(created.code, 0, created.stderr);
  const text = await Deno.readTextFile(join(home, "box.toml"));
  assertStringIncludes(text, 'version = "sonoma"');
  assertEquals((await runGini(home, ["plan", "box.toml"])).code, 0);
});

Deno.test("gini up of a macOS VM against local fakes: OpenCore disk, verified recovery, and OVMF boots the ESP", async (t) => {
  const { home, recovery, close, vmDir } = await macHome();
  try {
    const up = await runGini(home, ["up", "mac.toml"]);
    assertEquals(up.code, 0, up.stderr + up.stdout);
    assertStringIncludes(up.stderr, "will be slow to install");

    await t.step(
      "the journal keeps EFI binaries as their size and hash, not their bytes",
      async () => {
        const [tx] = JSON.parse((await runGini(home, ["journal", "list", "--json"])).stdout);
        const shown = JSON.parse(
          (await runGini(home, ["journal", "show", tx.id, "--json"])).stdout,
        );
        const boot = shown.records.find((r: { type: string; args?: { path?: string } }) =>
          r.type === "intent" && r.args?.path?.endsWith("EFI/BOOT/BOOTx64.efi")
        );
        const efi = await Deno.readFile(join(vmDir, "opencore/EFI/BOOT/BOOTx64.efi"));
        assertMatch(
          boot.args.contentBase64,
          /^<\d+ characters, sha256 [0-9a-f]{64}, not journaled>$/,
        );
        assert(efi.byteLength > 1024 * 1024, `BOOTx64.efi is ${efi.byteLength} bytes`);
        const wal = await Deno.stat(shown.file);
        assert(wal.size < 256 * 1024, `the journal is ${wal.size} bytes`);
      },
    );

    await t.step("OVMF runs EFI/BOOT/BOOTx64.efi from the compiled image", async () => {
      let log = "";
      for (let i = 0; i < 240 && !log.includes(BOOT_MARKER); i++) {
        await new Promise((r) => setTimeout(r, 500));
        log = await Deno.readTextFile(join(vmDir, "serial.log")).catch(() => "");
      }
      assertStringIncludes(log, BOOT_MARKER, "the GRUB EFI program on the ESP printed its marker");
      const argv = JSON.parse(await Deno.readTextFile(join(vmDir, "vm.json"))).argv as string[];
      const joined = argv.join(" ");
      assertStringIncludes(
        joined,
        "isa-applesmc,osk=ourhardworkbythesewordsguardedpleasedontsteal",
      );
      assertStringIncludes(joined, "ICH9-LPC.disable_s3=1");
      // The UEFI images are -blockdev nodes the machine's pflash options name.
      assertMatch(joined, /-machine q35,accel=tcg,pflash0=ovmf-code,pflash1=ovmf-vars,hpet=off /);
      assertStringIncludes(joined, "-cpu Penryn,");
    });
    await runGini(home, ["down", "mac", "--timeout", "1"]);

    await t.step(
      "the image: one EFI system partition holding the tree; config.plist matches it",
      async () => {
        const raw = await espRaw(join(vmDir, "OpenCore.qcow2"));
        const table = await sh("sgdisk", "-p", raw);
        assertMatch(table, /\n\s+1\s+2048\s+\d+\s+.*EF00\s+EFI System/);
        assertEquals(table.match(/^\s+\d+\s+\d+\s+\d+/gm)!.length, 1);
        const listing = await sh("mdir", "-/", "-b", "-i", `${raw}@@1M`, "::/EFI");
        for (
          const path of [
            "::/EFI/BOOT/BOOTX64.EFI",
            "::/EFI/OC/OPENCORE.EFI",
            "::/EFI/OC/config.plist",
            "::/EFI/OC/ACPI/",
            "::/EFI/OC/Resources/",
            "::/EFI/OC/Tools/OpenShell.efi",
          ]
        ) assertStringIncludes(listing.toLowerCase(), path.toLowerCase());
        const config = plist.parse(
          await sh("mtype", "-i", `${raw}@@1M`, "::/EFI/OC/config.plist"),
        ) as {
          Kernel: { Add: { BundlePath: string; ExecutablePath: string; Enabled: boolean }[] };
          UEFI: { Drivers: { Path: string }[]; Output: { Resolution: string } };
          Misc: { Security: { SecureBootModel: string }; Tools: { Path: string }[] };
          PlatformInfo: {
            Generic: { SystemSerialNumber: string; MLB: string; SystemUUID: string };
          };
          NVRAM: { Add: Record<string, Record<string, unknown>> };
        };
        const kexts = listing.split("\n").filter((l) => /\/Kexts\/[^/]+\.kext\/$/.test(l)).map((
          l,
        ) => l.split("/").at(-2)!).sort();
        assertEquals(kexts, ["Lilu.kext", "VirtualSMC.kext", "WhateverGreen.kext"]);
        assertEquals(config.Kernel.Add.map((k) => k.BundlePath).sort(), kexts);
        assertEquals(config.Kernel.Add[0]!.BundlePath, "Lilu.kext", "Lilu loads first");
        for (const k of config.Kernel.Add) {
          assertStringIncludes(listing, `/EFI/OC/Kexts/${k.BundlePath}/${k.ExecutablePath}`);
        }
        const drivers = listing.split("\n").filter((l) =>
          l.includes("/EFI/OC/Drivers/") && !l.endsWith("/")
        )
          .map((l) => l.split("/").at(-1)!).sort();
        assertEquals(config.UEFI.Drivers.map((d) => d.Path).sort(), drivers);
        assertEquals(config.Misc.Tools.map((d) => d.Path), ["OpenShell.efi"]);
        assertEquals(config.UEFI.Output.Resolution, "1280x800@32");
        assertEquals(config.Misc.Security.SecureBootModel, "Disabled");
        const identity = JSON.parse(
          await Deno.readTextFile(join(home, ".local/share/gini/macos/identities/mac.json")),
        ) as MacIdentity;
        assertEquals(identityProblems(identity), []);
        assertEquals(config.PlatformInfo.Generic.SystemSerialNumber, identity.serial);
        assertEquals(config.PlatformInfo.Generic.MLB, identity.mlb);
        const vars = await Deno.readFile(join(vmDir, "OVMF_VARS-1280x800.fd"));
        assertEquals(ovmfResolution(vars), { width: 1280, height: 800 });
        await Deno.remove(raw);
      },
    );

    await t.step("the recovery image: verified, converted, attached as an overlay", async () => {
      const raw = join(home, ".cache/gini/macos/monterey/BaseSystem.img");
      assert(await holdsImage(raw, recoveryImage()), "the converted image holds what was served");
      const info = JSON.parse(
        await sh("qemu-img", "info", "-U", "--output=json", join(vmDir, "BaseSystem.qcow2")),
      );
      assertEquals(info["backing-filename"], raw);
      const post = recovery.log.find((r) => r.path === "/InstallationPayload/RecoveryImage");
      assertEquals(post?.cookie, "session=fake-session-42");
    });

    await t.step(
      "the same VM keeps its identity across a rebuild; another VM gets its own",
      async () => {
        const before = JSON.parse(
          await Deno.readTextFile(join(home, ".local/share/gini/macos/identities/mac.json")),
        ) as MacIdentity;
        assertEquals((await runGini(home, ["rm", "mac", "--yes"])).code, 0);
        const again = await runGini(home, ["up", "--no-start", "mac.toml"]);
        assertEquals(again.code, 0, again.stderr);
        const raw = await espRaw(join(vmDir, "OpenCore.qcow2"));
        const config = plist.parse(
          await sh("mtype", "-i", `${raw}@@1M`, "::/EFI/OC/config.plist"),
        ) as {
          PlatformInfo: { Generic: { SystemSerialNumber: string } };
        };
        assertEquals(config.PlatformInfo.Generic.SystemSerialNumber, before.serial);
        const other = await runGini(home, ["up", "--no-start", "mac2.toml"]);
        assertEquals(other.code, 0, other.stderr);
        const second = JSON.parse(
          await Deno.readTextFile(join(home, ".local/share/gini/macos/identities/mac2.json")),
        ) as MacIdentity;
        assert(second.serial !== before.serial && second.mlb !== before.mlb);
        assert(second.uuid !== before.uuid && second.rom !== before.rom);
      },
    );

    await t.step("custom-kexts adds and enables the kexts of <config-dir>/kexts/NAME", async () => {
      const bundle = join(home, ".config/gini/kexts/mine/MyDriver.kext/Contents");
      await Deno.mkdir(join(bundle, "MacOS"), { recursive: true });
      await Deno.writeTextFile(join(bundle, "Info.plist"), "<plist/>\n");
      await Deno.writeTextFile(join(bundle, "MacOS/MyDriver"), "placeholder\n");
      await Deno.writeTextFile(
        join(home, "mac3.toml"),
        (await Deno.readTextFile(join(home, "mac.toml"))).replace('name = "mac"', 'name = "mac3"') +
          'kexts = "mine"\n',
      );
      const out = await runGini(home, ["up", "--no-start", "mac3.toml"]);
      assertEquals(out.code, 0, out.stderr);
      const raw = await espRaw(join(home, ".local/share/gini/vms/mac3/OpenCore.qcow2"));
      const listing = await sh("mdir", "-/", "-b", "-i", `${raw}@@1M`, "::/EFI/OC/Kexts");
      assertStringIncludes(listing, "/EFI/OC/Kexts/MyDriver.kext/Contents/MacOS/MyDriver");
      const config = plist.parse(
        await sh("mtype", "-i", `${raw}@@1M`, "::/EFI/OC/config.plist"),
      ) as { Kernel: { Add: { BundlePath: string; ExecutablePath: string; Enabled: boolean }[] } };
      const last = config.Kernel.Add.at(-1)!;
      assertEquals([last.BundlePath, last.ExecutablePath, last.Enabled], [
        "MyDriver.kext",
        "Contents/MacOS/MyDriver",
        true,
      ]);
    });

    await t.step(
      "create-vm writes the VM file in the deploy's transaction and starts it",
      async () => {
        const out = await runGini(home, [
          ...["create-vm", "--name", "Mac Four", "--version", "monterey"],
          ...["--cpu-cores", "2", "--ram", "1G", "--disk", "1G"],
        ]);
        assertEquals(out.code, 0, out.stderr + out.stdout);
        const file = join(home, ".config/gini/vms/Mac-Four.toml");
        assertStringIncludes(await Deno.readTextFile(file), 'name = "Mac-Four"');
        const [tx] = JSON.parse((await runGini(home, ["journal", "list", "--json"])).stdout);
        assertEquals([tx.command, tx.state], ["create-vm Mac-Four", "committed"]);
        const shown = await runGini(home, ["journal", "show", tx.id]);
        assertStringIncludes(shown.stdout, file);
        // Asking again with the same settings deploys the same VM file; other settings are refused.
        await runGini(home, ["down", "Mac-Four", "--timeout", "1"]);
        const other = await runGini(home, [
          ...["create-vm", "--name", "Mac Four", "--version", "sonoma", "--cpu-cores", "2"],
        ]);
        assertEquals(other.code, 2, other.stderr);
        assertStringIncludes(other.stderr, "exists with other settings");
      },
    );
  } finally {
    await runGini(home, ["down", "Mac-Four", "--timeout", "1"]);
    await runGini(home, ["down", "mac", "--timeout", "1"]);
    await close();
  }
});

async function failing(
  faults: RecoveryFaults,
  options: Parameters<typeof macHome>[1],
  expect: { code: number; message: RegExp },
) {
  const { home, close } = await macHome(faults, options);
  try {
    const out = await runGini(home, ["up", "--no-start", "mac.toml"]);
    assertEquals(out.code, expect.code, out.stderr);
    assertMatch(out.stderr, expect.message);
    // Nothing half-made is left: no converted image, no VM.
    assertEquals(
      await Deno.stat(join(home, ".cache/gini/macos/monterey/BaseSystem.img")).then(
        () => 1,
        () => 0,
      ),
      0,
    );
    assertEquals(
      await Deno.stat(join(home, ".local/share/gini/vms/mac")).then(() => 1, () => 0),
      0,
    );
  } finally {
    await close();
  }
}

Deno.test("recovery and components: bad chunk, bad signature, pinned hash mismatch, unknown release are refused; a cut download resumes", async (t) => {
  await t.step(
    "a chunk that does not match its SHA-256",
    () =>
      failing({ corruptChunk: true }, {}, {
        code: 1,
        message: /chunk 2 of 4 .* does not match its SHA-256/,
      }),
  );
  const other = await chunklistKey();
  await t.step(
    "a chunklist signed by another key",
    () => failing({ wrongKey: other.key }, {}, { code: 1, message: /signature does not verify/ }),
  );
  await t.step("a component whose sha256 is not the pinned one", () =>
    failing({}, {
      catalogue: (c) => {
        c.kexts[0]!.sha256 = "0".repeat(64);
      },
    }, {
      code: 1,
      message:
        /Lilu-?.*its sha256 is [0-9a-f]{64}, expected 0{64}|its sha256 is [0-9a-f]{64}, expected 0{64}/,
    }));
  await t.step(
    "an unknown release",
    () =>
      failing({}, { version: "panther" }, {
        code: 2,
        message: /Cannot (install|download) macOS "panther".*\n.*Known: high-sierra/,
      }),
  );
  await t.step("create-vm whose deploy fails leaves no VM file, no VM folder", async () => {
    const { home, close } = await macHome({ corruptChunk: true });
    try {
      const args = ["--name", "Bad Mac", "--version", "monterey", "--cpu-cores", "2"];
      const out = await runGini(home, ["create-vm", ...args, "--ram", "1G", "--disk", "1G"]);
      assertEquals(out.code, 1, out.stderr);
      assertMatch(out.stderr, /does not match its SHA-256/);
      for (const path of [".config/gini/vms", ".local/share/gini/vms/Bad-Mac"]) {
        assertEquals(await Deno.stat(join(home, path)).then(() => path, () => null), null);
      }
      const [tx] = JSON.parse((await runGini(home, ["journal", "list", "--json"])).stdout);
      assertEquals([tx.command, tx.state], ["create-vm Bad-Mac", "aborted"]);
    } finally {
      await close();
    }
  });
  await t.step("an image download cut half-way resumes with Range", async () => {
    const { home, recovery, close } = await macHome({ cutFirst: true });
    try {
      const out = await runGini(home, ["up", "--no-start", "mac.toml"]);
      assertEquals(out.code, 0, out.stderr);
      assert(
        recovery.log.some((r) => r.path.endsWith(".dmg") && r.range === `bytes=${1024 * 1024}-`),
      );
      assert(
        await holdsImage(join(home, ".cache/gini/macos/monterey/BaseSystem.img"), recoveryImage()),
      );
    } finally {
      await close();
    }
  });
});
