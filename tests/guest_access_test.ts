/**
 * Getting into real guests under TCG: `gini console` (through a pseudo-terminal made by
 * script(1), as a user at a terminal), `gini ssh` and `gini exec`. The Debian cloud-init guest
 * (scripts/build-test-guest.sh, with openssh-server and qemu-guest-agent) boots once for all of
 * its steps; the tiny busybox guest has no agent and no getty.
 *
 * @module
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { DENO_DIR, REPO, runGini, sh, tempEnv, tinyVmHome } from "./_helpers.ts";
import { giniRunFlags } from "../scripts/compile.ts";

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** `gini …` inside a pseudo-terminal (script(1)): stdin is a terminal, as for a user. */
class TerminalSession {
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #text = "";
  #changed: () => void = () => {};
  readonly done: Promise<{ code: number; text: string }>;

  constructor(home: string, flags: string[], args: string[]) {
    const command = [Deno.execPath(), "run", ...flags, join(REPO, "main.ts"), ...args]
      .map((w) => `'${w}'`).join(" ");
    const child = new Deno.Command("script", {
      args: ["-qec", command, "/dev/null"],
      cwd: home,
      clearEnv: true,
      env: {
        HOME: home,
        NO_COLOR: "1",
        TERM: "dumb",
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        DENO_DIR,
      },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = child.stdin.getWriter();
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stdout) {
        this.#text += decoder.decode(chunk, { stream: true });
        this.#changed();
      }
    })();
    this.done = (async () => {
      const status = await child.status;
      await reading;
      await child.stderr.cancel().catch(() => {});
      return { code: status.code, text: this.#text };
    })();
  }

  /** Everything the terminal showed so far. */
  get text(): string {
    return this.#text;
  }

  /** Waits until the terminal shows `pattern` after `from`; returns the offset past its match. */
  async expect(pattern: RegExp, seconds: number, from = 0): Promise<number> {
    const deadline = Date.now() + seconds * 1000;
    while (true) {
      const rest = this.#text.slice(from);
      const found = pattern.exec(rest);
      if (found) return from + found.index + found[0].length;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`${pattern} did not appear within ${seconds} s:\n${rest.slice(-3000)}`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#changed = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  async type(text: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(text));
  }

  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
  }
}

Deno.test({
  name:
    "a guest without an agent: gini exec fails with a clear error; gini console shows its output and detaches with Ctrl-]",
  sanitizeResources: false,
  fn: async (t) => {
    const { root, dir } = await tinyVmHome(`[[network]]\ntype = "user"\n`);
    const up = await runGini(root, ["up", "tiny.toml"]);
    assertEquals(up.code, 0, up.stderr);
    try {
      await t.step("its start script gives the serial port a socket and a log", async () => {
        const script = await Deno.readTextFile(join(dir, "start.sh"));
        assertStringIncludes(
          script,
          `socket,id=serial0,path=${dir}/serial.sock,server=on,wait=off,logfile=${dir}/serial.log,logappend=on`,
        );
        assertStringIncludes(script, "name=org.qemu.guest_agent.0");
        assert((await Deno.stat(join(dir, "serial.sock"))).isSocket);
      });

      await t.step("gini console shows the log's last lines, then detaches on Ctrl-]", async () => {
        const session = new TerminalSession(root, await giniRunFlags(), [
          "console",
          "tiny",
          "--lines",
          "200",
        ]);
        await session.expect(/detach with Ctrl-\]/, 60);
        await session.expect(/GINI-TINY-GUEST-BOOTED/, 60);
        await session.type("\x1d");
        const { code, text } = await session.done;
        assertEquals(code, 0, text);
        assertStringIncludes(text, 'Detached from the console of VM "tiny"');
      });

      await t.step("gini exec says the guest has no agent, with a hint", async () => {
        const started = Date.now();
        const out = await runGini(root, ["exec", "tiny", "--timeout", "3", "--", "uname", "-a"]);
        assertEquals(out.code, 1, out.stderr);
        assertStringIncludes(
          out.stderr,
          'Cannot run "uname" in VM "tiny": its guest agent did not answer within 3 s',
        );
        assertStringIncludes(out.stderr, "install and start qemu-guest-agent");
        assert(Date.now() - started < 30_000, "it gave up at its timeout");
      });

      await t.step("--dry-run only says what exec and ssh would do", async () => {
        const exec = await runGini(root, ["--dry-run", "exec", "tiny", "--", "uname", "-a"]);
        assertEquals(exec.code, 0, exec.stderr);
        assertStringIncludes(exec.stdout, 'VM "tiny": gini would run ["uname","-a"]');
        const ssh = await runGini(root, ["--dry-run", "ssh", "tiny"]);
        assertEquals(ssh.code, 2, ssh.stderr);
        assertStringIncludes(ssh.stderr, "it forwards no host port to its port 22");
      });
    } finally {
      const kill = await runGini(root, ["kill", "tiny"]);
      assertEquals(kill.code, 0, kill.stderr);
    }
    await t.step("a stopped VM has no console", async () => {
      const out = await runGini(root, ["console", "tiny"]);
      assertEquals(out.code, 2, out.stderr);
      assertStringIncludes(out.stderr, 'Cannot open the console of VM "tiny": it is stopped');
    });
  },
});

Deno.test({
  name:
    "the Debian cloud-init guest: gini ssh and gini exec pass output and exit codes back; a login on gini console runs a command",
  // Under TCG: building the guest takes minutes once, booting it about a minute.
  sanitizeResources: false,
  fn: async (t) => {
    const guest = await sh("bash", join(REPO, "scripts/build-test-guest.sh"));
    const { root } = await tempEnv();
    // The user's own key, where Gini finds it by default (the VM file names none).
    await Deno.mkdir(join(root, ".ssh"), { mode: 0o700 });
    await sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", join(root, ".ssh/id_ed25519"));
    const hash = await sh("openssl", "passwd", "-6", "gini-console");
    const port = freePort();
    await Deno.writeTextFile(
      join(root, "access.toml"),
      `name = "access"
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
hostname = "gini-access"
user = "tester"
password_hash = '${hash}'
[[network]]
forwards = [{ host = ${port}, guest = 22 }]
`,
    );
    const up = await runGini(root, ["up", "access.toml"]);
    assertEquals(up.code, 0, up.stderr);
    try {
      await t.step("gini ssh waits for sshd, runs the command as the VM's user", async () => {
        const out = await runGini(root, [
          "ssh",
          "access",
          "--timeout",
          "600",
          "--",
          "sh",
          "-c",
          "'echo $(whoami)@$(hostname); echo to-stderr >&2; exit 7'",
        ]);
        assertEquals(out.code, 7, out.stderr);
        assertEquals(out.stdout, "tester@gini-access\n");
        assertStringIncludes(out.stderr, "to-stderr");
        // The host key went to the VM's own known_hosts.
        const known = await Deno.readTextFile(
          join(root, ".local/share/gini/vms/access/known_hosts"),
        );
        assertStringIncludes(known, `[127.0.0.1]:${port}`);
      });

      await t.step("gini exec runs a command through the guest agent", async () => {
        const out = await runGini(root, [
          "exec",
          "access",
          "--timeout",
          "300",
          "--",
          "sh",
          "-c",
          "echo out-$(hostname); echo err-line >&2; exit 3",
        ]);
        assertEquals(out.code, 3, out.stderr);
        assertEquals(out.stdout, "out-gini-access\n");
        assertStringIncludes(out.stderr, "err-line");
        const json = await runGini(root, [
          "--json",
          "exec",
          "access",
          "--",
          "cat",
          "/etc/hostname",
        ]);
        assertEquals(json.code, 0, json.stderr);
        const data = JSON.parse(json.stdout);
        assertEquals([data.ran, data.exitCode, data.stdout], [true, 0, "gini-access\n"]);
        // -i: gini's standard input is the command's.
        const piped = await runGini(
          root,
          ["exec", "access", "-i", "--", "tr", "a-z", "A-Z"],
          {},
          root,
          "through the agent\n",
        );
        assertEquals([piped.code, piped.stdout], [0, "THROUGH THE AGENT\n"], piped.stderr);
      });

      await t.step("gini status shows the addresses the guest agent reports", async () => {
        const out = await runGini(root, ["--json", "status", "access"]);
        assertEquals(out.code, 0, out.stderr);
        const status = JSON.parse(out.stdout);
        assert(
          (status.addresses as string[]).some((a) => /^\S+ 10\.0\.2\.15\/24$/.test(a)),
          JSON.stringify(status.addresses),
        );
      });

      await t.step("gini console: a login prompt, a login, a command that runs", async () => {
        const session = new TerminalSession(root, await giniRunFlags(), ["console", "access"]);
        let at = await session.expect(/detach with Ctrl-\]/, 60);
        await session.type("\r");
        at = await session.expect(/login: ?$/m, 120, at);
        await session.type("tester\r");
        at = await session.expect(/Password: ?$/m, 60, at);
        await session.type("gini-console\r");
        at = await session.expect(/\$ ?$/m, 120, at);
        await session.type("echo CONSOLE-$((6*7)) $(id -un)\r");
        at = await session.expect(/CONSOLE-42 tester/, 60, at);
        await session.type("exit\r");
        await session.type("\x1d");
        const { code, text } = await session.done;
        assertEquals(code, 0, text);
        assertMatch(text, /Detached from the console of VM "access"/);
      });
    } finally {
      const down = await runGini(root, ["down", "access", "--timeout", "20"]);
      assertMatch(down.stdout, /VM "access" (stopped|is not running)/);
      const rm = await runGini(root, ["rm", "access", "--yes"]);
      assertEquals(rm.code, 0, rm.stderr);
    }
  },
});
