/**
 * macos-recovery, tested with the kit: for a macOS VM file it plans the recovery session with
 * Apple's server, the image's download (verified against its chunklist) and its conversion, all
 * into Gini's cache, and writes session.macos_recovery valid against its contract.
 */
import { KitAssertionError, loadPlugin, test } from "../../workers/testing.ts";

const plugin = await loadPlugin(new URL(".", import.meta.url));
const qemuSetup = await loadPlugin(new URL("../qemu_setup/", import.meta.url));
const VM = 'name = "mac"\nguest = "macos"\n\n[macos]\nversion = "sonoma"\n';

test("macos-recovery:prepare plans Sonoma's recovery image into the cache", async () => {
  const loaded = await qemuSetup.stage("load-vm-config-toml", { vm: VM });
  const config = loaded.assertWrote("qemu_setup.config");
  // Its settings (<config>/macos.toml) are read through ctx.host, so the host tree is the real /.
  const run = await plugin.stage("prepare", {
    hostRoot: "/",
    context: { "qemu_setup.config": config },
  });
  run.assertSucceeded();
  run.assertOp("Would ask http://osrecovery.apple.com for the macOS Sonoma recovery image");
  run.assertOp(/Would download "http:\/\/oscdn\.apple\.com\/.*" into the cache/, {
    kind: "download",
  });
  run.assertOp(/against its signed chunklist/);
  const image = `${run.sandbox.dirs.cache}/macos/sonoma/BaseSystem.img`;
  run.assertOp(`Would run qemu-img convert -O raw`);
  run.assertWrote("session.macos_recovery", {
    path: image,
    sizeBytes: null,
    release: "sonoma",
    cached: false,
  });
  const outside = run.ops.filter((op) =>
    op.kind === "fs.mkdir" && !JSON.stringify(op.args).includes(run.sandbox.dirs.cache)
  );
  if (outside.length) {
    throw new KitAssertionError(`It planned folders outside the cache: ${JSON.stringify(outside)}`);
  }
});
