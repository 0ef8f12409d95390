import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { parse } from "yaml";
import { runGini, sh, tempEnv } from "./_helpers.ts";

async function isoFile(iso: string, name: string, out: string): Promise<string> {
  await sh("xorriso", "-osirrox", "on", "-indev", iso, "-extract", `/${name}`, join(out, name));
  return await Deno.readTextFile(join(out, name));
}

Deno.test("gini up writes a cidata seed ISO beside the VM with valid meta-data, user-data and network-config", async () => {
  const { root } = await tempEnv();
  await sh("qemu-img", "create", "-q", "-f", "qcow2", join(root, "base.qcow2"), "1G");
  await Deno.mkdir(join(root, ".ssh"));
  await Deno.writeTextFile(
    join(root, ".ssh/id_ed25519.pub"),
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGini test@host\n",
  );
  await Deno.writeTextFile(
    join(root, "web.toml"),
    `name = "web"
[memory]
size = "256M"
[[disks]]
size = "2G"
[linux]
image = "base.qcow2"
hostname = "gini-web"
user = "ada"
packages = ["nginx"]
runcmd = ["echo GINI-MARKER > /dev/ttyS0"]
write_files = [{ path = "/etc/motd", content = "hello\\n", permissions = "0644" }]
[linux.network]
addresses = ["192.168.50.10/24"]
gateway = "192.168.50.1"
nameservers = ["192.168.50.1"]
`,
  );
  const plan = JSON.parse((await runGini(root, ["plan", "web.toml", "--json"])).stdout);
  const up = await runGini(root, ["up", "web.toml"]);
  assertEquals(up.code, 0, up.stderr);
  try {
    const dir = join(root, ".local/share/gini/vms/web");
    const iso = join(dir, "seed.iso");
    assertStringIncludes(await sh("xorriso", "-indev", iso, "-pvd_info"), "Volume Id    : cidata");
    const listing = await sh("xorriso", "-indev", iso, "-ls", "/");
    assertEquals(listing.split("\n").filter((l) => l.startsWith("'")).sort(), [
      "'meta-data'",
      "'network-config'",
      "'user-data'",
    ]);
    const out = await Deno.makeTempDir();
    const userData = await isoFile(iso, "user-data", out);
    assert(userData.startsWith("#cloud-config\n"));
    const user = parse(userData);
    assertEquals(user.hostname, "gini-web");
    assertEquals(user.users[0].name, "ada");
    assertEquals(user.users[0].ssh_authorized_keys, [
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGini test@host",
    ]);
    // guest_agent (on by default): the agent and a serial getty come first.
    assertEquals(user.packages, ["qemu-guest-agent", "nginx"]);
    assertEquals(user.runcmd, [
      "systemctl enable --now qemu-guest-agent",
      "systemctl enable --now serial-getty@ttyS0.service",
      "echo GINI-MARKER > /dev/ttyS0",
    ]);
    assertEquals(user.write_files, [{
      path: "/etc/motd",
      content: "hello\n",
      permissions: "0644",
    }]);
    const meta = parse(await isoFile(iso, "meta-data", out));
    assertEquals(meta["local-hostname"], "gini-web");
    assert(/^iid-web-[0-9a-f]{8}$/.test(meta["instance-id"]), meta["instance-id"]);
    const network = parse(await isoFile(iso, "network-config", out));
    assertEquals(network, {
      version: 2,
      ethernets: {
        primary: {
          match: { macaddress: plan.vmDefinition.nics[0].mac },
          "set-name": "eth0",
          dhcp4: false,
          addresses: ["192.168.50.10/24"],
          routes: [{ to: "default", via: "192.168.50.1" }],
          nameservers: { addresses: ["192.168.50.1"] },
        },
      },
    });
    // The root disk overlays the base image; the seed is attached read-only as a CD.
    const info = JSON.parse(
      await sh("qemu-img", "info", "-U", "--output=json", join(dir, "disk.qcow2")),
    );
    assertEquals([info["backing-filename"], info["virtual-size"]], [
      join(root, "base.qcow2"),
      2 * 1024 ** 3,
    ]);
    const script = await Deno.readTextFile(join(dir, "start.sh"));
    assertMatch(
      script,
      new RegExp(`driver=file,node-name=[\\w-]+,filename=${iso},[^ ]*read-only=on`),
    );
    assertMatch(script, /ide-cd,drive=/);
    // The dry run planned the ISO the live run built.
    const planned = plan.stages.flatMap((
      s: { ops: { kind: string; args: { argv?: string[] } }[] },
    ) => s.ops)
      .find((op: { kind: string; args: { argv?: string[] } }) =>
        op.kind === "run" && op.args.argv?.[0] === "xorriso" && op.args.argv?.[1] === "-as"
      );
    assertEquals(planned.args.creates, [iso]);
    // The instance-id is stable for the VM across plans.
    const again = JSON.parse((await runGini(root, ["plan", "web.toml", "--json"])).stdout);
    const metaOp = (p: typeof plan) =>
      p.stages.flatMap((s: { ops: { args: { path?: string; content?: string } }[] }) => s.ops)
        .find((op: { args: { path?: string } }) => op.args.path?.endsWith("cidata/meta-data")).args
        .content;
    assertEquals(metaOp(again), metaOp(plan));
  } finally {
    await runGini(root, ["down", "web", "--timeout", "1"]);
    await runGini(root, ["rm", "web", "--yes"]);
  }
});

Deno.test("an image that does not exist is refused with the file and key", async () => {
  const { root } = await tempEnv();
  await Deno.writeTextFile(join(root, "vm.toml"), 'name = "x"\n[linux]\nimage = "nope.qcow2"\n');
  const result = await runGini(root, ["plan", "vm.toml"]);
  assertEquals(result.code, 2, result.stderr);
  assertStringIncludes(result.stderr, `${join(root, "vm.toml")}: Cannot use image "nope.qcow2"`);
  assertStringIncludes(result.stderr, "Use a catalogue name (debian-12, debian-13");
});

Deno.test("a user-supplied cloud-config is used as is when valid, and refused with file and key when not", async (t) => {
  const cases: [string, string, number, string][] = [
    ["valid", "#cloud-config\nhostname: mine\nruncmd:\n  - [touch, /tmp/x]\n", 0, ""],
    ["no header", "hostname: mine\n", 2, "its first line is not #cloud-config"],
    ["not YAML", "#cloud-config\nhostname: [unclosed\n", 2, "it is not valid YAML"],
    ["a list, not a mapping", "#cloud-config\n- a\n- b\n", 2, "it is not a YAML mapping"],
  ];
  for (const [name, content, code, message] of cases) {
    await t.step(name, async () => {
      const { root } = await tempEnv();
      await sh("qemu-img", "create", "-q", "-f", "qcow2", join(root, "base.qcow2"), "1G");
      await Deno.writeTextFile(join(root, "mine.yaml"), content);
      await Deno.writeTextFile(
        join(root, "vm.toml"),
        'name = "own"\n[linux]\nimage = "base.qcow2"\nuser_data = "mine.yaml"\n',
      );
      const plan = await runGini(root, ["plan", "vm.toml", "--json"]);
      assertEquals(plan.code, code, plan.stderr);
      if (code === 0) {
        const ops = JSON.parse(plan.stdout).stages.flatMap((
          s: { ops: { args: { path?: string; content?: string } }[] },
        ) => s.ops);
        assertEquals(
          ops.find((op: { args: { path?: string } }) => op.args.path?.endsWith("cidata/user-data"))
            .args.content,
          content,
        );
      } else {
        const error = JSON.parse(plan.stdout).error;
        assertStringIncludes(error.message, `Cannot use user_data "mine.yaml": ${message}`);
        assertEquals(error.location, { file: join(root, "vm.toml"), key: "linux.user_data" });
      }
    });
  }
  await t.step("a file outside the VM file's folder", async () => {
    const { root } = await tempEnv();
    await sh("qemu-img", "create", "-q", "-f", "qcow2", join(root, "base.qcow2"), "1G");
    await Deno.writeTextFile(
      join(root, "vm.toml"),
      'name = "own"\n[linux]\nimage = "base.qcow2"\nuser_data = "/etc/hostname"\n',
    );
    const plan = await runGini(root, ["plan", "vm.toml"]);
    assertEquals(plan.code, 2, plan.stderr);
    assertStringIncludes(plan.stderr, "it is outside the folder of the request");
  });
});
