import { assertEquals, assertMatch } from "./_assert.ts";
import { join } from "node:path";
import { REPO, runGini, sh, tempEnv } from "./_helpers.ts";

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function until<T>(
  what: string,
  seconds: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`${what} did not happen within ${seconds} s`);
}

Deno.test({
  name:
    "gini up boots a Debian cloud image whose real cloud-init applies the seed; ssh through the port forward works",
  // The guest runs under TCG: building it takes about two minutes once, booting about a minute.
  sanitizeResources: false,
  fn: async () => {
    const guest = await sh("bash", join(REPO, "scripts/build-test-guest.sh"));
    const { root } = await tempEnv();
    await sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", join(root, "key"));
    const port = freePort();
    const publicKey = (await Deno.readTextFile(join(root, "key.pub"))).trim();
    await Deno.writeTextFile(
      join(root, "e2e.toml"),
      `name = "e2e"
[cpu]
cores = 2
[memory]
size = "1G"
[boot]
kernel = "${guest}/vmlinuz"
initrd = "${guest}/initrd.img"
cmdline = "root=/dev/vda rw console=ttyS0"
[linux]
image = "${guest}/debian.qcow2"
hostname = "gini-e2e"
user = "tester"
ssh_authorized_keys = ["${publicKey}"]
runcmd = ["echo GINI-E2E-MARKER $(hostname) > /dev/ttyS0"]
[[network]]
forwards = [{ host = ${port}, guest = 22 }]
`,
    );
    const up = await runGini(root, ["up", "e2e.toml"]);
    assertEquals(up.code, 0, up.stderr);
    try {
      const log = join(root, ".local/share/gini/vms/e2e/serial.log");
      const marker = await until("the runcmd marker on the serial console", 300, async () => {
        const text = await Deno.readTextFile(log).catch(() => "");
        return text.match(/GINI-E2E-MARKER \S+/)?.[0];
      });
      assertEquals(marker, "GINI-E2E-MARKER gini-e2e");
      const hostname = await until("an ssh login through the port forward", 180, async () => {
        const out = await new Deno.Command("ssh", {
          args: [
            "-i",
            join(root, "key"),
            "-p",
            String(port),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=30",
            "tester@127.0.0.1",
            "hostname",
          ],
          stdout: "piped",
          stderr: "null",
        }).output();
        return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
      });
      assertEquals(hostname, "gini-e2e");
    } finally {
      const down = await runGini(root, ["down", "e2e", "--timeout", "20"]);
      assertMatch(down.stdout, /VM "e2e" (stopped|is not running)/);
      const rm = await runGini(root, ["rm", "e2e", "--yes"]);
      assertEquals(rm.code, 0, rm.stderr);
    }
  },
});
