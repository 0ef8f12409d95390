import { join } from "node:path";
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "../../tests/_assert.ts";
import { ConfigError } from "../errors.ts";
import { type Manifest, parseManifest } from "./manifest.ts";
import {
  describeGrants,
  generateSigningKey,
  type GrantSet,
  grantsOf,
  keyFingerprint,
  type LockFile,
  narrowerGrants,
  parseSignature,
  readLock,
  sameGrants,
  signPackage,
  verifySignature,
  widerGrants,
  writeLock,
} from "./trust.ts";

const HEAD = `[plugin]
name = "notes"
version = "1.2.0"
description = "Keeps notes about VMs"
priority = "third-party:160"
[compatibility]
kernel_api = "^1.0.0"
`;

const FULL = `${HEAD}
[permissions]
read = ["/proc/cpuinfo", "{data}/reports/", "/etc/os-release", "/proc/cpuinfo"]
net = ["example.com:443"]
env = ["HOME"]
sys = ["hostname"]
[ops]
write = ["{data}/notes", "/etc/notes.d"]
run = ["qemu-img"]
download = ["*.example.org", "example.com"]
sysfs = ["/sys/bus/pci/devices/*/driver_override"]
lvm = true
[events]
subscribe = ["stage:completed", "on_pre_vm_start"]
vm_patch = ["extra_args", "cpu"]
[hooks]
post_stage = true
[[stages]]
name = "write"
writes = ["notes.saved"]
[[stages]]
name = "list"
writes = ["notes.list"]
[[commands]]
path = "notes"
summary = "notes about VMs"
mode = "group"
[[commands]]
path = "notes list"
summary = "list the notes"
stages = ["list"]
result = "notes.list"
[[commands]]
path = "notes add"
summary = "add a note"
mode = "change"
stages = ["write"]
[[commands.arguments]]
name = "text"
summary = "the note"
[[commands.flags]]
name = "out"
summary = "also write it here"
type = "file"
access = "write"
[[commands.flags]]
name = "from"
summary = "read the note from a file"
type = "file"
access = "read"
`;

function manifest(source: string): Manifest {
  const parsed = parseManifest(source, "/plugins/notes/plugin.toml", "user");
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.message).join("\n"));
  return parsed.manifest;
}

const EMPTY = grantsOf(manifest(HEAD));

Deno.test("grantsOf() gives the same sorted, de-duplicated JSON for the same manifest", () => {
  const grants = grantsOf(manifest(FULL));
  assertEquals(JSON.stringify(grantsOf(manifest(FULL))), JSON.stringify(grants));
  assertEquals(grants, {
    permissions: {
      env: ["HOME"],
      net: ["example.com:443"],
      read: ["/etc/os-release", "/proc/cpuinfo", "{data}/reports"],
      sys: ["hostname"],
    },
    ops: {
      checkpoint: false,
      download: ["*.example.org", "example.com"],
      lvm: true,
      request_files: false,
      run: ["qemu-img"],
      sysfs: ["/sys/bus/pci/devices/*/driver_override"],
      write: ["/etc/notes.d", "{data}/notes"],
    },
    events: { subscribe: ["on_pre_vm_start", "stage:completed"], vm_patch: ["cpu", "extra_args"] },
    hooks: ["post_stage"],
    commands: [
      { path: "notes add", mode: "change", ask: true, read: ["--from"], write: ["--out"] },
      { path: "notes list", mode: "query", ask: true, read: [], write: [] },
    ],
    writes: ["notes.list", "notes.saved"],
    priority: "third-party:160",
  });
  // A JSON round trip (the lock file) keeps it equal, key order and all.
  assert(sameGrants(JSON.parse(JSON.stringify(grants)), grants));
});

Deno.test("describeGrants() names the paths, programs and hosts and flags the risky ones", () => {
  const lines = describeGrants(grantsOf(manifest(FULL)));
  const text = lines.map((l) => l.text).join("\n");
  const risky = lines.filter((l) => l.risky).map((l) => l.text).join("\n");
  const safe = lines.filter((l) => !l.risky).map((l) => l.text).join("\n");
  for (
    const expected of [
      "Read files: /etc/os-release, /proc/cpuinfo, {data}/reports (inside Gini's data folder)",
      "Connect to: example.com:443",
      "Write files: {data}/notes (inside Gini's data folder)",
      "Download from: *.example.org (and its subdomains), example.com",
      "Add commands: gini notes add (changes the host, asks first; reads the file given as --from; writes the file given as --out), gini notes list (only reads)",
      "Change the VM before it starts: CPU model and count",
    ]
  ) assertStringIncludes(safe, expected);
  for (
    const expected of [
      "Write files outside Gini's data and cache folders: /etc/notes.d",
      "Run programs: qemu-img (the kernel checks every path in their arguments)",
      "Change kernel device settings (sysfs): /sys/bus/pci/devices/*/driver_override",
      "Create and remove LVM logical volumes",
      "Change the VM before it starts: extra QEMU arguments",
    ]
  ) assertStringIncludes(risky, expected);
  // It has network, programs and writes: there is no "Nothing else" line to make.
  assert(!text.includes("Nothing else"), text);
});

Deno.test("describeGrants() says a plugin that asks for nothing can do nothing else", () => {
  const lines = describeGrants(EMPTY);
  assertEquals(lines.map((l) => l.text), [
    "Run order: third-party:160 (with other third-party plugins, after Gini's own)",
    "Nothing else: no network, no programs, no writes",
  ]);
  assert(lines.every((l) => !l.risky));
});

/** The grants of HEAD plus `extra` (TOML). */
function grantsWith(extra: string): GrantSet {
  return grantsOf(manifest(`${HEAD}${extra}`));
}

const BASE = `
[permissions]
read = ["/proc/cpuinfo"]
[ops]
write = ["{data}/notes"]
run = ["qemu-img"]
[events]
subscribe = ["stage:completed"]
vm_patch = ["cpu"]
[[stages]]
name = "list"
writes = ["notes.list"]
[[commands]]
path = "notes list"
summary = "list the notes"
stages = ["list"]
`;

Deno.test("widerGrants() reports each addition in plain words", async (t) => {
  const before = grantsWith(BASE);
  const cases: [string, string, string, boolean][] = [
    ["a read path", 'read = ["/proc/cpuinfo"]', 'read = ["/proc/cpuinfo", "/etc/hosts"]', false],
    ["a program", 'run = ["qemu-img"]', 'run = ["qemu-img", "xorriso"]', true],
    ["a host", "[ops]", '[ops]\ndownload = ["example.com"]', false],
    ["an event", '["stage:completed"]', '["stage:completed", "on_pre_vm_start"]', false],
    ["a context key", 'writes = ["notes.list"]', 'writes = ["notes.list", "notes.extra"]', false],
    ["a vm_patch scope", 'vm_patch = ["cpu"]', 'vm_patch = ["cpu", "disks"]', true],
    ["lvm turned on", "[ops]", "[ops]\nlvm = true", true],
    ["a write outside Gini's folders", 'write = ["{data}/notes"]', 'write = ["/etc"]', true],
  ];
  const expected: Record<string, string> = {
    "a read path": "Read files: /etc/hosts",
    "a program": "Run programs: xorriso (the kernel checks every path in its arguments)",
    "a host": "Download from: example.com",
    "an event": "Handle events: on_pre_vm_start",
    "a context key": "Provide data other stages read: notes.extra",
    "a vm_patch scope": "Change the VM before it starts: disks",
    "lvm turned on": "Create and remove LVM logical volumes",
    "a write outside Gini's folders": "Write files outside Gini's data and cache folders: /etc",
  };
  for (const [name, from, to, risky] of cases) {
    await t.step(name, () => {
      const after = grantsWith(BASE.replace(from, to));
      const lines = widerGrants(before, after);
      assertEquals(lines.length, 1, JSON.stringify(lines));
      assertStringIncludes(lines[0]!.text, expected[name]!);
      assertEquals(lines[0]!.risky, risky);
    });
  }
  await t.step("a command, with the file it may write", () => {
    const after = grantsWith(`${BASE}
[[stages]]
name = "write"
[[commands]]
path = "notes add"
summary = "add a note"
mode = "change"
stages = ["write"]
[[commands.flags]]
name = "out"
summary = "write it here"
type = "file"
access = "write"
`);
    assertEquals(widerGrants(before, after).map((l) => l.text), [
      "Add commands: gini notes add (changes the host, asks first; writes the file given as --out)",
    ]);
  });
  await t.step("a command that turns from a query into a change", () => {
    const after = grantsWith(
      BASE.replace('stages = ["list"]', 'stages = ["list"]\nmode = "change"'),
    );
    assertEquals(widerGrants(before, after).map((l) => l.text), [
      "Let gini notes list do more: it changes the host, asks first",
    ]);
  });
  await t.step("a move to an earlier priority class", () => {
    const after = grantsOf(manifest(`${HEAD}${BASE}`.replace(":160", "-high:120")));
    assertEquals(widerGrants(before, after).length, 1);
    assertStringIncludes(widerGrants(before, after)[0]!.text, "was third-party:160");
  });
});

Deno.test("widerGrants() is empty for the same grants, fewer grants, or grants inside old ones", () => {
  const before = grantsWith(BASE);
  assertEquals(widerGrants(before, grantsWith(BASE)), []);
  assertEquals(widerGrants(before, EMPTY), []);
  const inside = grantsWith(BASE.replace('read = ["/proc/cpuinfo"]', 'read = ["{data}/notes/x"]'));
  assertEquals(widerGrants(before, inside), []);
  // A value change inside the same priority class is no new grant.
  assertEquals(widerGrants(before, { ...before, priority: "third-party:199" }), []);
});

Deno.test("narrowerGrants() names what an upgrade gives up", () => {
  const before = grantsWith(BASE);
  assertEquals(narrowerGrants(before, before), []);
  const texts = narrowerGrants(before, EMPTY).map((l) => l.text);
  assert(texts.includes("Run programs: qemu-img (the kernel checks every path in its arguments)"));
  assert(texts.includes("Add commands: gini notes list (only reads)"), texts.join("\n"));
});

/** A lock with one valid entry. */
function lockWith(grants: GrantSet): LockFile {
  return {
    version: 1,
    plugins: {
      notes: {
        name: "notes",
        version: "1.2.0",
        source: "https://example.com/notes-1.2.0.zip",
        kind: "package",
        sha256: "a".repeat(64),
        entry_sha256: "b".repeat(64),
        grants,
        signer: "A".repeat(43) + "=",
        approved_at: "2025-01-31T12:00:00.000Z",
      },
    },
  };
}

Deno.test("writeLock() and readLock() round-trip stable JSON in a new folder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "config", "plugins.lock");
    const lock = lockWith(grantsOf(manifest(FULL)));
    lock.plugins["alpha"] = { ...lock.plugins["notes"]!, name: "alpha", grants: EMPTY };
    await writeLock(path, lock);
    const text = await Deno.readTextFile(path);
    assert(text.endsWith("}\n"));
    assertEquals(Object.keys(JSON.parse(text).plugins), ["alpha", "notes"]);
    assertStringIncludes(text, '\n  "plugins": {\n    "alpha": {\n      "name": "alpha"');
    assertEquals(await readLock(path), JSON.parse(text));
    assert(sameGrants((await readLock(path)).plugins["notes"]!.grants, grantsOf(manifest(FULL))));
    // Writing what was read gives the same bytes.
    await writeLock(path, await readLock(path));
    assertEquals(await Deno.readTextFile(path), text);
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o644);
    assertEquals([...Deno.readDirSync(join(dir, "config"))].map((e) => e.name), ["plugins.lock"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readLock() of a missing file is an empty lock", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assertEquals(await readLock(join(dir, "plugins.lock")), { version: 1, plugins: {} });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readLock() refuses a bad entry, naming the file and the key", async (t) => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "plugins.lock");
  try {
    await t.step("a sha256 that is not 64 hex digits", async () => {
      const lock = lockWith(EMPTY);
      await Deno.writeTextFile(
        path,
        JSON.stringify({ ...lock, plugins: { notes: { ...lock.plugins.notes, sha256: "abc" } } }),
      );
      const error = await assertRejects(() => readLock(path), ConfigError);
      assertStringIncludes(error.message, path);
      assertStringIncludes(error.message, "plugins.notes.sha256");
      assertStringIncludes(error.message, '"abc"');
      assertEquals(error.location?.key, "plugins.notes.sha256");
      assertStringIncludes(error.hint ?? "", 'delete the "notes" entry');
    });
    await t.step("an entry filed under another name", async () => {
      const lock = lockWith(EMPTY);
      await Deno.writeTextFile(
        path,
        JSON.stringify({ ...lock, plugins: { other: lock.plugins.notes } }),
      );
      const error = await assertRejects(() => readLock(path), ConfigError);
      assertEquals(error.location?.key, "plugins.other.name");
    });
    await t.step("text that is not JSON", async () => {
      await Deno.writeTextFile(path, "{ nope");
      const error = await assertRejects(() => readLock(path), ConfigError);
      assertStringIncludes(error.message, path);
      assertStringIncludes(error.message, "not valid JSON");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const PACKAGE = new TextEncoder().encode("PK\u0003\u0004 pretend this is a zip");

Deno.test("signPackage() signs what verifySignature() accepts, and nothing else", async () => {
  const { privateKey, publicKey } = await generateSigningKey();
  const text = await signPackage(PACKAGE, privateKey);
  const sig = parseSignature(text, "/tmp/notes.zip.sig");
  assertEquals(sig.algorithm, "ed25519");
  assertEquals(sig.key, publicKey);
  assert(await verifySignature(PACKAGE, sig));

  const flipped = PACKAGE.slice();
  flipped[5]! ^= 1;
  assertEquals(await verifySignature(flipped, sig), false);

  const other = await generateSigningKey();
  const byOther = parseSignature(await signPackage(PACKAGE, other.privateKey), "x.sig");
  assertEquals(await verifySignature(PACKAGE, { ...sig, signature: byOther.signature }), false);
  assertEquals(await verifySignature(PACKAGE, { ...byOther, key: sig.key }), false);

  const fingerprint = keyFingerprint(publicKey);
  assert(/^[0-9a-f]{4}( [0-9a-f]{4}){3}$/.test(fingerprint), fingerprint);
  assert(fingerprint !== keyFingerprint(other.publicKey));
});

Deno.test("parseSignature() refuses a malformed .sig, naming the file and key", async (t) => {
  const { privateKey } = await generateSigningKey();
  const good = JSON.parse(await signPackage(PACKAGE, privateKey));
  const cases: [string, string, string][] = [
    ["not JSON", "signature", "not valid JSON"],
    ["short key", JSON.stringify({ ...good, key: "AAAA" }), '"key"'],
    ["other algorithm", JSON.stringify({ ...good, algorithm: "rsa" }), '"algorithm"'],
    ["missing signature", JSON.stringify({ ...good, signature: undefined }), '"signature"'],
  ];
  for (const [name, text, key] of cases) {
    await t.step(name, () => {
      const error = assertThrows(() => parseSignature(text, "/pkgs/notes.zip.sig"), ConfigError);
      assertStringIncludes(error.message, "/pkgs/notes.zip.sig");
      assertStringIncludes(error.message, key);
    });
  }
});
