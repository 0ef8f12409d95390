/**
 * Every op kind the kernel knows, by name, each loaded the first time a run asks for it: a command
 * that reads a VM's status loads the QMP op, not the download, LVM and TPM code.
 *
 * @module
 */
import type { OpKind } from "./types.ts";

type AnyOp = OpKind<Record<string, never>>;

const LOADERS: Record<string, () => Promise<unknown>> = {
  "fs.write": async () => (await import("./fs_write.ts")).fsWrite,
  "fs.mkdir": async () => (await import("./fs_mkdir.ts")).fsMkdir,
  "fs.remove": async () => (await import("./fs_remove.ts")).fsRemove,
  "fs.copy": async () => (await import("./fs_copy.ts")).fsCopy,
  "fs.edit": async () => (await import("./fs_edit.ts")).fsEdit,
  "fs.restore": async () => (await import("./fs_restore.ts")).fsRestore,
  "run": async () => (await import("./run.ts")).runOp,
  "image.create": async () => (await import("./image_create.ts")).imageCreate,
  "qemu.launch": async () => (await import("./qemu_launch.ts")).qemuLaunch,
  "tpm.launch": async () => (await import("./tpm_launch.ts")).tpmLaunch,
  "qmp": async () => (await import("./qmp.ts")).qmpOp,
  "lvm.create": async () => (await import("./lvm.ts")).lvmCreate,
  "lvm.remove": async () => (await import("./lvm.ts")).lvmRemove,
  "download": async () => (await import("./download.ts")).downloadOp,
  "file.read": async () => (await import("./file_read.ts")).fileRead,
  "sysfs.write": async () => (await import("./sysfs_write.ts")).sysfsWrite,
  "journal.checkpoint": async () => (await import("./journal_checkpoint.ts")).journalCheckpoint,
  "http.request": async () => (await import("./http_request.ts")).httpRequest,
  "chunklist.verify": async () => (await import("./chunklist_verify.ts")).chunklistVerify,
  "history.append": async () => (await import("./history_append.ts")).historyAppend,
  "qemu.save": async () => (await import("./qemu_state.ts")).qemuSave,
  "qemu.restore": async () => (await import("./qemu_state.ts")).qemuRestore,
  "qemu.migrate": async () => (await import("./qemu_state.ts")).qemuMigrate,
  "console.attach": async () => (await import("./console_attach.ts")).consoleAttach,
  "ssh.session": async () => (await import("./ssh_session.ts")).sshSession,
  "guest.exec": async () => (await import("./guest_agent.ts")).guestExec,
  "guest.query": async () => (await import("./guest_agent.ts")).guestQuery,
  "qemu.attach": async () => (await import("./qemu_hotplug.ts")).qemuAttach,
  "qemu.detach": async () => (await import("./qemu_hotplug.ts")).qemuDetach,
  "qemu.forward": async () => (await import("./qemu_forward.ts")).qemuForward,
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
