/**
 * Every op kind the kernel knows, by name.
 *
 * @module
 */
import { fsCopy } from "./fs_copy.ts";
import { fsEdit } from "./fs_edit.ts";
import { fsMkdir } from "./fs_mkdir.ts";
import { fsRemove } from "./fs_remove.ts";
import { fsWrite } from "./fs_write.ts";
import { fsRestore } from "./fs_restore.ts";
import { runOp } from "./run.ts";
import { imageCreate } from "./image_create.ts";
import { qemuLaunch } from "./qemu_launch.ts";
import { tpmLaunch } from "./tpm_launch.ts";
import { qmpOp } from "./qmp.ts";
import { lvmCreate, lvmRemove } from "./lvm.ts";
import { downloadOp } from "./download.ts";
import { fileRead } from "./file_read.ts";
import { sysfsWrite } from "./sysfs_write.ts";
import { journalCheckpoint } from "./journal_checkpoint.ts";
import { httpRequest } from "./http_request.ts";
import { historyAppend } from "./history_append.ts";
import { qemuMigrate, qemuRestore, qemuSave } from "./qemu_state.ts";
import { chunklistVerify } from "./chunklist_verify.ts";
import { consoleAttach } from "./console_attach.ts";
import { sshSession } from "./ssh_session.ts";
import { guestExec, guestQuery } from "./guest_agent.ts";
import { qemuAttach, qemuDetach } from "./qemu_hotplug.ts";
import { qemuForward } from "./qemu_forward.ts";
import type { OpKind } from "./types.ts";

/** Op kinds by their `kind`. */
export const OP_KINDS: ReadonlyMap<string, OpKind<Record<string, never>>> = new Map(
  ([
    fsWrite,
    fsMkdir,
    fsRemove,
    fsCopy,
    fsEdit,
    fsRestore,
    runOp,
    imageCreate,
    qemuLaunch,
    tpmLaunch,
    qmpOp,
    lvmCreate,
    lvmRemove,
    downloadOp,
    fileRead,
    sysfsWrite,
    journalCheckpoint,
    httpRequest,
    chunklistVerify,
    historyAppend,
    qemuSave,
    qemuRestore,
    qemuMigrate,
    consoleAttach,
    sshSession,
    guestExec,
    guestQuery,
    qemuAttach,
    qemuDetach,
    qemuForward,
  ] as unknown as OpKind<
    Record<string, never>
  >[])
    .map((op) => [op.kind, op]),
);
