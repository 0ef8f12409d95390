/**
 * `on_pre_vm_start` patches through the real entry point: a third-party plugin may change the
 * hypervisor flags, CPU model and features and the display; anything more needs a grant in its
 * manifest's `[events] vm_patch`, and even granted, disk paths stay inside the VM's folder. A
 * refused patch fails the run naming the plugin, and what it tried never reaches the plan.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { FIXTURE_PLUGINS, REPO, runGini, snapshotTree, tempEnv } from "./_helpers.ts";

const HOST = ["--host-root", join(REPO, "tests/fixtures/hosts/intel-nvidia")];
const PATCHER = join(FIXTURE_PLUGINS, "vm_patcher");
const GRANTED = join(FIXTURE_PLUGINS, "vm_patcher_granted");

/** A home with the VM file `<name>.toml` (one 1 GiB disk, BIOS), and what is in it. */
async function homeWith(name: string) {
  const { root } = await tempEnv();
  await Deno.writeTextFile(
    join(root, `${name}.toml`),
    `name = "${name}"\n[firmware]\ntype = "bios"\n[[disks]]\nsize = "1G"\n`,
  );
  return { root, before: await snapshotTree(root) };
}

/**
 * `gini [--json] plan` (or `up --dry-run`) of the VM `name` with the plugin folder `plugin`; without
 * `--json` an error goes to stderr and the plan to stdout.
 */
async function run(plugin: string, name: string, verb: string[] = ["plan"], json = false) {
  const { root, before } = await homeWith(name);
  const out = await runGini(root, [
    "--plugin-dir",
    plugin,
    ...(json ? ["--json"] : []),
    ...HOST,
    ...verb,
    `${name}.toml`,
  ]);
  const after = await snapshotTree(root);
  await Deno.remove(root, { recursive: true });
  return { ...out, unchanged: JSON.stringify(after) === JSON.stringify(before) };
}

Deno.test("an ungranted on_pre_vm_start patch of extraArgs fails the plan naming the plugin, and the argument never reaches it", async (t) => {
  for (const verb of [["plan"], ["up", "--dry-run"]]) {
    await t.step(verb.join(" "), async () => {
      const out = await run(PATCHER, "tap", verb);
      assertEquals(out.code, 1, out.stderr);
      assertStringIncludes(
        out.stderr,
        'Cannot apply the on_pre_vm_start patch of plugin "vm-patcher": it changes "extraArgs"',
      );
      assertStringIncludes(
        out.stderr,
        `add "extra_args" to [events] vm_patch in ${join(PATCHER, "plugin.toml")}`,
      );
      assert(!out.stdout.includes("script="), out.stdout);
      assert(!out.stdout.includes("QEMU command line"), "no plan was printed");
      assert(out.unchanged, "the run changed the home");
    });
  }
});

Deno.test("an ungranted patch that makes /etc/shadow a disk is refused; its path is not in the plan", async () => {
  const out = await run(PATCHER, "shadow");
  assertEquals(out.code, 1, out.stderr);
  assertStringIncludes(out.stderr, 'plugin "vm-patcher": it changes "disks"');
  assertStringIncludes(out.stderr, `add "disks" to [events] vm_patch in`);
  assert(!out.stdout.includes("/etc/shadow"), out.stdout);
  assert(!out.stdout.includes("QEMU command line"), "no plan was printed");
});

Deno.test("a reply that forges the kernel's attestation is still judged as its own plugin's", async () => {
  const out = await run(PATCHER, "forged");
  assertEquals(out.code, 1, out.stderr);
  assertStringIncludes(out.stderr, 'plugin "vm-patcher": it changes "extraArgs"');
  assert(!out.stdout.includes("script="), out.stdout);
});

Deno.test("a patch of memory without the grant names the scope to add", async () => {
  const out = await run(PATCHER, "memory");
  assertEquals(out.code, 1, out.stderr);
  assertStringIncludes(out.stderr, 'it changes "memory"');
  assertStringIncludes(out.stderr, 'add "memory" to [events] vm_patch in');
});

Deno.test("every subscriber may hide KVM and change CPU features: the patch reaches the argv", async () => {
  const out = await run(PATCHER, "hidden", ["plan"], true);
  assertEquals(out.code, 0, out.stderr);
  const def = JSON.parse(out.stdout).vmDefinition;
  assertEquals(def.hypervisor, { kvmHidden: true, hypervVendorId: "GiniTest0001" });
  const cpu: string = def.argv[def.argv.indexOf("-cpu") + 1];
  assert(cpu.includes(",-hypervisor,kvm=off,hv-vendor-id=GiniTest0001"), cpu);
});

Deno.test('with vm_patch = ["extra_args", "disks"] granted', async (t) => {
  await t.step("a harmless extra argument is accepted and appears in the argv", async () => {
    const out = await run(GRANTED, "harmless", ["plan"], true);
    assertEquals(out.code, 0, out.stderr);
    const def = JSON.parse(out.stdout).vmDefinition;
    assertEquals(def.extraArgs, ["-no-reboot"]);
    assertEquals(def.argv.at(-1), "-no-reboot");
  });
  await t.step("a disk at /etc/shadow is still refused", async () => {
    const out = await run(GRANTED, "shadow");
    assertEquals(out.code, 1, out.stderr);
    assertStringIncludes(
      out.stderr,
      'plugin "vm-patcher-granted": disks[0].path "/etc/shadow" is outside the VM\'s folder',
    );
    assert(!out.stdout.includes("/etc/shadow"), out.stdout);
  });
  await t.step("a disk path climbing out of the VM's folder with .. is refused", async () => {
    const out = await run(GRANTED, "climb");
    assertEquals(out.code, 1, out.stderr);
    assertStringIncludes(out.stderr, 'plugin "vm-patcher-granted": disks[0].path');
    assertStringIncludes(out.stderr, "is outside the VM's folder");
  });
  await t.step("a disk inside the VM's folder is accepted", async () => {
    const out = await run(GRANTED, "sibling", ["plan"], true);
    assertEquals(out.code, 0, out.stderr);
    const def = JSON.parse(out.stdout).vmDefinition;
    assertEquals(def.disks[0].path, join(def.paths.dir, "second.qcow2"));
  });
  await t.step("memory is still not granted", async () => {
    const out = await run(GRANTED, "memory");
    assertEquals(out.code, 1, out.stderr);
    assertStringIncludes(out.stderr, 'add "memory" to [events] vm_patch in');
  });
});

Deno.test("gini plugins info says in words what a plugin's on_pre_vm_start patches may change", async () => {
  const { root } = await tempEnv();
  const granted = await runGini(root, [
    "--plugin-dir",
    GRANTED,
    "plugins",
    "info",
    "vm-patcher-granted",
  ]);
  assertEquals(granted.code, 0, granted.stderr);
  assertStringIncludes(granted.stdout, "  VM definition patches (on_pre_vm_start):\n");
  assertStringIncludes(granted.stdout, "any extra QEMU argument");
  assertStringIncludes(granted.stdout, "disks");
  const plain = await runGini(root, ["--plugin-dir", PATCHER, "plugins", "info", "vm-patcher"]);
  assertEquals(plain.code, 0, plain.stderr);
  assertStringIncludes(plain.stdout, "hypervisor flags, CPU model and features, display only");
  const json = await runGini(root, [
    "--json",
    "--plugin-dir",
    GRANTED,
    "plugins",
    "info",
    "vm-patcher-granted",
  ]);
  assertEquals(JSON.parse(json.stdout).vmPatch, ["extra_args", "disks"]);
  await Deno.remove(root, { recursive: true });
});
