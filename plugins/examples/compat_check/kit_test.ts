/**
 * compat-check, tested with the kit: its stage on a host tree with and without virtualization,
 * planned and run live against a temporary root, and its preflight veto.
 */
import {
  assertDependenciesResolved,
  KitAssertionError,
  loadPlugin,
  test,
} from "../../../workers/testing.ts";

const plugin = await loadPlugin(new URL(".", import.meta.url));
const HOST = {
  "/proc/cpuinfo": "processor\t: 0\nflags\t\t: fpu vme vmx sse2\n",
  "/proc/sys/kernel/osrelease": "6.1.0-kit\n",
};

test("compat-check:write-report plans its directory and report, and writes a valid key", async () => {
  const run = await plugin.stage("write-report", { files: HOST });
  run.assertSucceeded();
  run.assertOp(/Would create directory ".*\/data\/reports"/, { kind: "fs.mkdir" });
  run.assertOp("compat.txt", { kind: "fs.write" });
  run.assertWrote("compat.report", {
    path: `${run.sandbox.dirs.data}/reports/compat.txt`,
    virtualization: "vmx",
    kernel: "6.1.0-kit",
  });
});

test("compat-check:write-report run live writes the report under the data directory", async () => {
  const run = await plugin.stage("write-report", { files: HOST, live: true });
  run.assertSucceeded();
  const text = await Deno.readTextFile(`${run.sandbox.dirs.data}/reports/compat.txt`);
  if (text !== "kernel: 6.1.0-kit\nvirtualization: vmx\n") {
    throw new KitAssertionError(`The report reads ${JSON.stringify(text)}`);
  }
});

test("compat-check warns when the CPU offers no virtualization", async () => {
  const run = await plugin.stage("write-report", {
    files: { ...HOST, "/proc/cpuinfo": "flags\t\t: fpu sse2\n" },
  });
  run.assertMessage("warn", "guests will run under TCG");
  run.assertWrote("compat.report");
});

test("compat-check's preflight vetoes a host whose cpuinfo lists no flags", async () => {
  const run = await plugin.preflight({ files: { "/proc/cpuinfo": "processor\t: 0\n" } });
  run.assertSucceeded();
  if (run.veto !== "/proc/cpuinfo lists no CPU flags") {
    throw new KitAssertionError(`The veto was ${JSON.stringify(run.veto)}`);
  }
});

test("compat-check needs no other plugin", async () => {
  await assertDependenciesResolved(plugin, []);
});
