import { assert, assertEquals, assertStringIncludes } from "../../tests/_assert.ts";
import { join } from "node:path";
import { loadPlugins, runStages } from "../../kernel/mod.ts";
import { recordingUi, REPO, runGini, tempEnv } from "../../tests/_helpers.ts";
import type { EnvironmentData } from "./contracts.ts";
import { renderChecks } from "./render.ts";

const HOSTS = join(REPO, "tests/fixtures/hosts");
const UPDATE = Deno.env.get("GINI_UPDATE_GOLDEN") === "1";

async function hostReport(
  hostRoot?: string,
): Promise<{ report: EnvironmentData; warnings: string }> {
  const env = await tempEnv(hostRoot);
  const ui = recordingUi();
  const { result } = await runStages({
    env,
    loaded: await loadPlugins(env, []),
    ui,
    dryRun: true,
    targets: ["env-check:finalize-host-report"],
  });
  assert(result.ok, result.error?.message);
  return {
    report: result.context["session.environment_data"] as EnvironmentData,
    warnings: ui.err.join(""),
  };
}

/** The report without what varies between runs and machines. */
function stable(report: EnvironmentData) {
  const { hostRoot: _root, timings: _timings, ...rest } = report;
  return rest;
}

async function golden(name: string, actual: string): Promise<void> {
  const path = join(HOSTS, `${name}.expected`);
  if (UPDATE) await Deno.writeTextFile(path, actual);
  assertEquals(
    actual,
    await Deno.readTextFile(path),
    `${name}: regenerate with GINI_UPDATE_GOLDEN=1 after checking the difference`,
  );
}

const gpu = (r: EnvironmentData, address: string) => r.gpus.find((g) => g.address === address)!;
const group = (r: EnvironmentData, id: number) =>
  r.iommu.groups.find((g) => g.id === id)!.devices.map((d) => d.address);
const status = (r: EnvironmentData, id: string) => r.checks.find((c) => c.id === id)?.status;

Deno.test("env-check reports each fixture host fully against golden files, with its PASS/WARN/FAIL lines", async (t) => {
  await t.step(
    "intel-nvidia: the GPU and its HDMI audio share group 1 with their root port only; the iGPU boots",
    async () => {
      const { report } = await hostReport(join(HOSTS, "intel-nvidia"));
      assertEquals([report.kvm.present, report.kvm.usable, report.accel, report.cpu.vendor], [
        true,
        true,
        "kvm",
        "intel",
      ]);
      assertEquals(report.iommu.enabled, true);
      assertEquals(group(report, 1), ["0000:00:01.0", "0000:01:00.0", "0000:01:00.1"]);
      assertEquals(gpu(report, "0000:01:00.0"), {
        address: "0000:01:00.0",
        vendor: "10de",
        device: "2484",
        class: "0300",
        bootVga: false,
        driver: "nvidia",
        iommuGroup: 1,
        name: "NVIDIA Corporation GA104 [GeForce RTX 3070]",
        companions: ["0000:01:00.1"],
      });
      assertEquals(status(report, "gpu.0000:01:00.0"), "PASS");
      assertEquals(gpu(report, "0000:00:02.0").bootVga, true);
      assertEquals(report.memory.totalBytes, 32_736_512 * 1024);
      assert(
        report.cpu.flags.includes("vmx") && report.cpu.flags.includes("avx2") &&
          report.cpu.flags.includes("pdpe1gb"),
      );
      await golden(
        "intel-nvidia",
        JSON.stringify(stable(report), null, 2) + "\n\n" +
          renderChecks({ ...report, hostRoot: "{host}" }) + "\n",
      );
    },
  );
  await t.step(
    "amd-amd: Navi 21 behind its own switch, IVRS, 1 GiB huge pages, vfio loaded",
    async () => {
      const { report } = await hostReport(join(HOSTS, "amd-amd"));
      assertEquals([report.cpu.vendor, report.accel, report.iommu.acpiTable], [
        "amd",
        "kvm",
        "IVRS",
      ]);
      assertEquals(report.hugepages, [{ sizeBytes: 2097152, total: 0, free: 0 }, {
        sizeBytes: 1073741824,
        total: 8,
        free: 8,
      }]);
      assertEquals(gpu(report, "0000:0b:00.0").iommuGroup, 20);
      assertEquals(gpu(report, "0000:0b:00.0").companions, ["0000:0b:00.1"]);
      assertEquals(status(report, "modules.vfio"), "PASS");
      assertEquals(status(report, "devices.vhost-net"), "WARN");
      await golden(
        "amd-amd",
        JSON.stringify(stable(report), null, 2) + "\n\n" +
          renderChecks({ ...report, hostRoot: "{host}" }) + "\n",
      );
    },
  );
  await t.step(
    "laptop-hybrid: the Intel iGPU is the boot display, the NVIDIA 3D controller is found too",
    async () => {
      const { report } = await hostReport(join(HOSTS, "laptop-hybrid"));
      assertEquals(report.gpus.map((g) => [g.address, g.class, g.bootVga, g.driver]), [
        ["0000:00:02.0", "0300", true, "i915"],
        ["0000:01:00.0", "0302", false, "nvidia"],
      ]);
      assertEquals(status(report, "kvm.nested"), "WARN");
      await golden(
        "laptop-hybrid",
        JSON.stringify(stable(report), null, 2) + "\n\n" +
          renderChecks({ ...report, hostRoot: "{host}" }) + "\n",
      );
    },
  );
  await t.step(
    "iommu-off: DMAR present but no groups, with the Arch boot-loader hint",
    async () => {
      const { report } = await hostReport(join(HOSTS, "iommu-off"));
      assertEquals([report.iommu.enabled, report.iommu.groups, report.iommu.acpiTable], [
        false,
        [],
        "DMAR",
      ]);
      const check = report.checks.find((c) => c.id === "iommu.enabled")!;
      assertEquals(check.status, "WARN");
      assertStringIncludes(
        check.hint!,
        'Add "intel_iommu=on iommu=pt" to your boot loader\'s kernel command line',
      );
      assertEquals(gpu(report, "0000:01:00.0").iommuGroup, null);
      await golden(
        "iommu-off",
        JSON.stringify(stable(report), null, 2) + "\n\n" +
          renderChecks({ ...report, hostRoot: "{host}" }) + "\n",
      );
    },
  );
  await t.step(
    "shared-group: the GTX 1080 shares group 15 with chipset USB, SATA and network",
    async () => {
      const { report } = await hostReport(join(HOSTS, "shared-group"));
      const check = report.checks.find((c) => c.id === "gpu.0000:07:00.0")!;
      assertEquals(check.status, "WARN");
      assertStringIncludes(
        check.detail,
        '"0000:03:00.0" [1022:43d5], "0000:03:00.1" [1022:43c8], "0000:05:00.0" [10ec:8168]',
      );
      assertEquals(status(report, "gpu.0000:08:00.0"), "PASS");
      assertEquals(status(report, "iommu.interrupt-remapping"), "WARN");
      await golden(
        "shared-group",
        JSON.stringify(stable(report), null, 2) + "\n\n" +
          renderChecks({ ...report, hostRoot: "{host}" }) + "\n",
      );
    },
  );
});

Deno.test("env-check on this machine agrees with what /proc, /sys and /dev say", async () => {
  const { report } = await hostReport();
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  const hardware = /^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo);
  const kvmNode = await Deno.lstat("/dev/kvm").then(() => true, () => false);
  assertEquals(report.kvm.present, kvmNode);
  assertEquals(report.kvm.usable, kvmNode && hardware);
  assertEquals(report.accel, kvmNode && hardware ? "kvm" : "tcg");
  const groups = await Array.fromAsync(Deno.readDir("/sys/kernel/iommu_groups")).catch(() => []);
  assertEquals(report.iommu.groups.length, groups.length);
  assertEquals(report.cpu.threads, (cpuinfo.match(/^processor\s*:/gm) ?? []).length);
  assertEquals(report.notChecked, []);
  assert(report.programs["qemu-img"], "qemu-img is installed by scripts/install-host-deps.sh");
  if (!hardware) assertEquals(status(report, "kvm.usable"), "WARN");
});

Deno.test("env-check turns malformed and missing host files into warnings, never an exception", async () => {
  const root = await Deno.makeTempDir({ prefix: "gini-broken-host-" });
  await new Deno.Command("cp", { args: ["-a", `${join(HOSTS, "intel-nvidia")}/.`, root] }).output();
  const cpuinfo = await Deno.readTextFile(join(root, "proc/cpuinfo"));
  await Deno.writeTextFile(join(root, "proc/cpuinfo"), cpuinfo.slice(0, 40));
  await Deno.remove(join(root, "proc/meminfo"));
  const nvme = join(root, "sys/devices/pci0000:00/0000:00:06.0/0000:02:00.0");
  await Deno.remove(join(nvme, "driver"));
  await Deno.symlink("../../../../bus/pci/drivers/missing-driver-dir/gone", join(nvme, "driver"));
  await Deno.writeTextFile(join(nvme, "uevent"), "PCI_CLASS=not-hex\n");
  await Deno.remove(join(nvme, "class"));
  await Deno.mkdir(join(nvme, "class"));
  await Deno.writeTextFile(
    join(root, "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"),
    "garbage\n",
  );

  const { report } = await hostReport(root);
  assertEquals([report.cpu.threads, report.cpu.flags, report.kvm.usable, report.accel], [
    1,
    [],
    false,
    "tcg",
  ]);
  assertEquals(report.memory.totalBytes, 0);
  assertEquals(report.hugepages[0]!.total, 0);
  assert(!report.pci.some((d) => d.address === "0000:02:00.0"));
  const warnings = report.warnings.join("\n");
  assertStringIncludes(
    warnings,
    'Cannot find CPU flags in "/proc/cpuinfo": the file looks truncated',
  );
  assertStringIncludes(warnings, 'Cannot find "/proc/meminfo"');
  assertStringIncludes(
    warnings,
    'Cannot read "/sys/devices/pci0000:00/0000:00:06.0/0000:02:00.0/class": IsADirectory',
  );
  assertStringIncludes(
    warnings,
    'IOMMU group 2 lists "0000:02:00.0", which is not among the PCI devices',
  );
});

Deno.test("gini check exits 1 when a check fails and prints the documented JSON contract", async () => {
  const root = await Deno.makeTempDir({ prefix: "gini-user-host-" });
  await new Deno.Command("cp", { args: ["-a", `${join(HOSTS, "amd-amd")}/.`, root] }).output();
  await Deno.writeTextFile(
    join(root, "proc/self/status"),
    "Name:\tgini\nUid:\t1000\t1000\t1000\t1000\n",
  );
  await Deno.chmod(join(root, "dev/kvm"), 0o660);
  const env = await tempEnv();
  const run = (...args: string[]) => runGini(env.root, ["check", "--host-root", root, ...args]);
  const text = await run();
  assertEquals(text.code, 1);
  assertStringIncludes(
    text.stdout,
    "FAIL  KVM device is accessible: this user cannot open /dev/kvm\n      hint: Add yourself to the kvm group",
  );
  const json = await run("--json");
  assertEquals(json.code, 1);
  const report = JSON.parse(json.stdout);
  assertEquals([report.kvm.present, report.kvm.usable, report.accel, report.cpu.vendor], [
    true,
    false,
    "tcg",
    "amd",
  ]);
  assert(
    Array.isArray(report.cpu.flags) && typeof report.memory.totalBytes === "number" &&
      Array.isArray(report.hugepages),
  );
  assertEquals(report.iommu.enabled, true);
  assertEquals(Object.keys(report.iommu.groups[0]), ["id", "devices"]);
  assertEquals(Object.keys(report.iommu.groups[0].devices[0]), [
    "address",
    "vendor",
    "device",
    "class",
    "driver",
  ]);
  assertEquals(Object.keys(report.gpus[0]).slice(0, 7), [
    "address",
    "vendor",
    "device",
    "class",
    "bootVga",
    "driver",
    "iommuGroup",
  ]);
  const iommu = await run("--iommu");
  assertStringIncludes(
    iommu.stdout,
    "IOMMU group 20:\n  0b:00.0 VGA compatible controller [0300]: Advanced Micro Devices, Inc. [AMD/ATI] Navi 21 [Radeon RX 6800/6800 XT / 6900 XT] [1002:73bf] (rev c1)  driver: amdgpu",
  );
});

Deno.test("scripts/capture-host.sh captures this host so that a check of the copy matches the live check", async () => {
  const out = await Deno.makeTempDir({ prefix: "gini-capture-" });
  const capture = await new Deno.Command("bash", {
    args: [join(REPO, "scripts/capture-host.sh"), out],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  assertEquals(capture.code, 0, new TextDecoder().decode(capture.stderr));
  const live = (await hostReport()).report;
  const copy = (await hostReport(out)).report;
  assertEquals(copy.cpu, live.cpu);
  assertEquals(copy.kvm, live.kvm);
  assertEquals(copy.memory.totalBytes, live.memory.totalBytes);
  assertEquals(
    copy.hugepages.map((h) => [h.sizeBytes, h.total]),
    live.hugepages.map((h) => [h.sizeBytes, h.total]),
  );
  assertEquals(copy.pci, live.pci);
  assertEquals(copy.gpus, live.gpus);
  assertEquals(copy.iommu.groups, live.iommu.groups);
  assertEquals(copy.modules, live.modules);
  assertEquals(copy.devices, live.devices);
  assertEquals(copy.firmware, live.firmware);
  assertEquals(copy.network, live.network);
  assertEquals(copy.os, live.os);
  assertEquals(copy.notChecked, ["programs", "lvm"]);
});
