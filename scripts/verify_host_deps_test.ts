import { assert, assertEquals } from "../tests/_assert.ts";
import { fromFileUrl } from "../kernel/url.ts";
import {
  parsePackages,
  scanKernel,
  scanManifest,
  scanRepository,
  scanTypeScript,
  shellCommands,
} from "./verify_host_deps.ts";

const REPO = fromFileUrl(new URL("../", import.meta.url));

/**
 * TypeScript fixtures are written with § for "(" and ¶ for "[", so that the scan of this very file
 * does not take them for spawns of its own.
 */
const ts = (text: string) => text.replaceAll("§", "(").replaceAll("¶", "[");
const programs = (text: string) => shellCommands(text).commands.map((c) => c.program);

Deno.test("parsePackages() reads the install script's list as a sed over it does, every package with a comment", async () => {
  const script = await Deno.readTextFile(`${REPO}scripts/install-host-deps.sh`);
  const listed = parsePackages(script);
  // What sed reads: the lines between PACKAGES=( and ), comments dropped, split on blanks.
  const lines = script.split("\n");
  const body = lines.slice(
    lines.indexOf("PACKAGES=(") + 1,
    lines.findIndex((l, i) => i > lines.indexOf("PACKAGES=(") && l.startsWith(")")),
  );
  assertEquals(
    listed.map((p) => p.name),
    body.flatMap((l) => l.replace(/#.*/, "").trim().split(/\s+/).filter(Boolean)),
  );
  assert(body.every((l) => /^ {2}[a-z0-9.+-]+ +# \S/.test(l)), "one package per line, then # why");
  assert(listed.some((p) => p.name === "qemu-utils" && p.comment.startsWith("qemu-img")));
  assertEquals(parsePackages("PACKAGES=(\n  a # x\n  b\n)\n"), [
    { name: "a", comment: "x" },
    { name: "b", comment: "" },
  ]);
});

Deno.test("shellCommands() names the programs a script runs, not its arguments, data or functions", async (t) => {
  const cases: [string, string, string[]][] = [
    ["pipelines and lists", "find . | cpio -o && gzip -9 || true; tee log", [
      "find",
      "cpio",
      "gzip",
      "tee",
    ]],
    ["substitutions, also in quotes", 'echo "$(basename "$0" .sh): x" >&2\nx=`uname -r`', [
      "basename",
      "uname",
    ]],
    ["arithmetic runs only its substitutions", "t+=($(( ($(date +%s) - start) / 1000 )))", [
      "date",
    ]],
    [
      "array elements are data",
      "PACKAGES=(\n  qemu-utils # qemu's (image) tool\n  cpio\n)\nid -u",
      [
        "id",
      ],
    ],
    ["heredoc bodies are data", "cat >f <<'EOF'\nmount -t proc\nEOF\nsed -n p f", ["cat", "sed"]],
    ["assignments, redirections and comments", "A=1 B=2 mke2fs 2>/dev/null -q # ssh x", [
      "mke2fs",
    ]],
    ["a trap's handler", `trap 'umount -l "$w" || true; rm -rf "$w"' EXIT`, ["umount", "rm"]],
    ["env runs the next program; chroot's are the root's", "env -i PATH=/bin chroot r apt-get", [
      "env",
      "chroot",
    ]],
    ["command -v is a probe for a program", "command -v lspci >/dev/null", ["lspci"]],
    ["process substitution", "comm -23 <(sort a) <(sort b)", ["comm", "sort", "sort"]],
    [
      "case patterns and keywords",
      'case "$f" in *.fd | *.bin) mark "$f" ;; esac\nif [ -x y ]; then seq 3; fi',
      [
        "mark",
        "seq",
      ],
    ],
    ["a computed command is skipped", '"$DENO" fmt --check\n$SUDO apt-get update', []],
  ];
  for (const [name, text, expected] of cases) {
    await t.step(name, () => assertEquals(programs(text), expected));
  }
  assertEquals([...shellCommands('in_root() { chroot r "$@"; }\nin_root ls').functions], [
    "in_root",
  ]);
});

Deno.test("scanTypeScript() finds literal spawns through Deno.Command, the helpers, run ops and bash -c", () => {
  const text = ts(`
    await new Deno.Command§"virsh", { args: ¶"list"] }).output();
    await sh§
      "qemu-img",
      "info",
    );
    await timed§¶"bash", "-c", "command -v lspci && lspci -nn"]);
    engine.request§g, "s", { kind: "run", args: { argv: ¶"swtpm_ioctl", "-s"] } });
    await new Deno.Command§Deno.execPath§), { args: ¶"run"] }).output();
  `);
  const { uses, problems } = scanTypeScript("tests/x_test.ts", text, "tests");
  assertEquals(uses.map((u) => `${u.program} ${u.where}`).sort(), [
    "bash tests/x_test.ts:7",
    "lspci tests/x_test.ts:7",
    "lspci tests/x_test.ts:7",
    "qemu-img tests/x_test.ts:3",
    "swtpm_ioctl tests/x_test.ts:8",
    "virsh tests/x_test.ts:2",
  ]);
  assertEquals(problems, []);
});

Deno.test("scanTypeScript() fails on a spawn of a computed program outside a known helper", () => {
  const text = ts(`
    async function sh§...argv: string¶]) {
      return await new Deno.Command§argv¶0]!, { args: argv.slice§1) }).output§);
    }
    async function probe§name: string) {
      await new Deno.Command§name).output§);
      await sh§name, "--version");
    }
  `);
  const { uses, problems } = scanTypeScript("tests/y_test.ts", text, "tests");
  assertEquals(uses, []);
  assertEquals(problems.length, 2);
  assert(problems[0]!.startsWith("tests/y_test.ts:6 spawns a computed program (name)"));
  assert(problems[1]!.startsWith("tests/y_test.ts:7 calls sh() with a computed program"));
});

Deno.test("scanKernel() names the ops' programs and fails on a computed argv it was not told about", () => {
  const text = ts(`
    await env.host.run§
      ¶"lvs", "--reportformat", "json"],
    );
    permission: § => ¶{ grant: "run", program: "swtpm" }],
    await env.host.run§a.argv, { timeoutMs: 1 });
  `);
  const known = scanKernel("kernel/ops/run.ts", text);
  assertEquals(known.uses.map((u) => u.program), ["lvs", "swtpm"]);
  assertEquals(known.problems, []);
  const unknown = scanKernel("kernel/ops/other.ts", text);
  assertEquals(unknown.problems.length, 1);
  assert(unknown.problems[0]!.startsWith("kernel/ops/other.ts:6 runs a computed argv (a.argv)"));
});

Deno.test("scanManifest() reads [ops].run", () => {
  const toml = '[plugin]\nname = "p"\n[ops]\nwrite = ["/x"]\nrun = ["qemu-img", "sgdisk"]\n';
  assertEquals(scanManifest("plugins/p/plugin.toml", toml).uses.map((u) => u.program), [
    "qemu-img",
    "sgdisk",
  ]);
  assertEquals(scanManifest("plugins/q/plugin.toml", '[plugin]\nname = "q"\n').uses, []);
});

Deno.test("scanRepository() finds the programs of the manifests, the kernel, the tests and the scripts", async () => {
  const { uses, problems } = await scanRepository(REPO);
  assertEquals(problems, []);
  const has = (program: string, source: string, where: string) =>
    assert(
      uses.some((u) => u.program === program && u.source === source && u.where.startsWith(where)),
      `${program} from ${source} in ${where}`,
    );
  has("qemu-system-x86_64", "manifest", "plugins/deploy/plugin.toml");
  has("swtpm_ioctl", "kernel", "kernel/ops/tpm_launch.ts");
  has("lvcreate", "kernel", "kernel/ops/lvm.ts");
  has("losetup", "tests", "tests/lvm_test.ts");
  has("grub-mkstandalone", "tests", "tests/_macos_fakes.ts");
  has("mke2fs", "scripts", "scripts/build-test-guest.sh");
  has("debootstrap", "scripts", "scripts/_debootstrap.sh");
  has("cpio", "scripts", "scripts/build-tiny-guest.sh");
});
