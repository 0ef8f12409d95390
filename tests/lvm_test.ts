import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { loadPlugins, resolveStartupEnv, runStages } from "../kernel/mod.ts";
import { recordingUi, runGini, sh, snapshotTree } from "./_helpers.ts";
import { sha256Hex } from "../kernel/ops/_fs.ts";

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

Deno.test("an LVM-backed VM deploy killed after any change: rollback leaves the volume list and tree as before, resume as an uninterrupted run", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "gini-lvm-crash-" });
  const image = join(root, "pv.img");
  const vg = `ginicrash${crypto.randomUUID().slice(0, 8)}`;
  await sh("truncate", "-s", "256M", image);
  const loop = await sh("losetup", "-f", "--show", image);
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runGini(root, args, { GINI_LVM_NO_DM: "1", ...env });
  const tree = async () => {
    const files = await snapshotTree(root);
    delete files["pv.img"];
    for (const [key, value] of Object.entries(files)) {
      if (value !== "dir") files[key] = await sha256Hex(value);
    }
    return { lvs: await lvs(vg), files };
  };
  try {
    await sh("pvcreate", "-q", loop);
    await sh("vgcreate", "-q", vg, loop);
    await Deno.writeTextFile(
      join(root, "vm.toml"),
      `name = "lvm-vm"\n[[disks]]\nname = "root"\nbackend = "lvm"\nvolume_group = "${vg}"\nformat = "raw"\nsize = "64M"\n[[disks]]\nname = "data"\nbackend = "lvm"\nvolume_group = "${vg}"\nformat = "raw"\nsize = "32M"\n`,
    );
    const plan = JSON.parse((await cli(["plan", "vm.toml", "--json"])).stdout);
    const changing = plan.stages.flatMap((s: { ops: { readOnly: boolean; kind: string }[] }) =>
      s.ops
    ).filter((op: { readOnly: boolean; stage: string }) =>
      !op.readOnly && op.stage !== "deploy:start"
    ) as { kind: string }[];
    assertEquals(changing.filter((op) => op.kind === "lvm.create").length, 2);
    const before = await tree();
    const up = await cli(["up", "--no-start", "vm.toml"]);
    assertEquals(up.code, 0, up.stderr);
    assertStringIncludes(up.stdout, 'VM "lvm-vm" created, not started');
    const after = await tree();
    assertEquals(after.lvs.map((l) => l.name), ["gini-lvm-vm-data", "gini-lvm-vm-root"]);
    const reset = async () => {
      const rm = await cli(["rm", "lvm-vm", "--yes"]);
      assertEquals(rm.code, 0, rm.stderr);
      const now = await tree();
      assertEquals(now.lvs, []);
      return now;
    };
    const empty = await reset();
    assertEquals(empty.lvs, before.lvs);

    for (const [i, op] of changing.entries()) {
      for (const variable of ["GINI_CRASH_AFTER_OP", "GINI_CRASH_BEFORE_DONE"]) {
        await t.step(`${variable}=${i + 1} (${op.kind}), then recover --rollback`, async () => {
          const crashed = await cli(["up", "--no-start", "vm.toml"], { [variable]: String(i + 1) });
          assertEquals(crashed.code, 137, crashed.stderr);
          const recovered = await cli(["recover", "--rollback"]);
          assertEquals(recovered.code, 0, recovered.stderr + recovered.stdout);
          assertEquals(await tree(), empty);
        });
      }
      await t.step(`GINI_CRASH_AFTER_OP=${i + 1} (${op.kind}), then recover --resume`, async () => {
        const crashed = await cli(["up", "--no-start", "vm.toml"], {
          GINI_CRASH_AFTER_OP: String(i + 1),
        });
        assertEquals(crashed.code, 137, crashed.stderr);
        const resumed = await cli(["recover", "--resume"]);
        assertEquals(resumed.code, 0, resumed.stderr + resumed.stdout);
        assertEquals(await tree(), after);
        await reset();
      });
    }
  } finally {
    await sh("vgremove", "-q", "-f", vg).catch(() => {});
    await sh("pvremove", "-q", loop).catch(() => {});
    await sh("losetup", "-d", loop).catch(() => {});
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
});
