import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { renderReport, runStages } from "../kernel/mod.ts";
import { discoverPlugins } from "../kernel/plugins/discover.ts";
import { resolvePlugins } from "../kernel/plugins/resolve.ts";
import { journaledArgs, type JournalRecord } from "../kernel/journal/journal.ts";
import { type Json, RUNTIME_VALUE_PATTERN, runtimeValue } from "../workers/protocol.ts";
import { macHome, releaseZips } from "./_macos_fakes.ts";
import { chrootableRoot } from "./_vfio_roots.ts";
import { recordingUi, REPO, runGini, sh, snapshotTree, tempEnv } from "./_helpers.ts";

async function loadExample() {
  const discovery = await discoverPlugins([{
    dir: join(REPO, "plugins/examples/compat_check"),
    origin: "extra",
  }]);
  return resolvePlugins(discovery.manifests, discovery.errors);
}

Deno.test("a dry run changes nothing on disk and plans exactly the ops a live run executes", async () => {
  const env = await tempEnv();
  await Deno.mkdir(env.dirs.data, { recursive: true });
  await Deno.writeTextFile(join(env.dirs.data, "keep.txt"), "untouched\n");
  const before = await snapshotTree(env.root);

  const dry = await runStages({
    env,
    loaded: await loadExample(),
    ui: recordingUi(),
    dryRun: true,
  });
  assert(dry.result.ok, dry.result.error?.message);
  assertEquals(await snapshotTree(env.root), before, "the dry run changed nothing");

  const live = await runStages({
    env,
    loaded: await loadExample(),
    ui: recordingUi(),
    dryRun: false,
  });
  assert(live.result.ok, live.result.error?.message);
  const shape = (records: typeof dry.report.stages) =>
    records.flatMap((s) => s.ops.map((op) => ({ stage: op.stage, kind: op.kind, args: op.args })));
  assertEquals(shape(live.report.stages), shape(dry.report.stages));
  assertEquals(live.report.stages.flatMap((s) => s.ops.map((o) => o.status)), ["done", "done"]);
  assertEquals(
    await Deno.readTextFile(join(env.dirs.data, "reports/compat.txt")),
    (dry.report.stages[0]!.ops[1]!.args as { content: string }).content,
  );

  const text = renderReport(dry.report);
  assertStringIncludes(text, "compat-check:write-report\n");
  assertStringIncludes(text, `  Would create directory "${join(env.dirs.data, "reports")}"`);
  assertStringIncludes(text, `  Would create file "${join(env.dirs.data, "reports/compat.txt")}"`);
  assertStringIncludes(text, "  operations:     2\n");
  assertStringIncludes(text, "  conflicts:      0");
});

/** One change as a plan lists it and the journal records it. */
interface Change {
  stage: string;
  kind: string;
  args: Json;
}

interface PlanJson {
  stages: { id: string; ops: (Change & { readOnly: boolean })[] }[];
}

/** The ops of a `--json` plan that change something, with args as the journal keeps them. */
function plannedChanges(plan: PlanJson): Change[] {
  return plan.stages.flatMap((s) => s.ops).filter((op) => !op.readOnly).map((op) => ({
    stage: op.stage,
    kind: op.kind,
    args: journaledArgs(op.args),
  }));
}

/**
 * The intents of the newest transaction, read back through `gini journal list` and `show`;
 * it must be `command`'s and committed.
 */
async function journaledChanges(home: string, command: RegExp): Promise<Change[]> {
  const list = await runGini(home, ["journal", "list", "--json"]);
  assertEquals(list.code, 0, list.stderr);
  const [tx] = JSON.parse(list.stdout) as { id: string; command: string; state: string }[];
  assert(tx && command.test(tx.command), `the newest transaction: ${list.stdout}`);
  assertEquals(tx.state, "committed");
  const show = await runGini(home, ["journal", "show", tx.id, "--json"]);
  assertEquals(show.code, 0, show.stderr);
  const { records } = JSON.parse(show.stdout) as { records: JournalRecord[] };
  return records.flatMap((r) =>
    r.type === "intent" ? [{ stage: r.stage, kind: r.kind, args: r.args }] : []
  );
}

/**
 * Where two args differ, by path (`args.argv[4] differs`); values are left out, as they may be
 * random.
 */
function argDifferences(a: Json, b: Json, at: string): string[] {
  const object = (v: Json): v is Record<string, Json> =>
    v !== null && typeof v === "object" && !Array.isArray(v);
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return [`${at} has ${a.length} items, the journal ${b.length}`];
    return a.flatMap((v, i) => argDifferences(v, b[i]!, `${at}[${i}]`));
  }
  if (object(a) && object(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) =>
      k in a && k in b
        ? argDifferences(a[k]!, b[k]!, `${at}.${k}`)
        : [`${at}.${k} is only in the ${k in a ? "plan" : "journal"}`]
    );
  }
  if (typeof a === "string" && typeof b === "string" && runtimeTemplate(a)?.test(b)) return [];
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [`${at} differs`];
}

/**
 * A planned string holding `runtimeValue()` markers as a pattern: its other text as it is, each
 * marker standing for some text the live run found; null without markers.
 */
function runtimeTemplate(planned: string): RegExp | null {
  const parts = planned.split(RUNTIME_VALUE_PATTERN);
  if (parts.length === 1) return null;
  return new RegExp(
    `^${parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".+")}$`,
    "s",
  );
}

/** The longest common subsequence of two lists under `same`, as index pairs. */
function align<T>(a: T[], b: T[], same: (x: T, y: T) => boolean): [number, number][] {
  const n = a.length;
  const m = b.length;
  const table = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      table[i]![j] = same(a[i]!, b[j]!)
        ? table[i + 1]![j + 1]! + 1
        : Math.max(table[i + 1]![j]!, table[i]![j + 1]!);
    }
  }
  const pairs: [number, number][] = [];
  for (let i = 0, j = 0; i < n && j < m;) {
    if (same(a[i]!, b[j]!)) pairs.push([i++, j++]);
    else if (table[i + 1]![j]! >= table[i]![j + 1]!) i++;
    else j++;
  }
  return pairs;
}

/**
 * Where the plan and the journal disagree, as lines naming the stage, the op and the argument.
 * Stages that run concurrently interleave their ops, so each stage's ops are compared in order
 * on their own; ops are paired by kind and target path, then compared argument by argument.
 * `names` replaces temporary directories in the lines by stable names.
 */
function parityDifferences(
  planned: Change[],
  journaled: Change[],
  names: Record<string, string>,
): string[] {
  const name = (text: string) =>
    Object.entries(names).reduce((t, [dir, label]) => t.replaceAll(dir, label), text);
  const target = (c: Change) => {
    const a = c.args as { path?: string; to?: string };
    return a.path ?? a.to ?? "";
  };
  const label = (c: Change, i: number) =>
    `${c.stage} #${i + 1} ${c.kind}${target(c) ? ` ${name(target(c))}` : ""}`;
  const byStage = (changes: Change[]) => {
    const stages = new Map<string, Change[]>();
    for (const c of changes) stages.set(c.stage, [...stages.get(c.stage) ?? [], c]);
    return stages;
  };
  const plan = byStage(planned);
  const live = byStage(journaled);
  const lines: string[] = [];
  for (const stage of new Set([...plan.keys(), ...live.keys()])) {
    const a = plan.get(stage) ?? [];
    const b = live.get(stage) ?? [];
    const pairs = align(a, b, (x, y) => x.kind === y.kind && target(x) === target(y));
    for (const [i, j] of pairs) {
      for (const at of argDifferences(a[i]!.args, b[j]!.args, "args")) {
        lines.push(`${label(a[i]!, i)}: ${at}`);
      }
    }
    a.forEach((c, i) => {
      if (!pairs.some(([p]) => p === i)) lines.push(`${label(c, i)}: planned, not journaled`);
    });
    b.forEach((c, j) => {
      if (!pairs.some(([, q]) => q === j)) lines.push(`${label(c, j)}: journaled, not planned`);
    });
  }
  return lines;
}

/** Changes as a sorted list, to compare as multisets whatever the interleaving. */
const multiset = (changes: Change[]) => changes.map((c) => JSON.stringify(c)).sort();

Deno.test("parityDifferences() tells an op out of order within a stage from stages interleaved, and fills in run-time values", async (t) => {
  const op = (stage: string, kind: string, path: string, args: Record<string, Json> = {}) => ({
    stage,
    kind,
    args: { path: `/home/u/${path}`, ...args },
  });
  const runOp = (argv: string[]) => ({ stage: "b", kind: "run", args: { argv } });
  const mkdir = op("a", "fs.mkdir", "d");
  const write = op("a", "fs.write", "d/f");
  const other = op("b", "fs.write", "g");
  const command = runOp(["x", "y"]);
  const plan = [mkdir, write, other, command];
  const cases: [string, Change[], string[]][] = [
    ["the same ops", plan, []],
    ["another stage's ops in between", [other, mkdir, command, write], []],
    ["two ops of a stage swapped", [write, mkdir, other, command], [
      "a #1 fs.mkdir ~/d: planned, not journaled",
      "a #2 fs.mkdir ~/d: journaled, not planned",
    ]],
    ["an op missing", [mkdir, other, command], ["a #2 fs.write ~/d/f: planned, not journaled"]],
    ["an argument added", [mkdir, write, op("b", "fs.write", "g", { mode: 0o600 }), command], [
      "b #1 fs.write ~/g: args.mode is only in the journal",
    ]],
    ["an item of a list changed", [mkdir, write, other, runOp(["x", "z"])], [
      "b #2 run: args.argv[1] differs",
    ]],
    ["a list of another length", [mkdir, write, other, runOp(["x"])], [
      "b #2 run: args.argv has 2 items, the journal 1",
    ]],
  ];
  for (const [name, journaled, expected] of cases) {
    await t.step(name, () => {
      assertEquals(parityDifferences(plan, journaled, { "/home/u": "~" }), expected);
    });
  }
  // A value known at run time matches whatever the live run put at that argument, and only there.
  const later = runOp(["x", `id=${runtimeValue("an id from the server")}.`]);
  const known: [string, Change[], string[]][] = [
    ["a run-time value filled in", [runOp(["x", "id=42."])], []],
    ["the text around it changed", [runOp(["x", "id=42!"])], ["b #1 run: args.argv[1] differs"]],
    ["nothing in its place", [runOp(["x", "id=."])], ["b #1 run: args.argv[1] differs"]],
    ["another argument changed", [runOp(["y", "id=42."])], ["b #1 run: args.argv[0] differs"]],
  ];
  for (const [name, journaled, expected] of known) {
    await t.step(name, () => assertEquals(parityDifferences([later], journaled, {}), expected));
  }
});

/** A Linux VM booting the tiny guest's kernel, with a local base image and a cloud-init seed. */
async function linuxVm(root: string): Promise<void> {
  const guest = await sh("bash", join(REPO, "scripts/build-tiny-guest.sh"));
  await sh("qemu-img", "create", "-q", "-f", "qcow2", join(root, "base.qcow2"), "64M");
  await Deno.writeTextFile(
    join(root, "tiny.toml"),
    `name = "tiny"\n[memory]\nsize = "256M"\n[boot]\nkernel = "${guest}/vmlinuz"\ninitrd = "${guest}/initrd.img"\ncmdline = "console=ttyS0"\n[[disks]]\nsize = "128M"\n[[disks]]\nname = "data"\nsize = "16M"\nformat = "raw"\n[linux]\nimage = "base.qcow2"\nhostname = "tiny"\nruncmd = ["true"]\n[[linux.write_files]]\npath = "/etc/motd"\ncontent = "${
      "x".repeat(20_000)
    }"\n`,
  );
}

Deno.test("gini up of a Linux VM journals exactly the changes gini plan listed, stage by stage", async () => {
  const { root } = await tempEnv();
  await linuxVm(root);
  const plan = await runGini(root, ["plan", "tiny.toml", "--json"]);
  assertEquals(plan.code, 0, plan.stderr);
  const up = await runGini(root, ["up", "tiny.toml"]);
  try {
    assertEquals(up.code, 0, up.stderr);
    const planned = plannedChanges(JSON.parse(plan.stdout));
    const journaled = await journaledChanges(root, /^up tiny\.toml$/);
    for (const kind of ["fs.write", "run", "image.create", "qemu.launch"]) {
      assert(planned.some((c) => c.kind === kind), `the plan has a ${kind}`);
    }
    // user-data is longer than the journal keeps inline: both sides are compared as its hash.
    assert(
      JSON.stringify(journaled).includes("characters, sha256"),
      "a long file content is journaled as its hash",
    );
    assertEquals(parityDifferences(planned, journaled, { [root]: "~" }), []);
    assertEquals(multiset(journaled), multiset(planned));
  } finally {
    await runGini(root, ["down", "tiny", "--timeout", "1"]);
    await runGini(root, ["rm", "tiny", "--yes"]);
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("gini up of a macOS VM journals exactly the changes gini plan listed (run-time values marked as such)", async () => {
  const { home, close } = await macHome();
  try {
    // The components are in the download cache, as after a first macOS VM: the plan reads them.
    // (Before they are, it lists the same files from the catalogue, but not their bytes.)
    const zips = await releaseZips();
    await Deno.mkdir(join(home, ".cache/gini/downloads"), { recursive: true });
    for (const zip of Object.values(zips)) {
      const sha256 = createHash("sha256").update(zip).digest("hex");
      await Deno.writeFile(join(home, `.cache/gini/downloads/sha256-${sha256}`), zip);
    }
    const plan = await runGini(home, ["plan", "mac.toml", "--json"]);
    assertEquals(plan.code, 0, plan.stderr);
    const up = await runGini(home, ["up", "mac.toml"]);
    assertEquals(up.code, 0, up.stderr);
    const planned = plannedChanges(JSON.parse(plan.stdout));
    const journaled = await journaledChanges(home, /^up mac\.toml$/);
    for (const kind of ["http.request", "download", "chunklist.verify", "run", "qemu.launch"]) {
      assert(planned.some((c) => c.kind === kind), `the plan has a ${kind}`);
    }
    assertEquals(parityDifferences(planned, journaled, { [home]: "~" }), []);
  } finally {
    await runGini(home, ["down", "mac", "--timeout", "1"]);
    await runGini(home, ["rm", "mac", "--yes"]);
    await close();
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("gini vfio apply journals exactly the changes gini vfio plan listed", async (t) => {
  // vfio apply checks its live run against the plan it made itself; a plan made by another
  // process, as a user runs vfio plan then vfio apply, must be the same too.
  const cases = {
    "debian-grub": ["--device", "0000:01:00.0"],
    // The host's only GPU, moved to vfio-pci now as well: file edits, rebuilds and sysfs writes.
    "fedora-dracut-bls": ["--device", "0b:00.0", "--force", "--bind-now"],
  };
  for (const [distro, options] of Object.entries(cases)) {
    await t.step(distro, async () => {
      const root = await chrootableRoot(join(REPO, "tests/fixtures/distros", distro));
      const home = await Deno.makeTempDir({ prefix: "gini-vfio-home-" });
      const flags = ["--host-root", root, ...options];
      const plan = await runGini(home, ["--json", "vfio", "plan", ...flags]);
      assertEquals(plan.code, 0, plan.stderr);
      const apply = await runGini(home, ["--yes", "vfio", "apply", ...flags]);
      assertEquals(apply.code, 0, apply.stderr);
      const planned = plannedChanges(JSON.parse(plan.stdout));
      const journaled = await journaledChanges(home, /^vfio apply /);
      for (
        const kind of ["fs.edit", "run", ...options.includes("--bind-now") ? ["sysfs.write"] : []]
      ) {
        assert(planned.some((c) => c.kind === kind), `the plan has a ${kind}`);
      }
      assertEquals(parityDifferences(planned, journaled, { [root]: "{root}", [home]: "~" }), []);
      assertEquals(multiset(journaled), multiset(planned));
      await Deno.remove(root, { recursive: true });
      await Deno.remove(home, { recursive: true });
    });
  }
});
