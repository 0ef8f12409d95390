/**
 * Every op kind the kernel knows, by name, each loaded the first time a run asks for it: a command
 * that reads a VM's status loads the QMP op, not the download, LVM and TPM code.
 *
 * @module
 */
import type { OpKind } from "./types.ts";
import { importLater } from "../lazy.ts";

type AnyOp = OpKind<Record<string, never>>;

const LOADERS: Record<string, () => Promise<unknown>> = {
  "fs.write": async () =>
    (await importLater<typeof import("./fs_write.ts")>("./fs_write.ts", import.meta.url)).fsWrite,
  "fs.mkdir": async () =>
    (await importLater<typeof import("./fs_mkdir.ts")>("./fs_mkdir.ts", import.meta.url)).fsMkdir,
  "fs.remove": async () =>
    (await importLater<typeof import("./fs_remove.ts")>("./fs_remove.ts", import.meta.url))
      .fsRemove,
  "fs.copy": async () =>
    (await importLater<typeof import("./fs_copy.ts")>("./fs_copy.ts", import.meta.url)).fsCopy,
  "fs.edit": async () =>
    (await importLater<typeof import("./fs_edit.ts")>("./fs_edit.ts", import.meta.url)).fsEdit,
  "fs.restore": async () =>
    (await importLater<typeof import("./fs_restore.ts")>("./fs_restore.ts", import.meta.url))
      .fsRestore,
  "run": async () =>
    (await importLater<typeof import("./run.ts")>("./run.ts", import.meta.url)).runOp,
  "image.create": async () =>
    (await importLater<typeof import("./image_create.ts")>("./image_create.ts", import.meta.url))
      .imageCreate,
  "qemu.launch": async () =>
    (await importLater<typeof import("./qemu_launch.ts")>("./qemu_launch.ts", import.meta.url))
      .qemuLaunch,
  "tpm.launch": async () =>
    (await importLater<typeof import("./tpm_launch.ts")>("./tpm_launch.ts", import.meta.url))
      .tpmLaunch,
  "qmp": async () =>
    (await importLater<typeof import("./qmp.ts")>("./qmp.ts", import.meta.url)).qmpOp,
  "lvm.create": async () =>
    (await importLater<typeof import("./lvm.ts")>("./lvm.ts", import.meta.url)).lvmCreate,
  "lvm.remove": async () =>
    (await importLater<typeof import("./lvm.ts")>("./lvm.ts", import.meta.url)).lvmRemove,
  "download": async () =>
    (await importLater<typeof import("./download.ts")>("./download.ts", import.meta.url))
      .downloadOp,
  "file.read": async () =>
    (await importLater<typeof import("./file_read.ts")>("./file_read.ts", import.meta.url))
      .fileRead,
  "sysfs.write": async () =>
    (await importLater<typeof import("./sysfs_write.ts")>("./sysfs_write.ts", import.meta.url))
      .sysfsWrite,
  "journal.checkpoint": async () =>
    (await importLater<typeof import("./journal_checkpoint.ts")>(
      "./journal_checkpoint.ts",
      import.meta.url,
    )).journalCheckpoint,
  "http.request": async () =>
    (await importLater<typeof import("./http_request.ts")>("./http_request.ts", import.meta.url))
      .httpRequest,
  "chunklist.verify": async () =>
    (await importLater<typeof import("./chunklist_verify.ts")>(
      "./chunklist_verify.ts",
      import.meta.url,
    )).chunklistVerify,
  "history.append": async () =>
    (await importLater<typeof import("./history_append.ts")>(
      "./history_append.ts",
      import.meta.url,
    )).historyAppend,
  "qemu.save": async () =>
    (await importLater<typeof import("./qemu_state.ts")>("./qemu_state.ts", import.meta.url))
      .qemuSave,
  "qemu.restore": async () =>
    (await importLater<typeof import("./qemu_state.ts")>("./qemu_state.ts", import.meta.url))
      .qemuRestore,
  "qemu.migrate": async () =>
    (await importLater<typeof import("./qemu_state.ts")>("./qemu_state.ts", import.meta.url))
      .qemuMigrate,
  "console.attach": async () =>
    (await importLater<typeof import("./console_attach.ts")>(
      "./console_attach.ts",
      import.meta.url,
    )).consoleAttach,
  "ssh.session": async () =>
    (await importLater<typeof import("./ssh_session.ts")>("./ssh_session.ts", import.meta.url))
      .sshSession,
  "guest.exec": async () =>
    (await importLater<typeof import("./guest_agent.ts")>("./guest_agent.ts", import.meta.url))
      .guestExec,
  "guest.query": async () =>
    (await importLater<typeof import("./guest_agent.ts")>("./guest_agent.ts", import.meta.url))
      .guestQuery,
  "qemu.attach": async () =>
    (await importLater<typeof import("./qemu_hotplug.ts")>("./qemu_hotplug.ts", import.meta.url))
      .qemuAttach,
  "qemu.detach": async () =>
    (await importLater<typeof import("./qemu_hotplug.ts")>("./qemu_hotplug.ts", import.meta.url))
      .qemuDetach,
  "qemu.forward": async () =>
    (await importLater<typeof import("./qemu_forward.ts")>("./qemu_forward.ts", import.meta.url))
      .qemuForward,
};

/** The names of every op kind. */
export const OP_KIND_NAMES: readonly string[] = Object.keys(LOADERS);

const loaded = new Map<string, AnyOp>();

/** The op kind named `kind` (loaded on first use), or undefined if there is none. */
export async function opKind(kind: string): Promise<AnyOp | undefined> {
  if (!Object.hasOwn(LOADERS, kind)) return undefined;
  let op = loaded.get(kind);
  if (!op) {
    op = await LOADERS[kind]!() as AnyOp;
    loaded.set(kind, op);
  }
  return op;
}
