/**
 * vfio, tested with the kit on a fixture host (tests/fixtures/hosts/intel-nvidia and its golden
 * host report): `gini vfio plan`'s stage plans the modprobe file, the initramfs and GRUB edits
 * and the rebuilds inside that root, and refuses a run that names no device.
 */
import { fileURLToPath } from "node:url";
import { KitAssertionError, loadPlugin, test } from "../../workers/testing.ts";

const plugin = await loadPlugin(new URL(".", import.meta.url));
const HOST = fileURLToPath(new URL("../../tests/fixtures/hosts/intel-nvidia", import.meta.url));
const golden = await Deno.readTextFile(`${HOST}.expected`);
// The golden file is the host report as JSON, then the same report as text.
const environment = JSON.parse(golden.slice(0, golden.indexOf("\n}\n") + 2));

test("vfio:configure plans the GPU's binding inside the host root", async () => {
  const run = await plugin.stage("configure", {
    hostRoot: HOST,
    command: { path: "vfio plan", flags: { device: ["0000:01:00.0"] } },
    context: { "session.environment_data": environment },
  });
  run.assertSucceeded();
  run.assertOp(/Would create file ".*\/etc\/modprobe\.d\/gini-vfio\.conf"/, { kind: "fs.edit" });
  run.assertOp(/Would edit file ".*\/etc\/default\/grub"/, { kind: "fs.edit" });
  run.assertOp(`Would run chroot ${HOST} update-initramfs -u -k all`);
  const plan = run.assertWrote<{ devices: { address: string }[] }>("vfio.plan");
  // The GPU's audio function shares its IOMMU group, so it is bound too.
  const addresses = plan.devices.map((d) => d.address);
  if (addresses.join(" ") !== "0000:01:00.0 0000:01:00.1") {
    throw new KitAssertionError(`vfio.plan binds ${addresses.join(", ")}`);
  }
});

test("vfio:configure refuses a run that names no device", async () => {
  const run = await plugin.stage("configure", {
    hostRoot: HOST,
    command: { path: "vfio plan", flags: {} },
    context: { "session.environment_data": environment },
  });
  run.assertFailed("Cannot plan VFIO without devices");
  if (run.ops.length) throw new KitAssertionError(`It planned ${run.plan.join("; ")}`);
});
