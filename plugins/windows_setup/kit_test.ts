/**
 * windows-setup, tested with the kit: a VM file's [windows] table is read with the password file
 * beside it (through file.read, limited to the VM file's folder), and a missing password file is
 * refused naming windows.password_file.
 */
import { loadPlugin, test } from "../../workers/testing.ts";

const plugin = await loadPlugin(new URL(".", import.meta.url));
const qemuSetup = await loadPlugin(new URL("../qemu_setup/", import.meta.url));
const VM = [
  'name = "win"',
  'guest = "windows"',
  "",
  "[windows]",
  'iso = "/isos/win11.iso"',
  'password_file = "password.txt"',
  "",
].join("\n");

async function qemuConfig() {
  return (await qemuSetup.stage("load-vm-config-toml", { vm: VM })).assertWrote(
    "qemu_setup.config",
  );
}

test("windows-setup:load-config-toml reads [windows] and the password file beside the VM file", async () => {
  const run = await plugin.stage("load-config-toml", {
    vm: VM,
    beside: { "password.txt": "correct horse\n" },
    context: { "qemu_setup.config": await qemuConfig() },
  });
  run.assertSucceeded();
  run.assertOp(/Would read ".*\/password\.txt"/, { kind: "file.read" });
  run.assertWrote("windows_setup.config");
});

test("windows-setup:load-config-toml refuses a password file that is not there", async () => {
  const run = await plugin.stage("load-config-toml", {
    vm: VM,
    context: { "qemu_setup.config": await qemuConfig() },
  });
  run.assertFailed('Cannot read password_file "password.txt"');
});
