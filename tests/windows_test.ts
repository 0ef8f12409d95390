/**
 * Windows guests up to Setup, with the real tools: a UDF-only ISO holding a WIM made by
 * wimlib-imagex (read through 7z), a virtio-win ISO laid out like Fedora's, the answer file per
 * Windows release against golden files, and the answer-file image read back with mdir and mtype.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { REPO, runGini, sh } from "./_helpers.ts";
import { createHash } from "node:crypto";
import { readWimImages } from "../plugins/windows_setup/wim.ts";
import { buildVirtioIso, buildWim, buildWindowsIso } from "./_windows_media.ts";
import {
  type AnswerFileOptions,
  buildAnswerFile,
  checkAnswerFile,
  computerName,
  obfuscatePassword,
  type WindowsProfile,
} from "../plugins/windows_setup/unattend.ts";

const GOLDEN = join(REPO, "tests/fixtures/windows");
const UPDATE = Deno.env.get("GINI_UPDATE_GOLDEN") === "1";

/** One set of media for every test in this file (built once: about a second). */
const media = (async () => {
  const dir = await Deno.makeTempDir({ prefix: "gini-windows-" });
  const iso = await buildWindowsIso(dir, [
    { name: "Windows 11 Home", edition: "Core", build: 26100 },
    { name: "Windows 11 Pro", edition: "Professional", build: 26100 },
  ]);
  const virtio = await buildVirtioIso(dir);
  return { dir, iso, virtio };
})();

/** A home with a Windows 11 VM file beside a password file; `extra` goes into [windows]. */
async function windowsHome(
  extra = "",
  password = "Str0ng!pass",
  machine = '[firmware]\ntype = "uefi"\nsecure_boot = true\n[tpm]\nenabled = true\n',
) {
  const { iso, virtio } = await media;
  const root = await Deno.makeTempDir({ prefix: "gini-test-" });
  await Deno.writeTextFile(join(root, "win.password"), `${password}\n`);
  await Deno.writeTextFile(
    join(root, "win.toml"),
    `name = "win11"
guest = "windows"
[memory]
size = "256M"
[[disks]]
size = "1G"
${machine}[windows]
iso = "${iso}"
password_file = "win.password"
drivers = "${virtio}"
first_logon = ["echo hello > C:\\\\hello.txt"]
${extra}`,
  );
  return root;
}

Deno.test("the test ISO is UDF only: its ISO 9660 view holds README.TXT alone, 7z finds sources/install.wim", async () => {
  const { iso } = await media;
  const iso9660 = await sh("isoinfo", "-f", "-i", iso);
  assertEquals(iso9660.trim().split("\n"), ["/README.TXT;1"]);
  const udf = await sh("7z", "l", "-slt", iso);
  assertStringIncludes(udf, "Type = Udf");
  assertStringIncludes(udf, "Path = sources/install.wim");
});

Deno.test("readWimImages() reads what wiminfo reads of a WIM wimlib-imagex made", async () => {
  const dir = await Deno.makeTempDir();
  const wim = join(dir, "install.wim");
  await buildWim(dir, wim, [
    {
      name: "Windows Server 2022 Standard",
      edition: "ServerStandard",
      build: 20348,
      type: "Server",
    },
    { name: "Windows 10 Pro", edition: "Professional", build: 19045, language: "de-DE" },
  ]);
  const images = await readWimImages(wim);
  const wiminfo = await sh("wiminfo", wim);
  for (const image of images) {
    assertMatch(wiminfo, new RegExp(`Index:\\s+${image.index}\\nName:\\s+${image.name}\\n`));
  }
  assertEquals(images.map((i) => [i.index, i.name, i.edition, i.installationType, i.build]), [
    [1, "Windows Server 2022 Standard", "ServerStandard", "Server", 20348],
    [2, "Windows 10 Pro", "Professional", "Client", 19045],
  ]);
  assertEquals(images[1]!.languages, ["de-DE"]);
  assertEquals(images[1]!.defaultLanguage, "de-DE");
  assertEquals(images[0]!.arch, 9);
});

Deno.test("gini windows editions ISO lists the images of a UDF ISO's install.wim, then from the cache", async () => {
  const { iso } = await media;
  const root = await Deno.makeTempDir({ prefix: "gini-test-" });
  const first = await runGini(root, ["windows", "editions", iso]);
  assertEquals(first.code, 0, first.stderr);
  assertMatch(first.stdout, /1 +Windows 11 Home +Core +en-US +build 26100 +\(11-24h2\)/);
  assertMatch(first.stdout, /2 +Windows 11 Pro +Professional +en-US/);
  assertStringIncludes(first.stderr, "Reading sources/install.wim");
  // The copy of install.wim is gone; what was read of it stays.
  const cache = join(root, ".cache/gini/windows");
  assertEquals([...Deno.readDirSync(join(cache, "extract"))], []);
  assertEquals([...Deno.readDirSync(join(cache, "editions"))].length, 1);
  const again = await runGini(root, ["windows", "editions", iso, "--json"]);
  assertEquals(again.code, 0, again.stderr);
  assert(!again.stderr.includes("Reading sources/install.wim"), again.stderr);
  const data = JSON.parse(again.stdout);
  assertEquals(data.images.map((i: { name: string }) => i.name), [
    "Windows 11 Home",
    "Windows 11 Pro",
  ]);
  const missing = await runGini(root, ["windows", "editions", join(root, "nope.iso")]);
  assertEquals(missing.code, 2, missing.stderr);
  assertStringIncludes(missing.stderr, "Cannot read the Windows ISO");
});

Deno.test("gini up --no-start writes autounattend.xml (0600) and a FAT image with the drivers Setup needs", async () => {
  const root = await windowsHome();
  // A plan does not read the ISO (7z runs only when the VM is deployed) and still shows the media.
  const plan = await runGini(root, ["plan", "win.toml"]);
  assertEquals(plan.code, 0, plan.stderr);
  assertStringIncludes(plan.stdout + plan.stderr, "The edition is read from windows.iso");
  assertStringIncludes(plan.stdout + plan.stderr, "Would run mformat -C -i");
  const up = await runGini(root, ["up", "win.toml", "--no-start"]);
  assertEquals(up.code, 0, up.stderr);
  const dir = join(root, ".local/share/gini/vms/win11");
  const xmlPath = join(dir, "windows/autounattend.xml");
  assertEquals(Deno.statSync(xmlPath).mode! & 0o777, 0o600);
  const xml = await Deno.readTextFile(xmlPath);
  checkAnswerFile(xml);
  // The default edition of an ISO with several: Pro, index 2.
  assertMatch(xml, /<Key>\/IMAGE\/INDEX<\/Key>\s*<Value>2<\/Value>/);
  assertStringIncludes(xml, `<Value>${obfuscatePassword("Str0ng!pass", "Password")}</Value>`);
  assert(!xml.includes("Str0ng!pass"));
  assertStringIncludes(xml, "<ComputerName>win11</ComputerName>");
  assertStringIncludes(xml, "cmd.exe /c echo hello &gt; C:\\hello.txt");
  // What the plan shows hides the passwords.
  assertStringIncludes(up.stderr + up.stdout, "<Value>(hidden)</Value>");

  const img = join(dir, "unattend.img");
  assertEquals(Deno.statSync(img).mode! & 0o777, 0o600);
  const top = await sh("mdir", "-i", img, "::/");
  assertStringIncludes(top, "Volume in drive : is GINI-WIN");
  // sh() trims what the program printed.
  assertEquals(await sh("mtype", "-i", img, "::/autounattend.xml"), xml.trimEnd());
  const drivers = await sh("mdir", "-i", img, "-b", "-/", "::/$WinPEDriver$");
  const files = drivers.trim().split("\n").filter((l) => !l.endsWith("/")).sort();
  const expected = ["viostor", "NetKVM", "vioinput", "viorng", "Balloon", "vioserial"].flatMap((
    d,
  ) =>
    ["cat", "inf", "sys"].map((ext) => `::/$WinPEDriver$/${d}/w11/amd64/${d.toLowerCase()}.${ext}`)
  ).sort();
  assertEquals(files, expected);
  assertEquals(
    await sh("mtype", "-i", img, "::/$WinPEDriver$/viostor/w11/amd64/viostor.inf"),
    "viostor w11 inf",
  );
  // vioscsi stays out (Windows 11 24H2 Setup rejects it unattended); viogpudo waits for the
  // first logon, with the guest agent.
  assert(!drivers.includes("vioscsi"));
  const gini = await sh("mdir", "-i", img, "-b", "-/", "::/gini");
  assertEquals(gini.trim().split("\n").filter((l) => !l.endsWith("/")).sort(), [
    "::/gini/qemu-ga-x86_64.msi",
    "::/gini/viogpudo/viogpudo.cat",
    "::/gini/viogpudo/viogpudo.inf",
    "::/gini/viogpudo/viogpudo.sys",
  ]);
  const msi = await sh("mdir", "-i", img, "::/gini/qemu-ga-x86_64.msi");
  assertMatch(msi, /70 ?000/);
});

Deno.test("bad [windows] input exits 2 naming the file, the key and the next step", async (t) => {
  const cases: [string, string, string, string, string?][] = [
    [
      "an unknown edition",
      'edition = "Enterprise"',
      "windows.edition",
      'no image named "Enterprise"',
    ],
    ["an edition index the ISO lacks", "edition = 7", "windows.edition", "has no image 7"],
    ["a language the image lacks", 'language = "de-DE"', "windows.language", "holds en-US only"],
    [
      "a password too weak for Server",
      'version = "server-2022"',
      "windows.password_file",
      "three of",
    ],
    ["Windows 11 without a TPM, not said", "", "windows.bypass_checks", "without a TPM 2.0"],
  ];
  for (const [name, extra, key, message] of cases) {
    await t.step(name, async () => {
      const root = name.includes("TPM")
        ? await windowsHome(extra, "Str0ng!pass", "")
        : name.includes("weak")
        ? await windowsHome(extra, "short")
        : await windowsHome(extra);
      const out = await runGini(root, ["up", "win.toml", "--no-start"]);
      assertEquals(out.code, 2, out.stderr);
      assertStringIncludes(out.stderr, message);
      assertStringIncludes(out.stderr, `win.toml:${lineOf(root, key)}:`);
      assertStringIncludes(out.stderr, "hint:");
    });
  }
  await t.step("a URL without sha256", async () => {
    const root = await windowsHome();
    const text = await Deno.readTextFile(join(root, "win.toml"));
    await Deno.writeTextFile(
      join(root, "win.toml"),
      text.replace(/^iso = .*$/m, 'iso = "https://example.invalid/Win11.iso"'),
    );
    const out = await runGini(root, ["plan", "win.toml"]);
    assertEquals(out.code, 2, out.stderr);
    assertStringIncludes(out.stderr, "no sha256");
    assertStringIncludes(out.stderr, `win.toml:${lineOf(root, "windows.iso")}:`);
  });
  await t.step("a missing ISO", async () => {
    const root = await windowsHome();
    const text = await Deno.readTextFile(join(root, "win.toml"));
    await Deno.writeTextFile(
      join(root, "win.toml"),
      text.replace(/^iso = .*$/m, 'iso = "gone.iso"'),
    );
    const out = await runGini(root, ["up", "win.toml", "--no-start"]);
    assertEquals(out.code, 2, out.stderr);
    assertStringIncludes(out.stderr, "it does not exist");
    assertStringIncludes(out.stderr, `win.toml:${lineOf(root, "windows.iso")}:`);
  });
});

Deno.test("an ISO given as a URL is downloaded and checked against sha256; a wrong one exits 2 naming windows.sha256", async () => {
  const { iso } = await media;
  const bytes = await Deno.readFile(iso);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response(bytes),
  );
  try {
    const url = `http://127.0.0.1:${server.addr.port}/Win11_24H2_English_x64.iso`;
    const withUrl = async (hash: string) => {
      const root = await windowsHome();
      const text = await Deno.readTextFile(join(root, "win.toml"));
      await Deno.writeTextFile(
        join(root, "win.toml"),
        text.replace(/^iso = .*$/m, `iso = "${url}"\nsha256 = "${hash}"`),
      );
      return { root, out: await runGini(root, ["up", "win.toml", "--no-start"]) };
    };
    const wrong = await withUrl("0".repeat(64));
    assertEquals(wrong.out.code, 2, wrong.out.stderr);
    assertStringIncludes(wrong.out.stderr, `its SHA-256 is ${sha256}`);
    assertStringIncludes(wrong.out.stderr, `win.toml:${lineOf(wrong.root, "windows.sha256")}:`);
    const right = await withUrl(sha256);
    assertEquals(right.out.code, 0, right.out.stderr);
    const xml = await Deno.readTextFile(
      join(right.root, ".local/share/gini/vms/win11/windows/autounattend.xml"),
    );
    assertMatch(xml, /<Key>\/IMAGE\/INDEX<\/Key>\s*<Value>2<\/Value>/);
  } finally {
    await server.shutdown();
  }
});

/** The line of `windows.KEY` in the home's VM file, or of its [windows] table when absent. */
function lineOf(root: string, key: string): number {
  const lines = Deno.readTextFileSync(join(root, "win.toml")).split("\n");
  const name = key.split(".")[1]!;
  const at = lines.findIndex((l) => l.startsWith(`${name} =`));
  return (at >= 0 ? at : lines.indexOf("[windows]")) + 1;
}

const PROFILES: WindowsProfile[] = ["10", "11-23h2", "11-24h2", "server-2022", "server-2025"];

Deno.test("the answer file of each Windows release matches its golden file", async (t) => {
  for (const profile of PROFILES) {
    await t.step(profile, async () => {
      const options: AnswerFileOptions = {
        profile,
        imageIndex: profile.startsWith("server") ? 2 : 6,
        language: "en-US",
        user: "ada",
        password: "Str0ng!pass",
        productKey: profile === "10" ? "VK7JG-NPHTM-C97JM-9MPGT-3V66T" : null,
        timezone: "W. Europe Standard Time",
        computerName: "WIN-TEST",
        firstLogon: ["echo hello > C:\\hello.txt"],
        bypassChecks: profile === "11-23h2",
      };
      const xml = buildAnswerFile(options);
      checkAnswerFile(xml);
      const golden = join(GOLDEN, `autounattend-${profile}.xml`);
      if (UPDATE) await Deno.writeTextFile(golden, xml);
      assertEquals(xml, await Deno.readTextFile(golden));
      const server = profile.startsWith("server");
      assertEquals(xml.includes("<AdministratorPassword>"), server);
      assertEquals(xml.includes("HideOnlineAccountScreens"), !server);
      assertEquals(xml.includes("LabConfig"), profile === "11-23h2");
      assertEquals(xml.includes("<ProductKey>"), profile === "10");
    });
  }
});

Deno.test("obfuscatePassword() is base64 of the UTF-16LE password and element name, as Windows writes it", () => {
  // Windows System Image Manager writes "Password" hidden this way for the password "secret".
  assertEquals(
    obfuscatePassword("secret", "Password"),
    btoa(String.fromCharCode(
      ...new Uint8Array(
        new Uint16Array([..."secretPassword"].map((c) => c.charCodeAt(0))).buffer,
      ),
    )),
  );
  assertEquals(
    obfuscatePassword("pa", "AdministratorPassword"),
    "cABhAEEAZABtAGkAbgBpAHMAdAByAGEAdABvAHIAUABhAHMAcwB3AG8AcgBkAA==",
  );
});

Deno.test("checkAnswerFile() refuses what Gini does not know: an unknown component, a plain-text password, a missing index", async (t) => {
  const xml = buildAnswerFile({
    profile: "11-24h2",
    imageIndex: 1,
    language: "en-US",
    user: "ada",
    password: "x",
    productKey: null,
    timezone: "UTC",
    computerName: "W",
    firstLogon: [],
    bypassChecks: false,
  });
  const cases: [string, string, string][] = [
    ["not well-formed", xml.replace("</unattend>", ""), "well-formed"],
    [
      "an unknown component",
      xml.replace('"Microsoft-Windows-Setup"', '"Microsoft-Windows-Nope"'),
      "unknown component",
    ],
    ["a plain-text password", xml.replace("<PlainText>false", "<PlainText>true"), "plain text"],
    ["an image by name", xml.replace("/IMAGE/INDEX", "/IMAGE/NAME"), "/IMAGE/INDEX"],
    [
      "a wrong architecture",
      xml.replace('processorArchitecture="amd64"', 'processorArchitecture="x86"'),
      "processorArchitecture",
    ],
  ];
  for (const [name, bad, message] of cases) {
    await t.step(name, () => {
      let error: unknown;
      try {
        checkAnswerFile(bad);
      } catch (e) {
        error = e;
      }
      assert(error instanceof Error, "expected a refusal");
      assertStringIncludes(error.message, message);
    });
  }
});

Deno.test("a Windows VM under KVM gets virt-install's Hyper-V enlightenments and no HPET, in argv and domain XML; under TCG none", async () => {
  const root = await Deno.makeTempDir({ prefix: "gini-test-" });
  await Deno.writeTextFile(
    join(root, "w.toml"),
    'name = "w"\nguest = "windows"\n[memory]\nsize = "1G"\n[[disks]]\nsize = "1G"\n',
  );
  const plan = async (host: string[]) => {
    const out = await runGini(root, [...host, "--json", "plan", "w.toml"]);
    assertEquals(out.code, 0, out.stderr);
    const result = JSON.parse(out.stdout);
    const argv: string[] = result.vmDefinition.argv;
    return { argv, cpu: argv[argv.indexOf("-cpu") + 1]!, xml: result.libvirtXml as string };
  };
  const kvm = await plan(["--host-root", join(REPO, "tests/fixtures/hosts/intel-nvidia")]);
  assertEquals(
    kvm.cpu,
    "host,hv-relaxed,hv-vapic,hv-spinlocks=0x1fff,hv-vpindex,hv-runtime,hv-synic,hv-stimer,hv-frequencies,hv-tlbflush,hv-ipi,hv-time,hv-evmcs",
  );
  assertStringIncludes(kvm.xml, '<evmcs state="on"/>');
  // Enlightened VMCS is Intel's: an AMD host gets the rest of the list.
  const amd = await plan(["--host-root", join(REPO, "tests/fixtures/hosts/amd-amd")]);
  assertMatch(amd.cpu, /,hv-ipi,hv-time$/);
  assert(!amd.xml.includes("evmcs"), amd.xml);
  assert(!kvm.cpu.includes("hv-passthrough"));
  assertMatch(kvm.argv[kvm.argv.indexOf("-machine") + 1]!, /,hpet=off$/);
  assertStringIncludes(kvm.xml, '<spinlocks state="on" retries="8191"/>');
  assertStringIncludes(kvm.xml, '<timer name="hypervclock" present="yes"/>');
  const xml = join(root, "w.xml");
  await Deno.writeTextFile(xml, kvm.xml);
  await sh("virt-xml-validate", xml, "domain");
  // Under TCG the enlightenments do not exist.
  await Deno.writeTextFile(
    join(root, "w.toml"),
    'name = "w"\nguest = "windows"\naccel = "tcg"\n[memory]\nsize = "1G"\n[[disks]]\nsize = "1G"\n',
  );
  const tcg = await plan(["--host-root", join(REPO, "tests/fixtures/hosts/intel-nvidia")]);
  assert(!tcg.cpu.includes("hv-"), tcg.cpu);
  assert(!tcg.xml.includes("<hyperv"), tcg.xml);
});

Deno.test("computerName() makes a NetBIOS name of a VM's name", () => {
  assertEquals(computerName("win11"), "win11");
  assertEquals(computerName("my.windows_desktop-2024"), "my-windows-desk");
  assertEquals(computerName("2024"), "W2024");
  assertEquals(computerName("..."), "WINDOWS");
});

Deno.test("gini new --guest windows --iso writes a VM file that plans once its password file is there", async () => {
  const { iso } = await media;
  const root = await Deno.makeTempDir({ prefix: "gini-test-" });
  await Deno.copyFile(iso, join(root, "Win11.iso"));
  const missing = await runGini(root, ["new", "win11", "--guest", "windows"]);
  assertEquals(missing.code, 2);
  assertStringIncludes(missing.stderr, "--iso");
  const made = await runGini(root, ["new", "win11", "--guest", "windows", "--iso", "Win11.iso"]);
  assertEquals(made.code, 0, made.stderr);
  assertStringIncludes(made.stdout, "first line of win11.password");
  const text = await Deno.readTextFile(join(root, "win11.toml"));
  assertStringIncludes(text, 'iso = "Win11.iso"');
  assertMatch(text, /secure_boot = true/);
  assertMatch(text, /\[tpm\]\nenabled = true/);
  // Without the password file the plan names the key and the fix.
  const before = await runGini(root, ["plan", "win11.toml"]);
  assertEquals(before.code, 2, before.stderr);
  assertMatch(before.stderr, /win11\.toml:\d+:1: Cannot read password_file "win11\.password"/);
  assertStringIncludes(before.stderr, "next to win11.toml");
  await Deno.writeTextFile(join(root, "win11.password"), "Str0ng!pass\n", { mode: 0o600 });
  const plan = await runGini(root, ["plan", "win11.toml"]);
  assertEquals(plan.code, 0, plan.stderr);
  assertStringIncludes(plan.stdout + plan.stderr, "The answer file for 11-24h2");
  assertStringIncludes(plan.stdout + plan.stderr, "usb-storage,bus=xhci.0");
});

Deno.test("the Code 43 example keeps working on a Windows 11 VM with [windows], Secure Boot, a TPM and the Hyper-V list", async () => {
  const { iso, virtio } = await media;
  const root = await Deno.makeTempDir({ prefix: "gini-test-" });
  await Deno.writeTextFile(join(root, "win.password"), "Str0ng!pass\n");
  await Deno.writeTextFile(
    join(root, "gpu.toml"),
    `name = "gpu"
guest = "windows"
passthrough = ["0000:01:00.0", "0000:01:00.1"]
[memory]
size = "4G"
[[disks]]
size = "64G"
[firmware]
type = "uefi"
secure_boot = true
[tpm]
enabled = true
[windows]
iso = "${iso}"
password_file = "win.password"
drivers = "${virtio}"
`,
  );
  const out = await runGini(root, [
    "--plugin-dir",
    join(REPO, "plugins/examples"),
    "--host-root",
    join(REPO, "tests/fixtures/hosts/intel-nvidia"),
    "--json",
    "plan",
    "gpu.toml",
  ]);
  assertEquals(out.code, 0, out.stderr);
  const result = JSON.parse(out.stdout);
  const argv: string[] = result.vmDefinition.argv;
  // The Hyper-V list first, then the plugin's patch: KVM hidden, its own vendor id.
  assertMatch(
    argv[argv.indexOf("-cpu") + 1]!,
    /^host,hv-relaxed,.*,hv-time,hv-evmcs,kvm=off,hv-vendor-id=GiniVfio0001$/,
  );
  assertStringIncludes(argv.join(" "), "vfio-pci,host=0000:01:00.0");
  assertStringIncludes(argv.join(" "), "usb-storage,bus=xhci.0");
  assertStringIncludes(result.libvirtXml, '<vendor_id state="on" value="GiniVfio0001"/>');
  assertStringIncludes(result.libvirtXml, '<tpm model="tpm-crb">');
  assertStringIncludes(result.libvirtXml, 'bus="usb" removable="on"');
  const xml = join(root, "gpu.xml");
  await Deno.writeTextFile(xml, result.libvirtXml);
  await sh("virt-xml-validate", xml, "domain");
});
