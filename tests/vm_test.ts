import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { runStages } from "../kernel/mod.ts";
import { loadPlugins } from "../kernel/mod.ts";
import { startScript } from "../plugins/qemu_setup/start_script.ts";
import type { VmDefinition } from "../plugins/qemu_setup/contracts.ts";
import {
  recordingUi,
  REPO,
  runGini,
  sh,
  snapshotTree,
  spawnGini,
  tempEnv,
  tinyGuest,
  tinyVmHome,
  waitFor,
} from "./_helpers.ts";

const HOSTS = join(REPO, "tests/fixtures/hosts");
const UPDATE = Deno.env.get("GINI_UPDATE_GOLDEN") === "1";
const gini = (root: string, ...args: string[]) => runGini(root, args);

/** Fails if `pid` still runs; a zombie waiting for whichever process reaps orphans here is gone. */
async function assertEnded(pid: number, what: string): Promise<void> {
  const state = await Deno.readTextFile(`/proc/${pid}/stat`).then(
    (t) => t.split(") ")[1]![0],
    () => "gone",
  );
  assert(state === "gone" || state === "Z", `${what} is still running (state ${state})`);
}

Deno.test("gini up boots a direct-kernel guest under TCG with disks made by qemu-img; down and rm undo it", async () => {
  const { root } = await tinyVmHome(`[[disks]]
name = "root"
backing = "base.qcow2"
size = "128M"
[[disks]]
name = "data"
size = "32M"
format = "raw"
bus = "sata"
[[network]]
type = "user"
`);
  await sh("qemu-img", "create", "-q", "-f", "qcow2", join(root, "base.qcow2"), "64M");
  const up = await gini(root, "up", "tiny.toml");
  assertEquals(up.code, 0, up.stderr);
  assertStringIncludes(up.stdout, 'VM "tiny" started (pid ');
  const dir = join(root, ".local/share/gini/vms/tiny");
  const rootInfo = JSON.parse(
    await sh("qemu-img", "info", "-U", "--output=json", join(dir, "root.qcow2")),
  );
  assertEquals([rootInfo.format, rootInfo["virtual-size"], rootInfo["backing-filename"]], [
    "qcow2",
    128 * 1024 * 1024,
    join(root, "base.qcow2"),
  ]);
  const dataInfo = JSON.parse(
    await sh("qemu-img", "info", "-U", "--output=json", join(dir, "data.img")),
  );
  assertEquals([dataInfo.format, dataInfo["virtual-size"]], ["raw", 32 * 1024 * 1024]);
  assertMatch(
    await waitFor(join(dir, "serial.log"), "GINI-TINY-GUEST-BOOTED", 120),
    /GINI-TINY-GUEST-BOOTED kernel=\d/,
  );
  const script = await Deno.readTextFile(join(dir, "start.sh"));
  assertStringIncludes(script, "exec qemu-system-x86_64 \\\n  -name tiny,process=gini-tiny \\\n");
  assertEquals((await Deno.stat(join(dir, "start.sh"))).mode! & 0o777, 0o755);

  const listed = JSON.parse((await gini(root, "ls", "--json")).stdout);
  assertEquals(listed.map((v: { name: string; state: string }) => [v.name, v.state]), [[
    "tiny",
    "running",
  ]]);
  const pid = listed[0].pid as number;

  const down = await gini(root, "down", "tiny", "--timeout", "3");
  assertEquals(down.code, 0, down.stderr);
  assertMatch(down.stdout, /VM "tiny" stopped/);
  await assertEnded(pid, "QEMU");

  const refused = await gini(root, "rm", "tiny");
  assertEquals(refused.code, 2);
  assertStringIncludes(refused.stderr, 'Cannot remove VM "tiny" without confirmation');
  const rm = await gini(root, "rm", "tiny", "--yes");
  assertEquals(rm.code, 0, rm.stderr);
  assertEquals(await Deno.stat(dir).then(() => true, () => false), false);
  assertEquals(
    (await Deno.stat(join(root, "base.qcow2"))).isFile,
    true,
    "the backing image is the user's and stays",
  );
});

Deno.test("a UEFI VM with a TPM: OVMF variables copied, swtpm started, the guest kernel finds a TPM 2.0; a rollback leaves nothing", async () => {
  const guest = await tinyGuest();
  const { root } = await tempEnv();
  await Deno.writeTextFile(
    join(root, "ut.toml"),
    `name = "ut"\n[memory]\nsize = "256M"\n[boot]\nkernel = "${guest}/vmlinuz"\ninitrd = "${guest}/initrd.img"\ncmdline = "console=ttyS0"\n[firmware]\ntype = "uefi"\n[tpm]\nenabled = true\n[[disks]]\nsize = "64M"\n`,
  );
  const before = await snapshotTree(root);
  const plan = JSON.parse((await gini(root, "plan", "ut.toml", "--json")).stdout);
  const changing = plan.stages.flatMap((s: { ops: { readOnly: boolean; kind: string }[] }) => s.ops)
    .filter((op: { readOnly: boolean }) => !op.readOnly).map((op: { kind: string }) => op.kind);
  // The last changes start swtpm and QEMU (the history record of the start follows them).
  assertEquals(changing.filter((k: string) => k !== "history.append").slice(-2), [
    "tpm.launch",
    "qemu.launch",
  ]);
  const template = plan.vmDefinition.firmware.varsTemplate as string;

  const up = await gini(root, "up", "ut.toml");
  assertEquals(up.code, 0, up.stderr);
  const dir = join(root, ".local/share/gini/vms/ut");
  // The variables are qcow2 (snapshots include them), converted from the raw template.
  const vars = JSON.parse(
    await sh("qemu-img", "info", "--output=json", "-U", join(dir, "OVMF_VARS.qcow2")),
  );
  assertEquals([vars.format, vars["virtual-size"]], ["qcow2", (await Deno.stat(template)).size]);
  const swtpm = Number(await Deno.readTextFile(join(dir, "swtpm.pid")));
  const log = await waitFor(join(dir, "serial.log"), "GINI-TINY-GUEST-BOOTED", 180);
  // OVMF measured the initrd into the TPM, and Linux found it.
  assertStringIncludes(log, "EFI stub: Measured initrd data into PCR 9");
  assertMatch(log, /tpm_tis \S+: 2\.0 TPM/);
  assert((await Deno.stat(join(dir, "tpm/tpm2-00.permall"))).isFile);
  const down = await gini(root, "down", "ut", "--timeout", "1");
  assertEquals(down.code, 0, down.stderr);
  // swtpm exits with its QEMU.
  await assertEnded(swtpm, "swtpm");
  assertEquals((await gini(root, "rm", "ut", "--yes")).code, 0);
  // What gini rm leaves: the empty vms folder.
  const clean = await snapshotTree(root);
  assertEquals(clean, {
    ...before,
    ".local/": "dir",
    ".local/share/": "dir",
    ".local/share/gini/": "dir",
    ".local/share/gini/vms/": "dir",
  });

  // Killed right after QEMU started: rolling back stops QEMU and swtpm and removes the TPM state.
  const crashed = await runGini(root, ["up", "ut.toml"], {
    GINI_CRASH_AFTER_OP: String(changing.length),
  });
  assertEquals(crashed.code, 137, crashed.stderr);
  const pid = Number(await Deno.readTextFile(join(dir, "swtpm.pid")));
  const qemu = Number(await Deno.readTextFile(join(dir, "qemu.pid")));
  const rolled = await gini(root, "recover", "--rollback");
  assertEquals(rolled.code, 0, rolled.stderr);
  assertEquals(await snapshotTree(root), clean);
  await assertEnded(qemu, "QEMU");
  await assertEnded(pid, "swtpm");
});

Deno.test("gini plan --json lists image.create and the writes of start.sh and vm.xml, and changes nothing", async () => {
  const { root } = await tempEnv();
  await Deno.writeTextFile(join(root, "vm.toml"), 'name = "planned"\n[[disks]]\nsize = "1G"\n');
  const before = await snapshotTree(root);
  const plan = await gini(root, "plan", "vm.toml", "--json");
  assertEquals(plan.code, 0, plan.stderr);
  const report = JSON.parse(plan.stdout);
  const ops = report.stages.flatMap((s: { ops: { kind: string; args: { path?: string } }[] }) =>
    s.ops
  )
    .filter((op: { readOnly: boolean }) => !op.readOnly)
    .map((op: { kind: string; args: { path?: string; name?: string } }) =>
      `${op.kind} ${op.args.path ?? op.args.name}`
    );
  const dir = join(root, ".local/share/gini/vms/planned");
  assertEquals(ops, [
    `fs.mkdir ${dir}`,
    `image.create ${dir}/disk.qcow2`,
    `fs.write ${dir}/start.sh`,
    `fs.write ${dir}/vm.xml`,
    `fs.write ${dir}/vm.json`,
    // Its history: deployed, then started.
    `history.append ${dir}/history.jsonl`,
    "qemu.launch planned",
    `history.append ${dir}/history.jsonl`,
  ]);
  assertEquals(report.vmDefinition.argv[0], "qemu-system-x86_64");
  assertStringIncludes(report.libvirtXml, "<name>planned</name>");
  assertEquals(await snapshotTree(root), before);
  const text = await gini(root, "plan", "vm.toml");
  assertStringIncludes(text.stdout, `  Would create qcow2 disk "${dir}/disk.qcow2" (1.0 GiB)`);
  assertStringIncludes(text.stdout, "QEMU command line (start.sh):\n#!/bin/sh");
  assertStringIncludes(text.stdout, "Domain XML (vm.xml):\n<domain type=");
});

Deno.test("more vCPUs than host threads is a warning with the reason, not a refusal", async () => {
  const { root } = await tempEnv();
  await Deno.writeTextFile(
    join(root, "vm.toml"),
    'name = "x"\n[cpu]\ncores = 64\n[[disks]]\nsize = "1G"\n',
  );
  const plan = await gini(root, "--host-root", join(HOSTS, "intel-nvidia"), "plan", "vm.toml");
  assertEquals(plan.code, 0, plan.stderr);
  assertStringIncludes(
    plan.stderr,
    '"x" gets 64 vCPUs on a host with 20 threads: they will share them and run slower (cpu.cores 20 avoids it)',
  );
  assertStringIncludes(plan.stdout, "-smp 64,sockets=1,cores=64,threads=1");
});

Deno.test("bad VM files are refused with file, line, key and hint, and leave nothing on disk", async (t) => {
  const cases: [string, string, string, RegExp, string][] = [
    [
      "wrong type",
      'name = "x"\n[cpu]\ncores = "two"\n',
      "intel-nvidia",
      /vm\.toml:3:1: Cannot use "cpu\.cores": expected number, found string/,
      'Fix "cpu.cores"',
    ],
    [
      "unknown key",
      'name = "x"\n[memroy]\nsize = "2G"\n',
      "intel-nvidia",
      /vm\.toml:2:1: Cannot use unknown key "memroy"/,
      'Did you mean "memory"?',
    ],
    [
      "bad size",
      'name = "x"\n[memory]\nsize = "lots"\n',
      "intel-nvidia",
      /vm\.toml:3:1: Cannot use "memory\.size": expected a size like/,
      "memory.size",
    ],
    [
      "too much memory",
      'name = "x"\n[memory]\nsize = "1T"\n[[disks]]\nsize = "1G"\n',
      "intel-nvidia",
      /vm\.toml:3:1: Cannot give "x" 1T of memory/,
      "Lower memory.size",
    ],
    [
      "missing backing image",
      'name = "x"\n[[disks]]\nbacking = "nope.qcow2"\n',
      "intel-nvidia",
      /vm\.toml:3:1: Cannot use backing image ".*\/nope\.qcow2": it does not exist/,
      "relative paths start at the VM file's folder",
    ],
    [
      "passthrough device not on the host",
      'name = "x"\npassthrough = ["0000:09:00.0"]\n[[disks]]\nsize = "1G"\n',
      "intel-nvidia",
      /vm\.toml:2:1: Cannot pass through "0000:09:00.0": no such PCI device/,
      "gini check --iommu",
    ],
    [
      "half an IOMMU group",
      'name = "x"\npassthrough = ["0000:01:00.0"]\npassthrough_force = true\n[[disks]]\nsize = "1G"\n',
      "intel-nvidia",
      /Cannot pass through "0000:01:00\.0": its IOMMU group 1 also holds "0000:01:00\.1"/,
      'Add "0000:01:00.1" to passthrough',
    ],
    [
      "the boot GPU without force",
      'name = "x"\npassthrough = ["0000:00:02.0"]\n[[disks]]\nsize = "1G"\n',
      "intel-nvidia",
      /Cannot pass through "0000:00:02\.0": it is the boot display/,
      "passthrough_force",
    ],
    [
      "a bridge the host lacks",
      'name = "x"\n[[disks]]\nsize = "1G"\n[[network]]\ntype = "bridge"\nbridge = "br1"\n',
      "intel-nvidia",
      /vm\.toml:6:1: Cannot find bridge "br1" on the host/,
      'Did you mean "br0"?',
    ],
    [
      "no disk and no kernel",
      'name = "x"\n',
      "intel-nvidia",
      /Cannot boot "x": it has no disk and no kernel/,
      "[[disks]]",
    ],
    [
      "a name too long for QEMU's socket path",
      `name = "${"v".repeat(63)}"\n[[disks]]\nsize = "1G"\n`,
      "intel-nvidia",
      /vm\.toml:1:1: Cannot place the socket ".*\/qmp\.sock": a UNIX socket path holds at most 107 bytes, this one has \d+/,
      "shorter data directory",
    ],
    [
      "KVM asked for on a host without it",
      'name = "x"\naccel = "kvm"\n[[disks]]\nsize = "1G"\n',
      "iommu-off-no-kvm",
      /vm\.toml:2:1: Cannot use KVM/,
      'accel = "auto"',
    ],
  ];
  const noKvm = await Deno.makeTempDir({ prefix: "gini-nokvm-" });
  await sh("cp", "-a", `${join(HOSTS, "iommu-off")}/.`, noKvm);
  await Deno.remove(join(noKvm, "dev/kvm"));
  for (const [name, toml, host, message, hint] of cases) {
    await t.step(name, async () => {
      const { root } = await tempEnv();
      await Deno.writeTextFile(join(root, "vm.toml"), toml);
      const before = await snapshotTree(root);
      const hostRoot = host === "iommu-off-no-kvm" ? noKvm : join(HOSTS, host);
      const result = await gini(root, "--host-root", hostRoot, "up", "vm.toml");
      assertEquals(result.code, 2, result.stderr);
      assertMatch(result.stderr, message);
      assertStringIncludes(result.stderr, hint);
      assertEquals(await snapshotTree(root), before);
    });
  }
});

const EXAMPLES = ["headless-linux", "desktop-spice", "lvm", "passthrough"];

Deno.test("example VM files give domain XML that virt-xml-validate accepts and that matches the golden files", async (t) => {
  // The examples name catalogue images, which a plan does not download: no local image needed.
  const work = await Deno.makeTempDir({ prefix: "gini-examples-" });
  for (const example of EXAMPLES) {
    await t.step(example, async () => {
      const file = join(work, `${example}.toml`);
      await Deno.copyFile(join(REPO, "examples", `${example}.toml`), file);
      const env = await tempEnv(join(HOSTS, "intel-nvidia"));
      const { result } = await runStages({
        env,
        loaded: await loadPlugins(env, []),
        ui: recordingUi(),
        dryRun: true,
        targets: ["qemu-setup:generate-libvirt-xml"],
        seeds: { "session.user_vm_request": { file, text: await Deno.readTextFile(file) } },
      });
      assert(result.ok, result.error?.message);
      const xml = result.context["session.libvirt_xml"] as string;
      const xmlFile = join(work, `${example}.xml`);
      await Deno.writeTextFile(xmlFile, xml);
      const check = await new Deno.Command("virt-xml-validate", {
        args: [xmlFile, "domain"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(
        check.code,
        0,
        new TextDecoder().decode(check.stderr) + new TextDecoder().decode(check.stdout),
      );
      const normal = (text: string) =>
        text.replaceAll(env.dirs.data, "{data}").replaceAll(work, "{examples}").replaceAll(
          join(HOSTS, "intel-nvidia"),
          "{host}",
        );
      const def = result.context["session.vm_definition"] as unknown as VmDefinition;
      const actual = `${normal(startScript(def))}\n${normal(xml)}`;
      const golden = join(REPO, "tests/fixtures/vms", `${example}.expected`);
      if (UPDATE) await Deno.writeTextFile(golden, actual);
      assertEquals(
        actual,
        await Deno.readTextFile(golden),
        "regenerate with GINI_UPDATE_GOLDEN=1 after checking the difference",
      );
    });
  }
});

async function ensureLibvirtd(): Promise<void> {
  const ok = await new Deno.Command("virsh", {
    args: ["-c", "qemu:///system", "version"],
    stdout: "null",
    stderr: "null",
  }).output();
  if (ok.success) return;
  // No init system starts them here (containers, CI): start the daemons the backend needs.
  await sh("libvirtd", "-d");
  await sh("virtlogd", "-d");
  for (let i = 0; i < 40; i++) {
    const up = await new Deno.Command("virsh", {
      args: ["-c", "qemu:///system", "version"],
      stdout: "null",
      stderr: "null",
    }).output();
    if (up.success) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error("libvirtd did not start");
}

/** `gini console NAME --lines 1` with piped input, closed once two more lines have come. */
async function consoleLines(root: string, name: string) {
  const { child, output } = await spawnGini(
    root,
    ["--data-dir", join(root, "data"), "console", name, "--lines", "1"],
    {},
    "piped",
  );
  const deadline = Date.now() + 60_000;
  const log = join(root, "data/vms", name, "serial.log");
  const lines = async () => (await Deno.readTextFile(log)).split("\n").length;
  const start = await lines();
  while (Date.now() < deadline && (await lines()) < start + 3) {
    await new Promise((r) => setTimeout(r, 250));
  }
  await child.stdin.close();
  return await output;
}

Deno.test("the libvirt backend defines, starts, stops and undefines a TCG domain on a real libvirtd", async () => {
  await ensureLibvirtd();
  const guest = await tinyGuest();
  // libvirt runs QEMU as its own user: everything it opens must be reachable by that user.
  const root = await Deno.makeTempDir({ prefix: "gini-libvirt-" });
  await Deno.chmod(root, 0o755);
  await Deno.copyFile(join(guest, "vmlinuz"), join(root, "vmlinuz"));
  await Deno.copyFile(join(guest, "initrd.img"), join(root, "initrd.img"));
  const name = `gini-test-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(
    join(root, "vm.toml"),
    `name = "${name}"\n[memory]\nsize = "256M"\n[boot]\nkernel = "vmlinuz"\ninitrd = "initrd.img"\ncmdline = "console=ttyS0 panic=-1 gini.tick"\n[qemu]\nbackend = "libvirt"\nlibvirt_uri = "qemu:///system"\n`,
  );
  const virsh = (...args: string[]) =>
    new Deno.Command("virsh", {
      args: ["-c", "qemu:///system", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
  try {
    const up = await gini(root, "--data-dir", join(root, "data"), "up", "vm.toml");
    assertEquals(up.code, 0, up.stderr);
    assertEquals(
      new TextDecoder().decode((await virsh("domstate", name)).stdout).trim(),
      "running",
    );
    // gini ls asks libvirt for the state of a libvirt domain.
    const states = async () =>
      JSON.parse((await gini(root, "--data-dir", join(root, "data"), "ls", "--json")).stdout).map(
        (v: { name: string; state: string; backend: string }) => [v.name, v.state, v.backend],
      );
    assertEquals(await states(), [[name, "running", "libvirt"]]);
    await waitFor(join(root, "data/vms", name, "serial.log"), "tick 1 ", 120);
    // gini console reaches the guest's serial port through the socket libvirt's QEMU serves:
    // the guest's counter arrives live, after the log's last line.
    const console = await consoleLines(root, name);
    const ticks = [...console.stdout.matchAll(/^tick (\d+)/gm)].map((m) => Number(m[1]));
    assert(ticks.length >= 2 && ticks.at(-1)! > ticks[0]!, console.stdout + console.stderr);
    assertStringIncludes(console.stderr, `Connected to the serial console of VM "${name}"`);
    const down = await gini(root, "--data-dir", join(root, "data"), "down", name, "--timeout", "3");
    assertEquals(down.code, 0, down.stderr);
    assertEquals(
      new TextDecoder().decode((await virsh("domstate", name)).stdout).trim(),
      "shut off",
    );
    assertEquals(await states(), [[name, "stopped", "libvirt"]]);
    // The lifecycle commands drive libvirt (virsh start/suspend/resume/destroy), not QMP.
    const life = (...args: string[]) => gini(root, "--data-dir", join(root, "data"), ...args, name);
    const domstate = async () =>
      new TextDecoder().decode((await virsh("domstate", name)).stdout).trim();
    assertEquals((await life("start")).code, 0);
    assertEquals(await domstate(), "running");
    assertEquals((await life("pause")).code, 0);
    assertEquals(await domstate(), "paused");
    assertEquals(await states(), [[name, "paused", "libvirt"]]);
    assertEquals((await life("resume")).code, 0);
    assertEquals(await domstate(), "running");
    assertEquals((await life("kill")).code, 0);
    assertEquals(await domstate(), "shut off");
    const history = JSON.parse((await life("history", "--json")).stdout) as {
      records: { event: string }[];
    };
    assertEquals(history.records.map((r) => r.event), [
      "deployed",
      "started",
      "stopped",
      "started",
      "paused",
      "resumed",
      "killed",
    ]);
    const rm = await gini(root, "--data-dir", join(root, "data"), "rm", name, "--yes");
    assertEquals(rm.code, 0, rm.stderr);
    assertEquals((await virsh("dominfo", name)).code, 1, "the domain is undefined");
  } finally {
    await virsh("destroy", name);
    await virsh("undefine", name);
  }
});

Deno.test("gini new writes a commented VM file sized for the host that gini plan accepts; gini schema vm prints JSON Schema", async () => {
  const { root } = await tempEnv();
  const made = await gini(root, "--host-root", join(HOSTS, "amd-amd"), "new", "box");
  assertEquals(made.code, 0, made.stderr);
  const text = await Deno.readTextFile(join(root, "box.toml"));
  assertStringIncludes(text, "# Sizes were chosen from this host: 32 threads, 62.7 GiB RAM, KVM.");
  assertStringIncludes(text, "cores = 8\n");
  assertStringIncludes(text, 'size = "8G"\n');
  const again = await gini(root, "new", "box");
  assertEquals(again.code, 2);
  assertStringIncludes(again.stderr, 'box.toml": it exists');
  const plan = await gini(root, "--host-root", join(HOSTS, "amd-amd"), "plan", "box.toml");
  assertEquals(plan.code, 0, plan.stderr);

  const schema = JSON.parse((await gini(root, "schema", "vm")).stdout);
  assertEquals(schema.title, "Gini VM");
  assertEquals(schema.properties.guest.enum, ["linux", "macos", "windows", "other"]);
  assertEquals(schema.required, ["name"]);
  assertEquals(schema.additionalProperties, false);
});
