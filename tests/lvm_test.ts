import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { loadPlugins, resolveStartupEnv, runStages } from "../kernel/mod.ts";
import { recordingUi, runGini, sh } from "./_helpers.ts";

async function lvs(vg: string): Promise<{ name: string; size: number }[]> {
  const out = await sh(
    "lvs",
    "--driverloaded",
    "n",
    "--reportformat",
    "json",
    "--units",
    "b",
    "--nosuffix",
    "-o",
    "lv_name,lv_size",
    vg,
  );
  return (JSON.parse(out).report[0].lv as { lv_name: string; lv_size: string }[]).map((l) => ({
    name: l.lv_name,
    size: Number(l.lv_size),
  }));
}

Deno.test("an LVM-backed VM disk is created with lvcreate and removed with lvremove on a loop-device volume group", async () => {
  const root = await Deno.makeTempDir({ prefix: "gini-lvm-" });
  const image = join(root, "pv.img");
  const vg = `ginitest${crypto.randomUUID().slice(0, 8)}`;
  await sh("truncate", "-s", "256M", image);
  const loop = await sh("losetup", "-f", "--show", image);
  try {
    await sh("pvcreate", "-q", loop);
    await sh("vgcreate", "-q", vg, loop);
    await Deno.writeTextFile(
      join(root, "vm.toml"),
      `name = "lvm-vm"\n[[disks]]\nname = "root"\nbackend = "lvm"\nvolume_group = "${vg}"\nformat = "raw"\nsize = "64M"\n`,
    );
    const processEnv = { HOME: root, PATH: Deno.env.get("PATH"), GINI_LVM_NO_DM: "1" };
    const env = resolveStartupEnv({}, processEnv, root);
    const text = await Deno.readTextFile(join(root, "vm.toml"));
    const { result } = await runStages({
      env,
      loaded: await loadPlugins(env, []),
      ui: recordingUi(),
      dryRun: false,
      targets: ["deploy:write-files"],
      seeds: { "session.user_vm_request": { file: join(root, "vm.toml"), text } },
    });
    assert(result.ok, result.error?.message);
    assertEquals(await lvs(vg), [{ name: "gini-lvm-vm-root", size: 64 * 1024 * 1024 }]);
    const xml = await Deno.readTextFile(join(env.dirs.data, "vms/lvm-vm/vm.xml"));
    assertStringIncludes(xml, `<disk type="block" device="disk">`);
    assertStringIncludes(xml, `<source dev="/dev/${vg}/gini-lvm-vm-root"/>`);

    const tooBig = text.replace('size = "64M"', 'size = "1G"');
    await Deno.writeTextFile(
      join(root, "big.toml"),
      tooBig.replace('name = "lvm-vm"', 'name = "big"'),
    );
    const cli = (...args: string[]) => runGini(root, args, { GINI_LVM_NO_DM: "1" });
    const refused = await cli("plan", "big.toml");
    assertEquals(refused.code, 2);
    assertStringIncludes(refused.stderr, `Cannot create 1G in "${vg}": it has 0.2 GiB free`);

    const rm = await cli("rm", "lvm-vm", "--yes");
    assertEquals(rm.code, 0, rm.stderr);
    assertEquals(await lvs(vg), []);
  } finally {
    await sh("vgremove", "-q", "-f", vg).catch(() => {});
    await sh("pvremove", "-q", loop).catch(() => {});
    await sh("losetup", "-d", loop).catch(() => {});
  }
});
