/**
 * Every op kind the kernel knows, by name, each loaded the first time a run asks for it: a command
 * that reads a VM's status loads the QMP op, not the download, LVM and TPM code.
 *
 * @module
 */
import type { OpKind } from "./types.ts";
import { importLater } from "../lazy.ts";

type AnyOp = OpKind<Record<string, never>>;

/** Each op kind's module and the name it exports the kind under. */
const MODULES: Record<string, [module: string, name: string]> = {
  "fs.write": ["./fs_write.ts", "fsWrite"],
  "fs.mkdir": ["./fs_mkdir.ts", "fsMkdir"],
  "fs.remove": ["./fs_remove.ts", "fsRemove"],
  "fs.copy": ["./fs_copy.ts", "fsCopy"],
  "fs.edit": ["./fs_edit.ts", "fsEdit"],
  "fs.restore": ["./fs_restore.ts", "fsRestore"],
  "run": ["./run.ts", "runOp"],
  "image.create": ["./image_create.ts", "imageCreate"],
  "qemu.launch": ["./qemu_launch.ts", "qemuLaunch"],
  "tpm.launch": ["./tpm_launch.ts", "tpmLaunch"],
  "qmp": ["./qmp.ts", "qmpOp"],
  "lvm.create": ["./lvm.ts", "lvmCreate"],
  "lvm.remove": ["./lvm.ts", "lvmRemove"],
  "download": ["./download.ts", "downloadOp"],
  "file.read": ["./file_read.ts", "fileRead"],
  "sysfs.write": ["./sysfs_write.ts", "sysfsWrite"],
  "journal.checkpoint": ["./journal_checkpoint.ts", "journalCheckpoint"],
  "http.request": ["./http_request.ts", "httpRequest"],
  "chunklist.verify": ["./chunklist_verify.ts", "chunklistVerify"],
  "history.append": ["./history_append.ts", "historyAppend"],
  "qemu.save": ["./qemu_state.ts", "qemuSave"],
  "qemu.restore": ["./qemu_state.ts", "qemuRestore"],
  "qemu.migrate": ["./qemu_state.ts", "qemuMigrate"],
  "console.attach": ["./console_attach.ts", "consoleAttach"],
  "ssh.session": ["./ssh_session.ts", "sshSession"],
  "guest.exec": ["./guest_agent.ts", "guestExec"],
  "guest.query": ["./guest_agent.ts", "guestQuery"],
  "qemu.attach": ["./qemu_hotplug.ts", "qemuAttach"],
  "qemu.detach": ["./qemu_hotplug.ts", "qemuDetach"],
  "qemu.forward": ["./qemu_forward.ts", "qemuForward"],
};

/** The names of every op kind. */
export const OP_KIND_NAMES: readonly string[] = Object.keys(MODULES);

/** The op kinds' module files, imported later: `deno compile` embeds them through --include. */
export const OP_MODULE_FILES: readonly string[] = [
  ...new Set(Object.values(MODULES).map(([module]) => new URL(module, import.meta.url).pathname)),
];

const loaded = new Map<string, AnyOp>();

/** The op kind named `kind` (loaded on first use), or undefined if there is none. */
export async function opKind(kind: string): Promise<AnyOp | undefined> {
  if (!Object.hasOwn(MODULES, kind)) return undefined;
  let op = loaded.get(kind);
  if (!op) {
    const [module, name] = MODULES[kind]!;
    op = (await importLater<Record<string, AnyOp>>(module, import.meta.url))[name];
    if (!op) throw new Error(`The op kind "${kind}" is not exported as ${name} by ${module}`);
    loaded.set(kind, op);
  }
  return op;
}
