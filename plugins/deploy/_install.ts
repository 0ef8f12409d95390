/**
 * Seeing an unattended installation through (a Windows VM's, made by windows-setup): `gini up`
 * answers the installation disc's "Press any key to boot from CD or DVD", shows the phase and the
 * time on a progress line, and when the guest writes its done marker on the serial console it
 * detaches the media, writes the definition without them and the record that keeps them off.
 *
 * @module
 */
import { dirname, join } from "../../workers/path.ts";
import type { StageContext } from "../../workers/sdk.ts";
import type { VmDefinition } from "../qemu_setup/contracts.ts";
import { own } from "./_files.ts";
import { powerControl, readHistory, record } from "./_vm.ts";
import { redefine, rewriteDefinition } from "./_redefine.ts";
import type { LogRecord } from "../../workers/event_log.ts";
import { usage } from "./_errors.ts";

/** What the `install` stage did: null for a VM with nothing to install. */
export type Installed = { name: string; done: boolean; minutes: number; keySent: boolean } | null;

type Install = NonNullable<VmDefinition["install"]>;

/** The serial log's bytes so far (none before the VM wrote any). */
function serialBytes(def: VmDefinition): Promise<Uint8Array> {
  return own.readBytes(def.paths.serialLog).catch(() => new Uint8Array());
}

/** The serial log's size now: where a VM about to start begins writing. */
export async function serialEnd(def: VmDefinition): Promise<number> {
  return await own.stat(def.paths.serialLog).then((s) => s.size, () => 0);
}

/** Presses Enter in the guest: the boot loader's prompt takes any key. */
async function pressKey(ctx: StageContext, def: VmDefinition) {
  if (def.backend === "libvirt") {
    await ctx.op("run", {
      argv: ["virsh", "-c", def.libvirtUri, "send-key", def.name, "KEY_ENTER"],
    });
    return;
  }
  await ctx.op("qmp", {
    socket: def.paths.qmpSocket,
    command: "send-key",
    arguments: { keys: [{ type: "qcode", data: "ret" }] },
    timeoutMs: 10_000,
  });
}

/** Takes the media out of the running VM: the disc ejected, the USB disk unplugged. */
async function detachMedia(ctx: StageContext, def: VmDefinition, install: Install) {
  const media = def.disks.filter((d) => install.media.includes(d.id));
  for (const disk of media) {
    if (def.backend === "libvirt") {
      // The running domain and its persistent definition both: the next start has no media.
      const virsh = ["virsh", "-c", def.libvirtUri];
      await ctx.op("run", {
        argv: disk.cdrom
          ? [...virsh, "change-media", def.name, disk.path, "--eject", "--live", "--config"]
          : [...virsh, "detach-disk", def.name, disk.path, "--live", "--config"],
      });
      continue;
    }
    await ctx.op("qmp", {
      socket: def.paths.qmpSocket,
      ...(disk.cdrom
        ? { command: "eject", arguments: { id: disk.id, force: true } }
        : { command: "device_del", arguments: { id: disk.id } }),
      timeoutMs: 10_000,
    });
  }
}

/** Writes the definition without the installation's media, its argv and domain XML made again. */
async function withoutMedia(ctx: StageContext, def: VmDefinition, install: Install) {
  const { install: _install, ...rest } = def;
  const disks = def.disks.filter((d) => !install.media.includes(d.id));
  await rewriteDefinition(ctx, redefine(rest, { disks }));
}

/**
 * Where this boot's serial output begins, and whether its boot prompt was answered: from the VM's
 * history (`started` keeps the log's size when `gini up` started it; the key press is recorded).
 * A VM started otherwise (`gini start`) boots from its disk: no key is pressed for it.
 */
function bootOf(records: LogRecord[]): { from: number; answered: boolean } {
  const at = records.findLastIndex((r) => r.event === "started");
  const detail = records[at]?.detail as { serialFrom?: number } | null | undefined;
  if (at < 0 || typeof detail?.serialFrom !== "number") return { from: 0, answered: true };
  const answered = records.slice(at).some((r) => r.event === "boot-prompt-answered");
  return { from: detail.serialFrom, answered };
}

/**
 * Sees the installation of a running VM through, in `gini up`'s settle run (after the deploy
 * committed): presses the key its boot prompt wants (once per boot `gini up` started), shows the
 * phase, and when the done marker is in the serial log, detaches the media, writes the definition
 * without them and the record, and removes the answer file and its image (they hold the
 * password). A VM that is not running, or whose installation is done, is left as it is.
 */
export async function seeInstallThrough(ctx: StageContext, def: VmDefinition): Promise<Installed> {
  const install = def.install;
  if (!install) return null;
  if (await own.stat(install.record).catch(() => null)) {
    return { name: def.name, done: true, minutes: 0, keySent: false };
  }
  const state = await powerControl(ctx, def).state();
  if (!ctx.dryRun && state !== "running") {
    ctx.ui.warn(
      `VM "${def.name}" is ${state}: its installation is not done (no "${install.done}" in ${def.paths.serialLog})`,
    );
    return { name: def.name, done: false, minutes: 0, keySent: false };
  }
  const media = def.disks.filter((d) => install.media.includes(d.id)).map((d) => d.path);
  let waited = { minutes: 0, keySent: false };
  if (ctx.dryRun) {
    ctx.ui.info(
      `Would answer "${install.prompt}" on ${def.name}'s serial console, wait for "${install.done}", then detach ${
        media.join(" and ")
      }`,
    );
  } else {
    const boot = bootOf((await readHistory(ctx, def)).records);
    waited = await waitForDone(ctx, def, install, boot);
  }
  await detachMedia(ctx, def, install);
  await withoutMedia(ctx, def, install);
  await ctx.op("fs.write", {
    path: install.record,
    content: `${new Date().toISOString()}\n`,
    overwrite: false,
  });
  for (const secret of [join(dirname(install.record), "autounattend.xml"), ...media]) {
    if (secret.startsWith(`${def.paths.dir}/`)) {
      await ctx.op("fs.remove", { path: secret, missingOk: true });
    }
  }
  await record(ctx, def, "installed", { media });
  return { name: def.name, done: true, ...waited };
}

async function waitForDone(
  ctx: StageContext,
  def: VmDefinition,
  install: Install,
  boot: { from: number; answered: boolean },
): Promise<{ minutes: number; keySent: boolean }> {
  const started = Date.now();
  const minutes = () => Math.floor((Date.now() - started) / 60_000);
  const progress = ctx.ui.progress(`Installing ${def.name}`);
  let answered = boot.answered;
  let keySent = false;
  let phase = answered
    ? "the installation is running"
    : "waiting for the installation disc's boot prompt";
  let checked = Date.now();
  const vm = powerControl(ctx, def);
  while (true) {
    // The done marker from any boot; the prompt only from this one.
    const log = await serialBytes(def);
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    if (decode(log).includes(install.done)) {
      progress.complete(`${def.name}: installed in ${minutes()} min`);
      return { minutes: minutes(), keySent };
    }
    if (!answered) {
      if (decode(log.subarray(boot.from)).includes(install.prompt)) {
        await pressKey(ctx, def);
        await record(ctx, def, "boot-prompt-answered");
        answered = keySent = true;
        phase = "the installer is running (Setup restarts the VM a few times)";
      }
    }
    progress.update(minutes(), `${def.name}: ${phase} (${minutes()} min)`);
    if (Date.now() - started > install.timeoutMs) {
      throw usage(
        `VM "${def.name}" did not finish its installation within ${
          Math.round(install.timeoutMs / 60_000)
        } min: no "${install.done}" in ${def.paths.serialLog}; the VM goes on`,
        `See its screen (gini status ${def.name} shows the display), then run gini up again to go on watching; [windows] install_timeout sets how long`,
      );
    }
    if (Date.now() - checked > 5000) {
      checked = Date.now();
      const state = await vm.state();
      if (state === "stopped" || state === "crashed") {
        throw usage(
          `VM "${def.name}" ${
            state === "crashed" ? "crashed" : "powered off"
          } before its installation was done (${phase}); its serial log: ${def.paths.serialLog}`,
          `gini up again starts it and goes on watching, or gini rm ${def.name} to start over`,
        );
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
