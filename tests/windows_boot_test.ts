/**
 * A Windows VM as Gini makes it, booted under TCG: Secure Boot with OVMF's secboot code and
 * Microsoft's keys, the TPM, and `gini up` seeing an installation through. Windows itself cannot
 * be installed here, so its installation disc is a stand-in that behaves as Microsoft's does up to
 * Setup: UDF with `sources/install.wim`, booting on UEFI through Debian's Microsoft-signed shim and
 * signed GRUB, which print "Press any key to boot from CD or DVD" and go on only when a key comes;
 * then it writes the done marker the answer file's first logon writes.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { REPO, runGini, sh, tempEnv, waitFor } from "./_helpers.ts";
import { buildVirtioIso, buildWindowsIso } from "./_windows_media.ts";
import { qmpCommand } from "../kernel/host/qmp.ts";

/** Debian's signed shim and GRUB (scripts/build-secureboot-media.sh). */
const signed = sh("bash", join(REPO, "scripts/build-secureboot-media.sh"));

/** A FAT image booting `bootx64` (and GRUB beside it, which shim starts), as an El Torito image. */
async function efiImage(dir: string, bootx64: string, grub: string | null, cfg: string) {
  const img = join(dir, "efiboot.img");
  await Deno.writeFile(img, new Uint8Array(32 * 2 ** 20));
  await Deno.writeTextFile(join(dir, "grub.cfg"), cfg);
  await sh("mformat", "-i", img, "-v", "EFIBOOT", "::");
  await sh("mmd", "-i", img, "::/EFI", "::/EFI/BOOT");
  await sh("mcopy", "-i", img, bootx64, "::/EFI/BOOT/BOOTX64.EFI");
  if (grub) await sh("mcopy", "-i", img, grub, "::/EFI/BOOT/grubx64.efi");
  await sh("mcopy", "-i", img, join(dir, "grub.cfg"), "::/EFI/BOOT/grub.cfg");
  return img;
}

/**
 * What the stand-in installer does: says it booted, prints the prompt, and waits (a menu without a
 * timeout) for a key; then writes the done marker and waits.
 */
const INSTALLER_CFG = `echo "GINI-TEST: signed GRUB runs"
echo "Press any key to boot from CD or DVD......"
set timeout=-1
set default=0
menuentry "setup" {
  echo "GINI-TEST: key received"
  echo "GINI-WINDOWS-READY"
  sleep 3600
}
`;

/** A home with `win.toml` (Windows 11 on UEFI with Secure Boot and a TPM, under TCG). */
async function home(rest: string) {
  const { root } = await tempEnv();
  await Deno.writeTextFile(join(root, "win.password"), "Str0ng!pass\n");
  await Deno.writeTextFile(
    join(root, "win.toml"),
    `name = "win"
guest = "windows"
accel = "tcg"
[memory]
size = "512M"
[[disks]]
size = "1G"
[firmware]
type = "uefi"
secure_boot = true
[tpm]
enabled = true
${rest}`,
  );
  return { root, dir: join(root, ".local/share/gini/vms/win") };
}

async function stop(root: string) {
  await runGini(root, ["kill", "win"]);
}

Deno.test("gini up of a Windows VM: shim boots under Secure Boot, the boot prompt gets its key, the media go once Setup is done", async () => {
  const work = await Deno.makeTempDir({ prefix: "gini-winboot-" });
  const keys = await signed;
  const boot = await efiImage(
    work,
    join(keys, "shimx64.efi"),
    join(keys, "grubx64.efi"),
    INSTALLER_CFG,
  );
  // Debian's GRUB finds its disc by /.disk/info and reads /boot/grub/grub.cfg from it.
  const iso = await buildWindowsIso(work, [{
    name: "Windows 11 Pro",
    edition: "Professional",
    build: 26100,
  }], {
    image: boot,
    files: { ".disk/info": "Gini test disc\n", "boot/grub/grub.cfg": INSTALLER_CFG },
  });
  const virtio = await buildVirtioIso(work);
  const { root, dir } = await home(
    `[windows]\niso = "${iso}"\npassword_file = "win.password"\ndrivers = "${virtio}"\ninstall_timeout = 10\n`,
  );
  try {
    const plan = await runGini(root, ["plan", "win.toml"]);
    assertEquals(plan.code, 0, plan.stderr);
    assertStringIncludes(
      plan.stdout + plan.stderr,
      'answer "Press any key to boot from CD or DVD"',
    );
    const up = await runGini(root, ["up", "win.toml"]);
    assertEquals(up.code, 0, up.stderr);
    const log = await Deno.readTextFile(join(dir, "serial.log"));
    // Secure Boot let Microsoft-signed shim start Debian's GRUB.
    assertStringIncludes(log, "GINI-TEST: signed GRUB runs");
    // The key came after the prompt, from gini.
    const prompt = log.indexOf("Press any key to boot from CD or DVD");
    assert(prompt >= 0 && log.indexOf("GINI-TEST: key received") > prompt, log.slice(-2000));
    assertStringIncludes(up.stderr + up.stdout, "win: installed in");
    assertStringIncludes(up.stdout, 'VM "win" is installed');
    // The key press is in the VM's history, once.
    const history = await runGini(root, ["history", "win", "--json"]);
    const events = (JSON.parse(history.stdout).records as { event: string }[]).map((r) => r.event);
    assertEquals(events.filter((e) => e === "boot-prompt-answered").length, 1);
    assert(events.includes("installed"), events.join(" "));

    // The TPM is a TPM 2.0 on CRB, backed by swtpm.
    const socket = join(dir, "qmp.sock");
    const tpm = await qmpCommand(socket, "query-tpm", undefined) as { model: string }[];
    assertEquals(tpm.map((t) => t.model), ["tpm-crb"]);
    const def = JSON.parse(await Deno.readTextFile(join(dir, "vm.json")));
    const argv: string[] = def.argv;
    assertStringIncludes(argv.join(" "), "OVMF_CODE_4M.secboot.fd");
    assertStringIncludes(argv.join(" "), "smm=on");
    assertStringIncludes(argv.join(" "), "tpm-crb,tpmdev=tpm0");
    // The media are detached from the running VM and gone from its definition.
    assertEquals(def.install, undefined);
    assert(!argv.join(" ").includes(iso), "the installer is gone from the command line");
    assert(!argv.join(" ").includes("unattend.img"));
    assert((await Deno.stat(join(dir, "windows/installed"))).isFile);
    const blocks = await qmpCommand(socket, "query-block", undefined) as {
      qdev?: string;
      inserted?: { file: string };
    }[];
    const files = blocks.flatMap((b) => b.inserted ? [b.inserted.file] : []);
    assert(!files.some((f) => f.includes("windows.iso")), JSON.stringify(files));
    // The disc's drive stays, empty; the USB disk is unplugged.
    const devices = (await qmpCommand(socket, "qom-list", { path: "/machine/peripheral" }) as {
      name: string;
    }[]).map((d) => d.name);
    assert(devices.includes("disk1") && !devices.includes("disk2"), devices.join(" "));
    // The answer file and its image (the password) are gone.
    for (const secret of ["windows/autounattend.xml", "unattend.img"]) {
      assert(!(await Deno.stat(join(dir, secret)).catch(() => null)), secret);
    }

    // Once installed, gini up starts from the disk: no ISO is read, nothing is attached.
    await stop(root);
    const again = await runGini(root, ["plan", "win.toml"]);
    assertEquals(again.code, 0, again.stderr);
    assert(!(again.stdout + again.stderr).includes("7z"), again.stdout);
    assert(!(again.stdout + again.stderr).includes("see the installation through"), again.stderr);
  } finally {
    await stop(root);
  }
});

Deno.test("Secure Boot refuses an unsigned boot program on the VM Gini makes for Windows", async () => {
  const work = await Deno.makeTempDir({ prefix: "gini-winboot-" });
  const grub = join(work, "unsigned.efi");
  await Deno.writeTextFile(join(work, "embedded.cfg"), 'echo "GINI-TEST: unsigned GRUB runs"\n');
  await sh(
    "grub-mkstandalone",
    "-O",
    "x86_64-efi",
    "-o",
    grub,
    `boot/grub/grub.cfg=${join(work, "embedded.cfg")}`,
  );
  const boot = await efiImage(work, grub, null, 'echo "GINI-TEST: unsigned GRUB runs"\n');
  const tree = join(work, "tree");
  await Deno.mkdir(tree);
  await Deno.copyFile(boot, join(tree, "efiboot.img"));
  const iso = join(work, "unsigned.iso");
  await sh(
    "xorriso",
    "-as",
    "mkisofs",
    "-quiet",
    "-e",
    "efiboot.img",
    "-no-emul-boot",
    "-o",
    iso,
    tree,
  );
  const { root, dir } = await home(
    `[[disks]]\nname = "cd"\npath = "${iso}"\ncdrom = true\nformat = "raw"\nboot_order = 2\n`,
  );
  try {
    const up = await runGini(root, ["up", "win.toml"]);
    assertEquals(up.code, 0, up.stderr);
    // OVMF says why it would not start it; GRUB never speaks.
    const log = await waitFor(join(dir, "serial.log"), "Access Denied", 180);
    assert(!log.includes("GINI-TEST: unsigned GRUB runs"), log.slice(-2000));
  } finally {
    await stop(root);
  }
});
