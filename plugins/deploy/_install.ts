/**
 * Seeing an unattended installation through (a Windows VM's, made by windows-setup): `gini up`
 * answers the installation disc's "Press any key to boot from CD or DVD", shows the phase and the
 * time on a progress line, and when the guest writes its done marker on the serial console it
 * detaches the media, writes the definition without them and the record that keeps them off.
 *
 * @module
 */
import type { StageContext } from "../../workers/sdk.ts";
import type { VmDefinition } from "../qemu_setup/contracts.ts";
import { libvirtXml, qemuArgv } from "../qemu_setup/hotplug.ts";
import { own } from "./_files.ts";
import { powerControl, record, writeDefinition } from "./_vm.ts";
import { usage } from "./_errors.ts";

/** What the `install` stage did: null for a VM with nothing to install. */
export type Installed = { name: string; done: boolean; minutes: number; keySent: boolean } | null;

type Install = NonNullable<VmDefinition["install"]>;

/** The serial log from `from` on (bytes), as text. */
async function serialSince(def: VmDefinition, from: number): Promise<string> {
  const file = await Deno.open(def.paths.serialLog).catch(() => null);
  if (!file) return "";
  try {
    const size = (await file.stat()).size;
    if (size <= from) return "";
    await file.seek(from, Deno.SeekMode.Start);
    const bytes = new Uint8Array(size - from);
    let got = 0;
    while (got < bytes.length) {
      const n = await file.read(bytes.subarray(got));
      if (n === null) break;
      got += n;
    }
    return new TextDecoder().decode(bytes.subarray(0, got));
  } finally {
    file.close();
  }
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
      await ctx.op("run", {
        argv: disk.cdrom
          ? [
            "virsh",
            "-c",
            def.libvirtUri,
            "change-media",
            def.name,
            disk.path,
            "--eject",
            "--live",
          ]
          : ["virsh", "-c", def.libvirtUri, "detach-disk", def.name, disk.path, "--live"],
        allowFailure: true,
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

/** The definition without the installation's media, its argv and domain XML made again. */
async function withoutMedia(ctx: StageContext, def: VmDefinition, install: Install) {
  const { argv: _argv, install: _install, ...rest } = def;
  const next = { ...rest, disks: def.disks.filter((d) => !install.media.includes(d.id)) };
  const full = { ...next, argv: qemuArgv(next) } as VmDefinition;
  const oldXml = await own.readText(def.paths.domainXml).catch(() => "");
  await writeDefinition(
    ctx,
    full,
    libvirtXml(full, { nvramFormat: oldXml.includes('<nvram format="qcow2">') }),
  );
}

/**
 * Sees the installation through: `from` is where the serial log stood when this run started the
 * VM (null when it was already running: its boot prompt was answered before, or not at all).
 * Polls the log once a second and the VM's state every five; `timeoutMs` bounds the wait.
 */
export async function seeInstallThrough(
  ctx: StageContext,
  def: VmDefinition,
  from: number | null,
  timeoutMs: number,
): Promise<Installed> {
  const install = def.install;
  if (!install) return null;
  if (await own.stat(install.record).catch(() => null)) {
    return { name: def.name, done: true, minutes: 0, keySent: false };
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
    waited = await waitForDone(ctx, def, install, from, timeoutMs);
  }
  await detachMedia(ctx, def, install);
  await withoutMedia(ctx, def, install);
  await ctx.op("fs.write", {
    path: install.record,
    content: `${new Date().toISOString()}\n`,
    overwrite: false,
  });
  await record(ctx, def, "installed", { media });
  return { name: def.name, done: true, ...waited };
}

async function waitForDone(
  ctx: StageContext,
  def: VmDefinition,
  install: Install,
  from: number | null,
  timeoutMs: number,
): Promise<{ minutes: number; keySent: boolean }> {
  const started = Date.now();
  const minutes = () => Math.floor((Date.now() - started) / 60_000);
  const progress = ctx.ui.progress(`Installing ${def.name}`);
  // A VM that was running already had its boot prompt: no key goes to it now.
  let answered = from === null;
  let keySent = false;
  let phase = answered ? "the installation is running" : "waiting for the installer's boot prompt";
  let checked = Date.now();
  const vm = powerControl(ctx, def);
  while (true) {
    const log = await serialSince(def, from ?? 0);
    if (log.includes(install.done)) {
      progress.complete(`${def.name}: installed in ${minutes()} min`);
      return { minutes: minutes(), keySent };
    }
    if (!answered && log.includes(install.prompt)) {
      await pressKey(ctx, def);
      answered = keySent = true;
      phase = "the installer is running (Setup reboots the VM a few times)";
    }
    progress.update(minutes(), `${def.name}: ${phase} (${minutes()} min)`);
    if (Date.now() - started > timeoutMs) {
      throw usage(
        `VM "${def.name}" did not finish its installation within ${
          Math.round(timeoutMs / 60_000)
        } min: no "${install.done}" in ${def.paths.serialLog}`,
        `See the VM's screen (gini status ${def.name} shows its display), then run gini up again to go on waiting, or gini rm ${def.name} to start over`,
      );
    }
    if (Date.now() - checked > 5000) {
      checked = Date.now();
      const state = await vm.state();
      if (state === "stopped" || state === "crashed") {
        throw usage(
          `VM "${def.name}" ${
            state === "crashed" ? "crashed" : "powered off"
          } before its installation was done (${phase})`,
          `Its serial log: ${def.paths.serialLog}. Remove it (gini rm ${def.name}) and run gini up again`,
        );
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
