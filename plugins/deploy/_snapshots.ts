/**
 * `gini snapshot create|list|revert|delete NAME [TAG]`: internal snapshots of a VM's qcow2 disks
 * and UEFI variables. A running VM (QEMU ≥ 6.0) saves and loads them with its memory through
 * QMP's `snapshot-save`/`snapshot-load`/`snapshot-delete` jobs over the `-blockdev` node names
 * (HMP `savevm` on older QEMU); a stopped VM through `qemu-img snapshot` on each image; a libvirt
 * VM through `virsh snapshot-*`. Each snapshot keeps the VM's definition of that time in
 * `<vmdir>/snapshots/<tag>.json`, and a revert to another configuration is refused with the
 * difference. Raw disks, raw UEFI variables and running VMs with VFIO devices are refused with
 * the reason.
 *
 * @module
 */
import { join } from "../../workers/path.ts";
import {
  type CommandDefinition,
  type ContextKey,
  contextValue,
  sha256Hex,
  type StageContext,
  type StageFn,
} from "../../workers/sdk.ts";
import type { Json } from "../../workers/protocol.ts";
import type { VmDefinition } from "../qemu_setup/contracts.ts";
import { diskNodes, FIRMWARE_NODES } from "../qemu_setup/names.ts";
import { changeLine, compare } from "./_converge.ts";
import { powerControl, type PowerState, record, savedDefinition, VM_COMMAND } from "./_vm.ts";
import { own } from "./_files.ts";
import { usage } from "./_errors.ts";

/** One snapshot as `gini snapshot list` shows it. */
export type SnapshotInfo = {
  tag: string;
  /** When it was taken (ISO). */
  date: string;
  /** Bytes of saved VM state (memory and devices); 0 for a snapshot of a stopped VM's disks. */
  vmStateBytes: number;
  /** How many of the VM's images hold it, of how many. */
  images: number;
  of: number;
  /** Gini recorded the VM's definition with it. */
  recorded: boolean;
  /** The recorded definition is the VM's current one (null: not recorded). */
  sameConfig: boolean | null;
};

/** `deploy.snapshot`: what a snapshot command did (or, in a dry run, would do). */
export type SnapshotResult = {
  name: string;
  action: "create" | "list" | "revert" | "delete";
  tag: string | null;
  /** The VM's power state. */
  state: PowerState;
  /** How: QMP jobs, HMP (QEMU < 6.0), qemu-img on a stopped VM, or libvirt. */
  via: "qmp" | "hmp" | "qemu-img" | "virsh";
  /** The images a snapshot spans (qcow2 disks and UEFI variables). */
  images: string[];
  snapshots: SnapshotInfo[];
  warnings: string[];
};
export const SNAPSHOT: ContextKey<SnapshotResult> = "deploy.snapshot";

/** Letters, digits, "-", "_" and "." (what QEMU and virsh take as a name without quoting). */
const TAG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A VM image a snapshot goes into: its path and its QEMU node. */
type Image = { path: string; node: string; what: string };

/** The record beside the VM: the definition a snapshot was taken with. */
type SnapshotRecord = {
  tag: string;
  takenAt: string;
  state: PowerState;
  sha256: string;
  vmstate: string | null;
  definition: VmDefinition;
};

/** The tag a command names, checked; a timestamp for `create` without one. */
export function snapshotTag(action: string, given: Json | undefined, now = new Date()): string {
  if (typeof given !== "string" || given === "") {
    if (action !== "create") {
      throw usage(
        `Cannot ${action} a snapshot without its tag`,
        "Name it: gini snapshot list NAME",
      );
    }
    return `snap-${now.toISOString().slice(0, 19).replaceAll(/[-:]/g, "").replace("T", "-")}`;
  }
  if (!TAG.test(given)) {
    throw usage(
      `Cannot use "${given}" as a snapshot tag: expected letters, digits, "-", "_" and "." (at most 64, not starting with "-", "_" or ".")`,
      'Choose a tag like "before-upgrade"',
    );
  }
  return given;
}

/**
 * The images a snapshot spans: every writable disk (qcow2, or refused: a raw image cannot hold
 * internal snapshots) and the UEFI variables (qcow2, or refused). CD-ROMs and read-only disks
 * (the cloud-init seed) have nothing to save.
 */
export function snapshotImages(def: VmDefinition): Image[] {
  const images: Image[] = [];
  for (const disk of def.disks) {
    if (disk.cdrom || disk.readonly) continue;
    if (disk.format !== "qcow2") {
      throw usage(
        `Cannot snapshot VM "${def.name}": disk "${disk.name}" (${disk.path}) is ${disk.format}, and a ${disk.format} image cannot hold internal snapshots`,
        `Use format = "qcow2" for that disk (qemu-img convert -O qcow2 makes one from it), or make it read-only`,
      );
    }
    images.push({ path: disk.path, node: diskNodes(disk).format, what: `disk "${disk.name}"` });
  }
  if (def.firmware.type === "uefi") {
    if (def.firmware.varsFormat !== "qcow2") {
      throw usage(
        `Cannot snapshot VM "${def.name}": its UEFI variables (${def.firmware.vars}) are raw pflash, which cannot be snapshotted`,
        def.backend === "libvirt"
          ? 'libvirt reads qcow2 variables from 9.2.0 on: upgrade libvirt, or use backend = "qemu"'
          : `Stop it and run gini up ${def.configFile}: Gini converts them to qcow2`,
      );
    }
    images.push({ path: def.firmware.vars!, node: FIRMWARE_NODES.vars, what: "UEFI variables" });
  }
  if (images.length === 0) {
    throw usage(
      `Cannot snapshot VM "${def.name}": it has no writable disk`,
      "Add a qcow2 [[disks]] table",
    );
  }
  return images;
}

/** A snapshot inside one image, as qemu-img and QMP report it. */
type ImageSnapshot = {
  name: string;
  "vm-state-size": number;
  "date-sec": number;
  "date-nsec"?: number;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The snapshots inside each image, by path: QMP for a running VM, qemu-img for a stopped one. */
async function imageSnapshots(
  ctx: StageContext,
  def: VmDefinition,
  images: Image[],
  running: boolean,
): Promise<Map<string, ImageSnapshot[]>> {
  const found = new Map<string, ImageSnapshot[]>();
  if (running) {
    const nodes = await ctx.op<{ "node-name"?: string; image?: { snapshots?: ImageSnapshot[] } }[]>(
      "qmp",
      { socket: def.paths.qmpSocket, command: "query-named-block-nodes", timeoutMs: 10_000 },
    );
    for (const image of images) {
      const node = Array.isArray(nodes) ? nodes.find((n) => n["node-name"] === image.node) : null;
      found.set(image.path, node?.image?.snapshots ?? []);
    }
    return found;
  }
  for (const image of images) {
    const out = await ctx.op<{ code: number; stdout: string; stderr?: string }>("run", {
      argv: ["qemu-img", "info", "--output=json", "-U", "-f", "qcow2", image.path],
      allowFailure: true,
      timeoutMs: 30_000,
    });
    if (out.code !== 0) {
      throw new Error(
        `Cannot read the snapshots of ${image.what} (${image.path}): ${out.stderr ?? ""}`,
      );
    }
    found.set(
      image.path,
      (JSON.parse(out.stdout) as { snapshots?: ImageSnapshot[] }).snapshots ?? [],
    );
  }
  return found;
}

/** The snapshot records under `<vmdir>/snapshots`, by tag. */
async function records(
  _ctx: StageContext,
  def: VmDefinition,
): Promise<Map<string, SnapshotRecord>> {
  const dir = join(def.paths.dir, "snapshots");
  const names = await own.readDir(dir).catch(() => [] as string[]);
  const out = new Map<string, SnapshotRecord>();
  for (const name of names.filter((n) => n.endsWith(".json"))) {
    try {
      const rec = JSON.parse(await own.readText(join(dir, name))) as SnapshotRecord;
      if (typeof rec.tag === "string") out.set(rec.tag, rec);
    } catch {
      // A record that does not parse is shown as not recorded.
    }
  }
  return out;
}

const digest = (def: VmDefinition) => sha256Hex(JSON.stringify(def));

/** The snapshots of a VM, one per tag, oldest first. */
function summarise(
  images: Image[],
  inside: Map<string, ImageSnapshot[]>,
  recs: Map<string, SnapshotRecord>,
  currentSha: string,
): SnapshotInfo[] {
  const byTag = new Map<string, SnapshotInfo>();
  for (const image of images) {
    for (const s of inside.get(image.path) ?? []) {
      const info = byTag.get(s.name) ?? {
        tag: s.name,
        date: new Date(s["date-sec"] * 1000).toISOString(),
        vmStateBytes: 0,
        images: 0,
        of: images.length,
        recorded: recs.has(s.name),
        sameConfig: recs.has(s.name) ? recs.get(s.name)!.sha256 === currentSha : null,
      };
      info.images++;
      info.vmStateBytes += s["vm-state-size"];
      byTag.set(s.name, info);
    }
  }
  return [...byTag.values()].sort((a, b) => a.date.localeCompare(b.date));
}

/** Runs a QMP snapshot job to its end: the job's own error is the error; the job is dismissed. */
async function qmpJob(
  ctx: StageContext,
  def: VmDefinition,
  command: "snapshot-save" | "snapshot-load" | "snapshot-delete",
  args: Record<string, Json>,
): Promise<void> {
  const socket = def.paths.qmpSocket;
  const id = args["job-id"] as string;
  await ctx.op("qmp", { socket, command, arguments: args, timeoutMs: 30_000 });
  type Job = { id: string; status: string; error?: string };
  let error: string | undefined;
  const deadline = Date.now() + 30 * 60_000;
  while (!ctx.dryRun) {
    const jobs = await ctx.op<Job[]>("qmp", { socket, command: "query-jobs", timeoutMs: 10_000 });
    const job = Array.isArray(jobs) ? jobs.find((j) => j.id === id) : undefined;
    if (!job) throw new Error(`QMP job "${id}" (${command}) disappeared before it concluded`);
    if (job.status === "concluded") {
      error = job.error;
      break;
    }
    if (Date.now() > deadline) throw new Error(`QMP job "${id}" (${command}) did not conclude`);
    await sleep(200);
  }
  await ctx.op("qmp", { socket, command: "job-dismiss", arguments: { id }, timeoutMs: 10_000 });
  if (error) throw new Error(`QEMU could not ${command.slice(9)} snapshot "${args.tag}": ${error}`);
}

/** QEMU's version, for the HMP fallback (snapshot jobs are QEMU 6.0's). */
async function hasSnapshotJobs(ctx: StageContext, def: VmDefinition): Promise<boolean> {
  const v = await ctx.op<{ qemu?: { major: number; minor: number }; simulated?: boolean }>("qmp", {
    socket: def.paths.qmpSocket,
    command: "query-version",
    timeoutMs: 10_000,
  });
  return !v.qemu || v.qemu.major >= 6;
}

/** HMP savevm/loadvm/delvm (QEMU < 6.0): the monitor's answer is empty, or it is the error. */
async function hmp(ctx: StageContext, def: VmDefinition, line: string): Promise<void> {
  const out = await ctx.op<string | { simulated: true }>("qmp", {
    socket: def.paths.qmpSocket,
    command: "human-monitor-command",
    arguments: { "command-line": line },
    timeoutMs: 10 * 60_000,
  });
  if (typeof out === "string" && out.trim()) {
    throw new Error(`QEMU: "${line}" failed: ${out.trim()}`);
  }
}

/** The qemu-img argv of a stopped VM's image. */
const qemuImg = (flag: "-c" | "-a" | "-d", tag: string, path: string) => [
  "qemu-img",
  "snapshot",
  flag,
  tag,
  path,
];

/** The first image a running VM's state can go into: the first qcow2 disk, else the variables. */
const vmstateNode = (images: Image[]) => images[0]!.node;

/** A QEMU VM's snapshot command. */
async function qemuSnapshot(
  ctx: StageContext,
  def: VmDefinition,
  action: SnapshotResult["action"],
  tag: string | null,
  state: PowerState,
): Promise<SnapshotResult> {
  const running = state !== "stopped";
  if (running && def.passthrough.length && action !== "list") {
    throw usage(
      `Cannot ${action} a snapshot of VM "${def.name}" while it runs: the state of its VFIO devices (${
        def.passthrough.map((p) => p.address).join(", ")
      }) cannot be saved`,
      `Stop it (gini stop ${def.name}): a stopped VM's snapshot holds its disks`,
    );
  }
  const images = snapshotImages(def);
  const recs = await records(ctx, def);
  const inside = await imageSnapshots(ctx, def, images, running);
  const snapshots = summarise(images, inside, recs, await digest(def));
  const jobs = running && action !== "list" ? await hasSnapshotJobs(ctx, def) : true;
  const result: SnapshotResult = {
    name: def.name,
    action,
    tag,
    state,
    via: running ? (jobs ? "qmp" : "hmp") : "qemu-img",
    images: images.map((i) => i.path),
    snapshots,
    warnings: [],
  };
  if (action === "list" || tag === null) return result;
  const existing = snapshots.find((s) => s.tag === tag);
  const devices = images.map((i) => i.node);
  if (action === "create") {
    if (existing) {
      throw usage(
        `Cannot create snapshot "${tag}" of VM "${def.name}": it exists (taken ${existing.date})`,
        `Choose another tag, or delete it first: gini snapshot delete ${def.name} ${tag}`,
      );
    }
    if (running && jobs) {
      const vmstate = vmstateNode(images);
      await qmpJob(ctx, def, "snapshot-save", {
        "job-id": `gini-save-${tag}`,
        tag,
        vmstate,
        devices,
      });
    } else if (running) await hmp(ctx, def, `savevm ${tag}`);
    else {
      for (const image of images) {
        await ctx.op("run", {
          argv: qemuImg("-c", tag, image.path),
          undo: [qemuImg("-d", tag, image.path)],
          timeoutMs: 10 * 60_000,
        });
      }
    }
    await writeRecord(ctx, def, tag, state, running ? vmstateNode(images) : null);
    await record(ctx, def, "snapshot-created", { tag, running });
    return result;
  }
  if (!existing) {
    throw usage(
      `Cannot ${action} snapshot "${tag}" of VM "${def.name}": it has no snapshot of that name`,
      snapshots.length
        ? `Its snapshots: ${snapshots.map((s) => s.tag).join(", ")}`
        : `Take one: gini snapshot create ${def.name} ${tag}`,
    );
  }
  const holders = images.filter((i) => (inside.get(i.path) ?? []).some((s) => s.name === tag));
  if (action === "revert") {
    checkConfig(def, tag, recs.get(tag), await digest(def), result);
    if (holders.length < images.length) {
      const missing = images.filter((i) => !holders.includes(i)).map((i) => i.what);
      throw usage(
        `Cannot revert VM "${def.name}" to snapshot "${tag}": ${missing.join(", ")} ${
          missing.length > 1 ? "do" : "does"
        } not hold it (added after it was taken?)`,
        `Delete it (gini snapshot delete ${def.name} ${tag}) and take a new one`,
      );
    }
    if (running) {
      const vmstate = holders.find((i) =>
        (inside.get(i.path) ?? []).some((s) => s.name === tag && s["vm-state-size"] > 0)
      );
      if (!vmstate) {
        throw usage(
          `Cannot revert running VM "${def.name}" to snapshot "${tag}": it was taken while the VM was stopped and holds its disks only`,
          `Stop it first (gini stop ${def.name}), then revert`,
        );
      }
      if (jobs) {
        await qmpJob(ctx, def, "snapshot-load", {
          "job-id": `gini-load-${tag}`,
          tag,
          vmstate: vmstate.node,
          devices,
        });
      } else await hmp(ctx, def, `loadvm ${tag}`);
    } else {
      if (existing.vmStateBytes > 0) {
        result.warnings.push(
          `Snapshot "${tag}" holds the memory of the running VM it was taken of; the stopped VM gets its disks back and boots from them at its next start`,
        );
      }
      // Irreversible by nature: what the disks held after the snapshot is discarded.
      for (const image of images) {
        await ctx.op("run", { argv: qemuImg("-a", tag, image.path), timeoutMs: 10 * 60_000 });
      }
    }
    await record(ctx, def, "snapshot-reverted", { tag, running });
    return result;
  }
  // delete
  if (running && jobs) {
    await qmpJob(ctx, def, "snapshot-delete", {
      "job-id": `gini-delete-${tag}`,
      tag,
      devices: holders.map((i) => i.node),
    });
  } else if (running) await hmp(ctx, def, `delvm ${tag}`);
  else {
    for (const image of holders) {
      await ctx.op("run", { argv: qemuImg("-d", tag, image.path), timeoutMs: 10 * 60_000 });
    }
  }
  await ctx.op("fs.remove", { path: recordPath(def, tag), missingOk: true });
  await record(ctx, def, "snapshot-deleted", { tag });
  return result;
}

const recordPath = (def: VmDefinition, tag: string) =>
  join(def.paths.dir, "snapshots", `${tag}.json`);

/** Keeps the VM's definition with the snapshot (undone with the run). */
async function writeRecord(
  ctx: StageContext,
  def: VmDefinition,
  tag: string,
  state: PowerState,
  vmstate: string | null,
) {
  await ctx.op("fs.mkdir", { path: join(def.paths.dir, "snapshots") });
  const rec: SnapshotRecord = {
    tag,
    takenAt: new Date().toISOString(),
    state,
    sha256: await digest(def),
    vmstate,
    definition: def,
  };
  await ctx.op("fs.write", {
    path: recordPath(def, tag),
    content: JSON.stringify(rec, null, 2) + "\n",
    overwrite: false,
  });
}

/** Refuses a revert to a snapshot taken with another configuration, showing the difference. */
function checkConfig(
  def: VmDefinition,
  tag: string,
  rec: SnapshotRecord | undefined,
  sha: string,
  result: SnapshotResult,
) {
  if (!rec) {
    result.warnings.push(
      `Snapshot "${tag}" was not taken by Gini: its VM configuration is unknown and not checked`,
    );
    return;
  }
  if (rec.sha256 === sha) return;
  const changes = compare(rec.definition, def);
  if (!changes.length) return;
  throw usage(
    `Cannot revert VM "${def.name}" to snapshot "${tag}": it was taken with another configuration (${rec.takenAt}); since then:\n${
      changes.map(changeLine).join("\n")
    }`,
    `Put those keys back in ${def.configFile} and run gini up ${def.configFile} with the VM stopped, then revert; the snapshot's definition is in ${
      recordPath(def, tag)
    }`,
  );
}

/** libvirt's version (virsh --version), for its snapshot gates. */
async function virshVersion(ctx: StageContext): Promise<[number, number, number] | null> {
  const out = await ctx.op<{ code: number; stdout: string }>("run", {
    argv: ["virsh", "--version"],
    allowFailure: true,
    probe: ctx.dryRun ? "use" : "store",
    timeoutMs: 10_000,
  }).catch(() => null);
  const m = out?.code === 0 ? out.stdout.match(/(\d+)\.(\d+)\.(\d+)/) : null;
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

const older = (v: [number, number, number], since: [number, number, number]) =>
  v[0] !== since[0] ? v[0] < since[0] : v[1] !== since[1] ? v[1] < since[1] : v[2] < since[2];

/** A libvirt VM's snapshot command: `virsh snapshot-*`. */
async function libvirtSnapshot(
  ctx: StageContext,
  def: VmDefinition,
  action: SnapshotResult["action"],
  tag: string | null,
  state: PowerState,
): Promise<SnapshotResult> {
  const virsh = (...args: string[]) => ["virsh", "-c", def.libvirtUri, ...args];
  const images = snapshotImages(def);
  if (state !== "stopped" && def.passthrough.length && action !== "list") {
    throw usage(
      `Cannot ${action} a snapshot of VM "${def.name}" while it runs: the state of its VFIO devices cannot be saved`,
      `Stop it (gini stop ${def.name}) first`,
    );
  }
  if (def.firmware.type === "uefi" && action !== "list") {
    // libvirt snapshots a VM with qcow2 NVRAM from 10.9.0, and reverts and deletes from 10.10.0.
    const since: [number, number, number] = action === "create" ? [10, 9, 0] : [10, 10, 0];
    const version = await virshVersion(ctx);
    if (!version || older(version, since)) {
      throw usage(
        `Cannot ${action} a snapshot of UEFI VM "${def.name}" with libvirt ${
          version ? version.join(".") : "(version unknown)"
        }: libvirt ${action}s internal snapshots of a VM with UEFI variables from ${
          since.join(".")
        } on ("internal snapshots of a VM with pflash based firmware are not supported" before)`,
        'Upgrade libvirt, or use backend = "qemu" for this VM (Gini snapshots it directly)',
      );
    }
  }
  const list = await ctx.op<{ code: number; stdout: string; stderr?: string }>("run", {
    argv: virsh("snapshot-list", def.name),
    allowFailure: true,
  });
  const recs = await records(ctx, def);
  const sha = await digest(def);
  const snapshots: SnapshotInfo[] = list.code === 0
    ? list.stdout.split("\n").slice(2).map((l) => l.trim()).filter(Boolean).map((line) => {
      // " before-upgrade   2024-05-01 10:00:00 +0000   running"
      const [name, date, time, zone, kind] = line.split(/\s+/);
      const when = Date.parse(`${date} ${time} ${zone}`);
      return {
        tag: name!,
        date: Number.isNaN(when) ? String(date) : new Date(when).toISOString(),
        vmStateBytes: kind === "running" ? -1 : 0,
        images: images.length,
        of: images.length,
        recorded: recs.has(name!),
        sameConfig: recs.has(name!) ? recs.get(name!)!.sha256 === sha : null,
      };
    })
    : [];
  const result: SnapshotResult = {
    name: def.name,
    action,
    tag,
    state,
    via: "virsh",
    images: images.map((i) => i.path),
    snapshots,
    warnings: [],
  };
  if (action === "list" || tag === null) return result;
  const exists = snapshots.some((s) => s.tag === tag);
  if (action === "create") {
    if (exists) {
      throw usage(
        `Cannot create snapshot "${tag}" of VM "${def.name}": it exists`,
        `Choose another tag, or delete it first: gini snapshot delete ${def.name} ${tag}`,
      );
    }
    await ctx.op("run", {
      argv: virsh("snapshot-create-as", def.name, tag, "--atomic"),
      undo: [virsh("snapshot-delete", def.name, tag)],
      timeoutMs: 30 * 60_000,
    });
    await writeRecord(ctx, def, tag, state, null);
    await record(ctx, def, "snapshot-created", { tag, running: state !== "stopped" });
    return result;
  }
  if (!exists) {
    throw usage(
      `Cannot ${action} snapshot "${tag}" of VM "${def.name}": libvirt has no snapshot of that name`,
      snapshots.length ? `Its snapshots: ${snapshots.map((s) => s.tag).join(", ")}` : "",
    );
  }
  if (action === "revert") {
    checkConfig(def, tag, recs.get(tag), sha, result);
    await ctx.op("run", { argv: virsh("snapshot-revert", def.name, tag), timeoutMs: 30 * 60_000 });
    await record(ctx, def, "snapshot-reverted", { tag, running: state !== "stopped" });
    return result;
  }
  await ctx.op("run", { argv: virsh("snapshot-delete", def.name, tag), timeoutMs: 30 * 60_000 });
  await ctx.op("fs.remove", { path: recordPath(def, tag), missingOk: true });
  await record(ctx, def, "snapshot-deleted", { tag });
  return result;
}

/** The snapshot stage, by stage name. */
export const snapshotStages: Record<string, StageFn> = {
  /** `gini snapshot create|list|revert|delete NAME [TAG]`. */
  snapshot: async (ctx) => {
    const command = ctx.get(VM_COMMAND)!;
    const action = command.path.split(" ")[1] as SnapshotResult["action"];
    const name = command.args.name as string;
    const def = await savedDefinition(ctx, name);
    const tag = action === "list" ? null : snapshotTag(action, command.args.tag);
    const state = await powerControl(ctx, def).state();
    const act = def.backend === "libvirt" ? libvirtSnapshot : qemuSnapshot;
    const result = await act(ctx, def, action, tag, state);
    for (const warning of result.warnings) ctx.ui.warn(warning);
    ctx.set(SNAPSHOT, result);
  },
};

const mib = (bytes: number) =>
  bytes < 0 ? "yes" : bytes === 0 ? "-" : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** The text of `gini snapshot list NAME`. */
export function renderSnapshots(r: SnapshotResult): string {
  if (!r.snapshots.length) {
    return `VM "${r.name}" has no snapshots (take one: gini snapshot create ${r.name} [TAG])`;
  }
  const rows = [
    ["TAG", "DATE", "VM STATE", "IMAGES", "CONFIG"],
    ...r.snapshots.map((s) => [
      s.tag,
      s.date.replace("T", " ").replace(/\.\d+Z$/, "Z"),
      mib(s.vmStateBytes),
      `${s.images}/${s.of}`,
      s.sameConfig === null ? "unknown" : s.sameConfig ? "current" : "changed since",
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join(
    "\n",
  );
}

const DONE: Record<string, [string, string]> = {
  create: ["took", "would take"],
  revert: ["reverted to", "would revert to"],
  delete: ["deleted", "would delete"],
};

/** The output of a snapshot command that changes something. */
function snapshotChange(view: Parameters<CommandDefinition["render"]>[0]) {
  const r = contextValue(view, SNAPSHOT)!;
  const [done, would] = DONE[r.action]!;
  const how = r.via === "qemu-img"
    ? `${r.images.length} image(s) of the stopped VM`
    : r.via === "virsh"
    ? "libvirt"
    : `the ${r.state} VM, memory included`;
  const text = `VM "${r.name}": ${view.dryRun ? would : done} snapshot "${r.tag}" (${how})`;
  return { text, data: r };
}

/** deploy's snapshot commands. */
export const snapshotCommands: Record<string, CommandDefinition> = {
  "snapshot create": { render: snapshotChange },
  "snapshot revert": { render: snapshotChange },
  "snapshot delete": { render: snapshotChange },
  "snapshot list": {
    render(view) {
      const r = contextValue(view, SNAPSHOT)!;
      return { text: renderSnapshots(r), data: r };
    },
  },
};
