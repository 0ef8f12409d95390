/**
 * Gini's command line. The only module that exits: code 2 for bad input, 1 for failures.
 *
 * @example
 * ```sh
 * deno task gini plugins list --json
 * ```
 *
 * @module
 */
import { Command, CommanderError, Option } from "@commander-js/extra-typings";
import denoJson from "./deno.json" with { type: "json" };
import {
  type ApprovedPlan,
  approvedPlan,
  createOpEnv,
  createUi,
  GiniError,
  loadPlugins,
  PlanChangedError,
  renderReport,
  resolveStartupEnv,
  resumeTransaction,
  runStages,
  type StartupEnv,
  type Ui,
  type UiSink,
  UsageError,
} from "./kernel/mod.ts";
import { didYouMean } from "./kernel/errors.ts";
import { describePlugin, pluginGraph, pluginSummary } from "./kernel/plugins/describe.ts";
import { KERNEL_API_VERSION } from "./kernel/plugins/manifest.ts";
import { PROTOCOL_VERSION } from "./workers/protocol.ts";
import type { EnvironmentData } from "./plugins/env_check/contracts.ts";
import { renderChecks, renderIommu } from "./plugins/env_check/render.ts";
import { GUESTS, parseSize, VM_NAME, vmJsonSchema } from "./plugins/qemu_setup/vm_schema.ts";
import type { VmDefinition } from "./plugins/qemu_setup/contracts.ts";
import { startScript } from "./plugins/qemu_setup/_qemu_args.ts";
import { listVms, newVmToml } from "./kernel/vms.ts";
import { CATALOGUE } from "./plugins/linux_setup/_catalogue.ts";
import { CPU_PROFILES, findRelease, MAC_RELEASES } from "./plugins/opencore/_releases.ts";
import { macosVmToml } from "./plugins/opencore/_vmfile.ts";
import { incompleteTransactions, listTransactions, readJournal } from "./kernel/journal/journal.ts";
import { pruneJournal } from "./kernel/journal/prune.ts";
import { formatBytes } from "./kernel/ops/types.ts";
import { rollbackFile, type RollbackReport } from "./kernel/journal/recovery.ts";
import { lockState, stateOwner } from "./kernel/journal/lock.ts";
import { setStopFallback, STOP_SIGNALS } from "./kernel/signals.ts";
import { complete, completionScript, type Shell, SHELLS } from "./cli/completions.ts";
import { verifyJournal } from "./kernel/journal/verify.ts";
import type { PlanReport } from "./kernel/stages/dry_run.ts";
import type { VfioPlan, VfioStatus } from "./plugins/vfio/contracts.ts";
import { dirname, isAbsolute, resolve } from "node:path";

/** Gini's version. */
export const VERSION = denoJson.version;

interface GlobalOptions {
  dryRun?: boolean;
  json?: boolean;
  verbose?: boolean;
  yes?: boolean;
  hostRoot?: string;
  configDir?: string;
  dataDir?: string;
  stateDir?: string;
  cacheDir?: string;
  pluginDir?: string[];
}

/** What a command needs: the UI, the directories, and the global flags. */
interface CommandEnv {
  ui: Ui;
  env: StartupEnv;
  flags: GlobalOptions;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** What a VM request takes from the user's session: the login name and ~/.ssh/*.pub keys. */
async function requestDefaults(env: StartupEnv): Promise<{ user?: string; sshKeys: string[] }> {
  const sshKeys: string[] = [];
  try {
    for await (const entry of Deno.readDir(`${env.home}/.ssh`)) {
      if (!entry.name.endsWith(".pub")) continue;
      const key = (await Deno.readTextFile(`${env.home}/.ssh/${entry.name}`)).trim();
      if (/^(ssh-|ecdsa-|sk-)/.test(key)) sshKeys.push(key);
    }
  } catch { /* no ~/.ssh */ }
  return { ...(env.user ? { user: env.user } : {}), sshKeys: sshKeys.sort() };
}

/** A macOS release by name, or a usage error listing them. */
function macRelease(name: string) {
  const release = findRelease(name);
  if (!release) {
    throw new UsageError(`Cannot install macOS "${name}": not a release Gini knows`, {
      hint: `Known: ${MAC_RELEASES.map((r) => r.name).join(", ")} (gini macos versions)`,
    });
  }
  return release;
}

/** The lines of a rollback report. */
function renderUndo(r: RollbackReport, dryRun: boolean): string[] {
  return [
    ...r.undone.map((u) => `  ${dryRun ? "would undo" : "undid"} #${u.seq} ${u.description}`),
    ...r.irreversible.map((u) => `  ! cannot undo #${u.seq} ${u.description}`),
    ...r.failed.map((u) => `  ✗ #${u.seq} ${u.description}: ${u.error}`),
  ];
}

/** Builds the command tree. `run` wraps every action with start-up and error handling. */
function buildProgram(
  sink: UiSink | undefined,
  processEnv: Record<string, string | undefined>,
  cwd: string,
) {
  let exitCode = 0;
  const program = new Command()
    .name("gini")
    .description(
      "Deploy and manage QEMU/KVM virtual machines: macOS, Linux, Windows, VFIO passthrough",
    )
    .option("-n, --dry-run", "show what would change without changing anything")
    .option("--json", "machine-readable output")
    .option("-v, --verbose", "more detail")
    .option("-y, --yes", "answer yes to confirmations")
    .option("--host-root <dir>", "read the host from this directory tree instead of /")
    .option("--config-dir <dir>", "configuration directory (default ~/.config/gini)")
    .option("--data-dir <dir>", "data directory: VMs, user plugins (default ~/.local/share/gini)")
    .option("--state-dir <dir>", "state directory: journal (default ~/.local/state/gini)")
    .option("--cache-dir <dir>", "cache directory: downloads (default ~/.cache/gini)")
    .option("--plugin-dir <dir>", "also load plugins from this directory (repeatable)", collect)
    .showSuggestionAfterError(true)
    .exitOverride();
  const encoder = new TextEncoder();
  program.configureOutput({
    writeOut: sink ? (s) => sink.out(s) : (s) => void Deno.stdout.writeSync(encoder.encode(s)),
    writeErr: sink ? (s) => sink.err(s) : (s) => void Deno.stderr.writeSync(encoder.encode(s)),
    // Usage errors are reported by main(), as text or as --json, with the exit code 2.
    outputError: () => {},
  });

  const context = (): CommandEnv => {
    const flags = program.opts() as GlobalOptions;
    const ui = createUi({
      json: flags.json ?? false,
      verbose: flags.verbose ?? false,
      ...(sink ? { sink } : {}),
    });
    return { ui, flags, env: resolveStartupEnv(flags, processEnv, cwd) };
  };
  /** A confirmed command goes ahead with --yes, or a yes on a terminal after seeing `shown`. */
  const confirmed = (c: CommandEnv, question: string, refusal: string, shown: string) => {
    if (c.flags.yes) return true;
    if (!Deno.stdin.isTerminal()) {
      throw new UsageError(refusal, { hint: "Pass --yes, or run it on a terminal" });
    }
    c.ui.info(shown);
    return confirm(question);
  };
  const warnIncomplete = async (c: CommandEnv, name: string) => {
    if (["recover", "journal", "version"].includes(name)) return;
    const incomplete = await incompleteTransactions(c.env.dirs.state).catch(() => []);
    const owner = incomplete.length ? stateOwner(c.env.dirs.state) : null;
    for (const t of incomplete) {
      if (owner && owner.tx === t.id && owner.pid !== Deno.pid) {
        c.ui.warn(
          `In progress in another process: ${t.command} (${t.id}, gini pid ${owner.pid}, since ${owner.at}); changes wait until it ends`,
        );
        continue;
      }
      if (t.rollbackIncomplete) {
        c.ui.warn(
          `A failed operation could not be fully undone: ${t.command} (${t.id}, ${t.applied.length} change(s) still in place). Run "gini recover" to finish undoing it; add --dry-run to see how`,
        );
        continue;
      }
      const how = t.replay?.recoverBy ?? "rollback";
      c.ui.warn(
        `An operation was interrupted: ${t.command} (${t.id}, ${t.applied.length} change(s) applied, ${t.checkpoints.size} stage(s) complete). Run "gini recover" to ${
          how === "resume" ? "finish it (--resume)" : "undo it (--rollback)"
        }, or choose "gini recover --${
          how === "resume" ? "rollback" : "resume"
        }"; add --dry-run to see how`,
      );
    }
  };
  const run = <A extends unknown[]>(
    action: (c: CommandEnv, ...args: A) => Promise<number | void> | number | void,
  ) =>
  async (...args: A) => {
    let c: CommandEnv | undefined;
    try {
      c = context();
      const command = args.at(-1) instanceof Command ? (args.at(-1) as Command).name() : "";
      await warnIncomplete(c, command);
      exitCode = (await action(c, ...args)) ?? 0;
    } catch (error) {
      (c?.ui ??
        createUi({
          json: (program.opts() as GlobalOptions).json ?? false,
          ...(sink ? { sink } : {}),
        }))
        .failure(error);
      exitCode = error instanceof GiniError ? error.exitCode : 1;
    }
  };

  /** Runs stages as a dry run (only read-only queries execute) and returns one context key. */
  const query = async <T>(c: CommandEnv, target: string, key: string): Promise<T> => {
    const loaded = await loadPlugins(c.env, c.flags.pluginDir ?? []);
    const { result } = await runStages({
      env: c.env,
      loaded,
      ui: c.ui,
      dryRun: true,
      targets: [target],
    });
    if (!result.ok) throw result.error;
    return result.context[key] as unknown as T;
  };

  program.command("completions")
    .description("print a shell completion script: bash, zsh or fish (see the README)")
    .argument("<shell>", "bash, zsh or fish")
    .action(run(({ ui }, shell: string) => {
      if (!(SHELLS as readonly string[]).includes(shell)) {
        throw new UsageError(
          `Cannot write completions for "${shell}": expected bash, zsh or fish`,
          {
            hint: didYouMean(shell, SHELLS) ?? "Run: gini completions bash",
            location: { flag: "<shell>" },
          },
        );
      }
      const script = completionScript(shell as Shell);
      ui.result({ shell, script }, () => script.trimEnd());
    }));
  program.command("__complete", { hidden: true })
    .description("the candidates at the cursor, for the completion scripts")
    .argument("[words...]", "the words after gini, the last one being typed")
    .allowUnknownOption()
    .helpOption(false);

  program.command("version")
    .description("print versions of Gini, its kernel API and Deno")
    .action(run(({ ui }) => {
      const data = {
        gini: VERSION,
        kernelApi: KERNEL_API_VERSION,
        protocol: PROTOCOL_VERSION,
        deno: Deno.version.deno,
      };
      ui.result(
        data,
        () =>
          `gini ${data.gini} (kernel API ${data.kernelApi}, protocol ${data.protocol}, deno ${data.deno})`,
      );
    }));

  const plugins = program.command("plugins").description("list and inspect plugins");
  plugins.command("list")
    .description("list loaded plugins with their permissions, ops and stages")
    .action(run(async ({ ui, env, flags }) => {
      const loaded = await loadPlugins(env, flags.pluginDir ?? []);
      for (const s of loaded.skipped) ui.warn(`Skipped plugin "${s.plugin}": ${s.reason}`);
      const list = loaded.plugins.map(pluginSummary);
      ui.result(
        list,
        () =>
          list.length === 0
            ? "No plugins found"
            : list.map((p) =>
              `${p.name} ${p.version}  ${p.priority}${
                p.core ? "  core" : ""
              }\n  ${p.description}\n  stages: ${p.stages.map((s) => s.id).join(", ") || "(none)"}`
            ).join("\n"),
      );
    }));
  plugins.command("info")
    .description("show one plugin's manifest, permissions and stages")
    .argument("<name>", "plugin name")
    .action(run(async ({ ui, env, flags }, name: string) => {
      const loaded = await loadPlugins(env, flags.pluginDir ?? []);
      const info = await describePlugin(loaded, name);
      ui.result(info.data, () => info.text);
    }));
  plugins.command("graph")
    .description("print the plugin dependencies and the stage DAG as Mermaid")
    .action(run(async ({ ui, env, flags }) => {
      const loaded = await loadPlugins(env, flags.pluginDir ?? []);
      const graph = pluginGraph(loaded);
      ui.result(graph.data, () => graph.mermaid);
    }));

  program.command("check")
    .description("check what this host (or --host-root) can run: KVM, IOMMU, GPUs, firmware, tools")
    .option("--iommu", "list IOMMU groups and their devices, like ls-iommu")
    .action(run(async (c, options: { iommu?: boolean }) => {
      const ui = c.ui;
      // A check changes nothing: it runs as a dry run, where only read-only queries execute.
      const report = await query<EnvironmentData>(
        c,
        "env-check:finalize-host-report",
        "session.environment_data",
      );
      if (options.iommu) ui.result(report.iommu, () => renderIommu(report, ui.paint));
      else ui.result(report, () => renderChecks(report, ui.paint));
      return report.checks.some((c) => c.status === "FAIL") ? 1 : 0;
    }));

  /**
   * Runs `gini up` for a VM file, dry or live; shared by plan and up. `generated`: a VM file
   * made by the command (create-vm), shown in its dry run and, with `save`, written by the
   * deploy itself (deploy:write-files), so that a failed deploy leaves no VM file behind.
   */
  const deploy = async (
    c: CommandEnv,
    file: string,
    dryRun: boolean,
    start = true,
    generated?: { text: string; command: string; save: boolean; flags?: Record<string, string> },
  ) => {
    const path = isAbsolute(file) ? file : resolve(c.env.cwd, file);
    let text: string;
    try {
      text = generated?.text ?? await Deno.readTextFile(path);
    } catch (error) {
      throw new UsageError(
        `Cannot read VM file "${path}": ${error instanceof Error ? error.message : error}`,
        {
          hint: 'Create one with "gini new NAME"',
        },
      );
    }
    const loaded = await loadPlugins(c.env, c.flags.pluginDir ?? []);
    const { result, report } = await runStages({
      env: c.env,
      loaded,
      ui: c.ui,
      dryRun,
      targets: start
        ? ["deploy:start"]
        : ["deploy:write-files", "linux-setup:assemble-cloud-init-iso"],
      seeds: {
        "session.user_vm_request": {
          file: path,
          text,
          defaults: await requestDefaults(c.env),
          ...(generated?.save ? { save: true } : {}),
          ...(generated?.flags ? { flags: generated.flags } : {}),
        },
      },
      requestDir: dirname(path),
      command: generated?.command ??
        `${dryRun ? "plan" : "up"} ${file}${start ? "" : " --no-start"}`,
      pluginDirs: c.flags.pluginDir ?? [],
      recoverBy: "resume",
    });
    if (!result.ok) throw result.error;
    const def = result.context["session.vm_definition"] as unknown as VmDefinition;
    const xml = result.context["session.libvirt_xml"] as string;
    const started = result.context["deploy.started"] as { pid?: number | null } | undefined;
    const data = { ...report, file: path, vmDefinition: def, libvirtXml: xml };
    c.ui.result({ ...data, started: started ?? null }, () => {
      const lines = [renderReport(report), ""];
      if (dryRun && generated) {
        lines.push(`VM file (written to ${path} without --dry-run):`, generated.text);
      } else if (dryRun) {
        lines.push("QEMU command line (start.sh):", startScript(def), "Domain XML (vm.xml):", xml);
      } else if (!start) {
        lines.push(
          `VM "${def.name}" created, not started`,
          `  files: ${def.paths.dir}`,
          def.backend === "libvirt"
            ? `  start it: virsh -c ${def.libvirtUri} start ${def.name}`
            : `  start it: ${def.paths.startScript}`,
        );
      } else {
        const forwards = def.nics.flatMap((n) =>
          n.forwards.map((f) => `${f.protocol} ${f.address}:${f.host} → guest ${f.guest}`)
        );
        lines.push(
          `VM "${def.name}" started${
            started?.pid ? ` (pid ${started.pid})` : ""
          } under ${def.accel.toUpperCase()}`,
          `  serial log: ${def.paths.serialLog}`,
          def.backend === "libvirt"
            ? `  libvirt:    virsh -c ${def.libvirtUri} dominfo ${def.name} (or virt-manager)`
            : `  QMP:        ${def.paths.qmpSocket}`,
          ...(forwards.length ? [`  forwards:   ${forwards.join(", ")}`] : []),
          ...(def.display.type === "vnc"
            ? [`  display:    VNC on 127.0.0.1:${5900 + (def.display.port ?? 0)}`]
            : def.display.type === "spice"
            ? [`  display:    SPICE on 127.0.0.1:${def.display.port ?? 5930}`]
            : []),
          `  stop it:    gini down ${def.name}`,
        );
      }
      return lines.join("\n");
    });
  };

  program.command("plan")
    .description("show everything `gini up` would do for a VM file, changing nothing")
    .argument("<vm.toml>", "the VM file")
    .action(run((c, file: string) => deploy(c, file, true)));
  program.command("up")
    .description("create and start the VM a file describes (--dry-run: the same as plan)")
    .argument("<vm.toml>", "the VM file")
    .option("--no-start", "create the disks and files, but do not start the VM")
    .action(
      run((c, file: string, options: { start: boolean }) =>
        deploy(c, file, c.flags.dryRun ?? false, options.start)
      ),
    );

  program.command("down")
    .description("power a VM off over QMP (ACPI), then stop it after a timeout")
    .argument("<name>", "the VM's name")
    .option("--timeout <seconds>", "how long to wait for the guest to power off", "60")
    .action(run(async (c, name: string, options: { timeout: string }) => {
      const seconds = Number(options.timeout);
      if (!Number.isFinite(seconds) || seconds <= 0) {
        throw new UsageError(`Cannot use --timeout "${options.timeout}": expected seconds`);
      }
      const loaded = await loadPlugins(c.env, c.flags.pluginDir ?? []);
      const { result } = await runStages({
        env: c.env,
        loaded,
        ui: c.ui,
        dryRun: c.flags.dryRun ?? false,
        targets: ["deploy:power-down"],
        command: `down ${name}`,
        pluginDirs: c.flags.pluginDir ?? [],
        recoverBy: "resume",
        seeds: { "session.target_vm": { name, timeoutMs: seconds * 1000 } },
      });
      if (!result.ok) throw result.error;
      const stopped = result.context["deploy.stopped"] as { how: string };
      c.ui.result(
        stopped,
        () =>
          stopped.how === "not-running"
            ? `VM "${name}" is not running`
            : `VM "${name}" stopped (${stopped.how === "acpi" ? "powered off" : "forced"})`,
      );
    }));

  program.command("rm")
    .description("remove what `gini up` created for a VM (asks first; --yes skips)")
    .argument("<name>", "the VM's name")
    .action(run(async (c, name: string) => {
      const loaded = await loadPlugins(c.env, c.flags.pluginDir ?? []);
      const options = {
        env: c.env,
        loaded,
        ui: c.ui,
        targets: ["deploy:remove"],
        seeds: { "session.target_vm": { name } },
        command: `rm ${name}`,
        pluginDirs: c.flags.pluginDir ?? [],
        recoverBy: "resume" as const,
      };
      const plan = await runStages({ ...options, dryRun: true });
      if (!plan.result.ok) throw plan.result.error;
      if (c.flags.dryRun) {
        c.ui.result(plan.report, () => renderReport(plan.report));
        return;
      }
      const approved = approvedPlan(plan.report);
      if (
        !confirmed(
          c,
          `Remove VM "${name}" and its disks? (plan ${approved.digest.slice(7, 19)})`,
          `Cannot remove VM "${name}" without confirmation`,
          renderReport(plan.report),
        )
      ) return 1;
      const { result, report } = await runStages({ ...options, dryRun: false, approved });
      if (result.error instanceof PlanChangedError) {
        const again = await runStages({ ...options, dryRun: true });
        if (again.result.ok) c.ui.info(`The plan now:\n${renderReport(again.report)}`);
      }
      if (!result.ok) throw result.error;
      c.ui.result(report, () => `VM "${name}" removed`);
    }));

  program.command("ls")
    .description("list the VMs Gini made, with their state")
    .action(run(async ({ ui, env }) => {
      const vms = await listVms(env.dirs.data);
      ui.result(
        vms,
        () =>
          vms.length === 0
            ? 'No VMs yet: create one with "gini new NAME" and "gini up NAME.toml"'
            : vms.map((v) =>
              `${v.name.padEnd(20)} ${v.state.padEnd(8)} ${
                v.accel.padEnd(4)
              } ${v.vcpus} vCPU  ${v.memory}  ${v.backend}${v.pid ? `  pid ${v.pid}` : ""}`
            ).join("\n"),
      );
    }));

  program.command("new")
    .description("write a commented VM file, sized for this host (a Linux cloud guest by default)")
    .argument("<name>", "the VM's name: letters, digits, '.', '_' and '-'")
    .option("--guest <guest>", "linux, windows, macos or other", "linux")
    .option(
      "--image <image>",
      "the Linux guest's image: a catalogue name (gini images list), a path or a URL (default debian-12)",
    )
    .option("--version <release>", "the macOS release (gini macos versions), with --guest macos")
    .option("-o, --output <file>", "where to write it (default NAME.toml in this folder)")
    .action(run(async (
      c,
      name: string,
      options: { guest: string; image?: string; output?: string; version?: string },
    ) => {
      const image = options.image ?? "debian-12";
      if (!VM_NAME.test(name)) {
        throw new UsageError(
          `Cannot name a VM "${name}": expected letters, digits, '.', '_' and '-', starting with a letter or digit (at most 63)`,
          {
            hint: `For example: gini new ${
              name.replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "").slice(0, 63) ||
              "my-vm"
            }`,
          },
        );
      }
      if (!(GUESTS as readonly string[]).includes(options.guest)) {
        throw new UsageError(
          `Cannot use --guest "${options.guest}": expected ${GUESTS.join(", ")}`,
          {
            location: { flag: "--guest" },
            hint: didYouMean(options.guest, GUESTS) ?? "Use --guest other for any other system",
          },
        );
      }
      if (options.guest !== "linux" && options.image !== undefined) {
        throw new UsageError(`Cannot use --image with --guest ${options.guest}`, {
          location: { flag: "--image" },
          hint: "Cloud images are for Linux guests: drop --image, or use --guest linux",
        });
      }
      if (
        options.guest === "linux" && !CATALOGUE[image] &&
        !/^(https?|file):\/\//.test(image) && !/[/.]/.test(image)
      ) {
        throw new UsageError(
          `Cannot use --image "${image}": not in the catalogue, and not a path or a URL`,
          {
            location: { flag: "--image" },
            hint: didYouMean(image, Object.keys(CATALOGUE)) ??
              `Known: ${Object.keys(CATALOGUE).join(", ")} (gini images list)`,
          },
        );
      }
      const host = await query<EnvironmentData>(
        c,
        "env-check:finalize-host-report",
        "session.environment_data",
      );
      const text = options.guest === "macos"
        ? macosVmToml({
          name,
          release: macRelease(options.version ?? "sonoma"),
          cores: Math.max(2, 2 ** Math.floor(Math.log2(Math.max(2, host.cpu.threads / 2)))),
          memory: host.memory.totalBytes >= 16 * 1024 ** 3 ? "8G" : "4G",
          disk: "64G",
        })
        : newVmToml(name, options.guest, host, image);
      const shown = options.output ?? `${name}.toml`;
      const out = resolve(c.env.cwd, shown);
      if (c.flags.dryRun) {
        c.ui.result(
          { file: out, text, written: false },
          () => `Would write ${out} (dry run: nothing was written):\n${text}`,
        );
        return;
      }
      try {
        await Deno.writeTextFile(out, text, { createNew: true });
      } catch (error) {
        if (error instanceof Deno.errors.AlreadyExists) {
          throw new UsageError(`Cannot write "${out}": it exists`, {
            hint: "Choose another name with --output",
          });
        }
        throw error;
      }
      c.ui.result(
        { file: out, text, written: true },
        () => `Wrote ${out}: edit it, then run "gini plan ${shown}" and "gini up ${shown}"`,
      );
    }));

  const images = program.command("images").description(
    "the cloud image catalogue and the download cache",
  );
  images.command("list")
    .description("list the catalogue's cloud images")
    .action(run(({ ui }) => {
      const list = Object.entries(CATALOGUE).map(([name, e]) => ({ name, ...e }));
      ui.result(
        list,
        () =>
          list.map((e) =>
            `${e.name.padEnd(14)} ${e.description}\n${
              "".padEnd(14)
            } ${e.url} (${e.format}, ${e.algorithm})`
          ).join("\n"),
      );
    }));
  images.command("pull")
    .description("download a catalogue image (or a URL) into the cache, verified")
    .argument("<name>", "a catalogue name, a URL, or a local file")
    .action(run(async (c, name: string) => {
      const loaded = await loadPlugins(c.env, c.flags.pluginDir ?? []);
      const { result, report } = await runStages({
        env: c.env,
        loaded,
        ui: c.ui,
        dryRun: c.flags.dryRun ?? false,
        targets: ["linux-setup:pull-image"],
        command: `images pull ${name}`,
        pluginDirs: c.flags.pluginDir ?? [],
        recoverBy: "resume",
        seeds: { "session.image_request": { name, cwd: c.env.cwd } },
      });
      if (!result.ok) throw result.error;
      const pulled = result.context["linux_setup.pulled"] as { path: string };
      c.ui.result(
        { ...report, image: pulled },
        () => c.flags.dryRun ? renderReport(report) : `${name}: ${pulled.path}`,
      );
    }));

  program.command("recover")
    .description(
      "finish an interrupted operation: resume a deployment, undo a host change (--dry-run shows how)",
    )
    .option("--rollback", "undo every change the interrupted operation made")
    .option("--resume", "carry it forward: redo unfinished stages from the last checkpoints")
    .action(run(async (c, options: { rollback?: boolean; resume?: boolean }) => {
      const { flags } = c;
      if (options.rollback && options.resume) {
        throw new UsageError("Cannot both roll back and resume", {
          hint: "Choose --rollback or --resume",
        });
      }
      const dryRun = flags.dryRun ?? false;
      // A live gini's transaction is not interrupted: recovering it would race it. Refused,
      // naming the process; a dry run only skips it.
      const lock = dryRun ? undefined : lockState(c.env.dirs.state, "recover");
      try {
        return await recover(c, options, dryRun);
      } finally {
        lock?.release();
      }
    }));
  const recover = async (
    c: CommandEnv,
    options: { rollback?: boolean; resume?: boolean },
    dryRun: boolean,
  ) => {
    const { ui, flags } = c;
    const owner = stateOwner(c.env.dirs.state);
    const incomplete = (await incompleteTransactions(c.env.dirs.state)).filter((tx) => {
      if (!owner || owner.pid === Deno.pid || owner.tx !== tx.id) return true;
      ui.warn(`Skipping ${tx.id} (${tx.command}): gini pid ${owner.pid} is running it now`);
      return false;
    });
    const lines: string[] = [];
    const results: Record<string, unknown>[] = [];
    let failed = false;
    for (const tx of incomplete) {
      const how = options.resume
        ? "resume"
        : options.rollback || tx.rollbackIncomplete
        ? "rollback"
        : tx.replay?.recoverBy ?? "rollback";
      if (how === "rollback") {
        const r = await rollbackFile(tx.file, createOpEnv(c.env, ui), dryRun);
        failed ||= r.failed.length > 0;
        results.push({ id: tx.id, command: tx.command, action: "rollback", ...r });
        lines.push(
          `${dryRun ? "Would roll back" : "Rolled back"} ${tx.id} (${tx.command}):`,
          ...renderUndo(r, dryRun),
        );
        continue;
      }
      const replay = tx.replay;
      const env = replay
        ? resolveStartupEnv(
          {
            ...flags,
            hostRoot: replay.hostRoot,
            configDir: replay.dirs.config,
            dataDir: replay.dirs.data,
            cacheDir: replay.dirs.cache,
          },
          processEnv,
          cwd,
        )
        : c.env;
      const loaded = await loadPlugins(env, replay?.pluginDirs ?? []);
      const r = await resumeTransaction(tx, { env, loaded, ui, dryRun });
      const { result, report } = r.outcome;
      failed ||= !result.ok;
      results.push({
        id: tx.id,
        command: tx.command,
        action: "resume",
        undone: r.undone,
        restored: r.restored,
        ok: result.ok,
        ...report,
        ...(result.error ? { error: result.error.toJSON() } : {}),
      });
      lines.push(
        `${dryRun ? "Would resume" : "Resumed"} ${tx.id} (${tx.command}):`,
        `  complete before the interruption: ${
          r.restored.length === 0
            ? "no stage"
            : flags.verbose
            ? r.restored.join(", ")
            : `${r.restored.length} stage(s), the last ${r.restored.at(-1)}`
        }`,
        ...renderUndo(r.undone, dryRun),
        dryRun ? "  then would run:" : result.ok ? "  then ran:" : "  then failed:",
        ...renderReport(report).split("\n").map((l) => `  ${l}`),
      );
      if (result.error && !ui.json) ui.failure(result.error);
    }
    ui.result(results, () => lines.length === 0 ? "Nothing to recover" : lines.join("\n"));
    return failed ? 1 : 0;
  };

  const journal = program.command("journal").description(
    "the history of operations that changed this host",
  );
  journal.command("list")
    .description("list transactions, newest first")
    .action(run(async ({ ui, env }) => {
      const list = (await listTransactions(env.dirs.state)).map((t) => ({
        id: t.id,
        command: t.command,
        at: t.at,
        state: t.state,
        changes: t.applied.length,
      }));
      ui.result(
        list,
        () =>
          list.length === 0
            ? "No transactions yet"
            : list.map((t) =>
              `${t.id}  ${t.state.padEnd(10)} ${
                String(t.changes).padStart(3)
              } change(s)  ${t.command}`
            ).join("\n"),
      );
    }));
  journal.command("show")
    .description("show one transaction's records")
    .argument("<id>", "a transaction id from gini journal list")
    .action(run(async ({ ui, env }, id: string) => {
      const tx = (await listTransactions(env.dirs.state)).find((t) =>
        t.id === id || t.id.startsWith(id)
      );
      if (!tx) {
        throw new UsageError(`Cannot find transaction "${id}"`, {
          hint: "List them with gini journal list",
        });
      }
      const { records, torn } = await readJournal(tx.file);
      ui.result(
        { ...tx, records, torn },
        () =>
          [
            `${tx.id} (${tx.state}) ${tx.command}`,
            ...records.map((r) => `  ${JSON.stringify(r)}`),
            ...(torn ? ["  (the last record was torn and is ignored)"] : []),
          ].join("\n"),
      );
    }));
  journal.command("verify")
    .description(
      "check that files committed transactions produced still have their recorded hashes",
    )
    .action(run(async ({ ui, env }) => {
      const { checked, changed } = await verifyJournal(env.dirs.state);
      ui.result(
        { checked, changed },
        () =>
          changed.length === 0
            ? `${checked} file(s) checked: all as Gini left them`
            : changed.map((c) =>
              `changed: ${c.path} (${c.id}): expected ${c.expected.slice(0, 12)}…, found ${
                c.actual.slice(0, 12)
              }…`
            ).join("\n"),
      );
      return changed.length ? 1 : 0;
    }));

  journal.command("prune")
    .description(
      "remove old ended transactions and unneeded backups (keeps what recover and vfio undo need)",
    )
    .option("--keep <n>", "ended transactions to keep, newest first", "20")
    .action(run(async ({ ui, env, flags }, options: { keep: string }) => {
      const keep = Number(options.keep);
      if (!Number.isInteger(keep) || keep < 0) {
        throw new UsageError(`Cannot use --keep "${options.keep}": expected a whole number`, {
          hint: "For example: gini journal prune --keep 10",
        });
      }
      const dryRun = flags.dryRun ?? false;
      const r = await pruneJournal(env.dirs.state, { keep, dryRun });
      const bytes = r.removed.reduce((n, t) => n + t.bytes, 0);
      ui.result(r, () =>
        [
          ...(flags.verbose
            ? r.removed.map((t) => `  ${t.id}  ${t.state.padEnd(10)} ${t.command}`)
            : []),
          `${dryRun ? "Would remove" : "Removed"} ${r.removed.length} transaction(s) (${
            formatBytes(bytes)
          }) and ${r.blobs.removed} backup blob(s) (${formatBytes(r.blobs.bytes)})`,
          `Kept: ${r.kept.recent} recent, ${r.kept.incomplete} incomplete (gini recover), ${r.kept.inPlace} VFIO configuration(s) in place (gini vfio undo); ${r.blobs.kept} blob(s)`,
        ].join("\n"));
    }));

  const macos = program.command("macos").description("macOS releases Gini can install");
  macos.command("versions")
    .description("list the releases: name, version, recovery board-id, CPU model, disk and NIC")
    .action(run(({ ui }) => {
      const list = MAC_RELEASES.map((r) => ({ ...r, cpuModel: CPU_PROFILES[r.cpu].model }));
      ui.result(list, () =>
        [
          "name         version  title                 board-id               CPU model       disk    nic",
          ...list.map((r) =>
            `${r.name.padEnd(12)} ${r.version.padEnd(8)} ${r.title.padEnd(21)} ${
              r.boardId.padEnd(22)
            } ${r.cpuModel.padEnd(15)} ${r.disk.padEnd(7)} ${r.nic}`
          ),
          "",
          "Run macOS only on Apple hardware, as Apple's licence requires.",
        ].join("\n"));
    }));

  program.command("create-vm")
    .description(
      "make a macOS VM in one step: its file, OpenCore disk, recovery image, and start it",
    )
    .requiredOption("--name <name>", "the VM's name (spaces allowed)")
    .requiredOption("--version <release>", "the macOS release (gini macos versions)")
    .option("--cpu-cores <n>", "cores (a power of two)", "4")
    .option("--ram <size>", "memory", "8G")
    .option("--disk <size>", "the macOS disk", "64G")
    .action(run(async (
      c,
      options: { name: string; version: string; cpuCores: string; ram: string; disk: string },
    ) => {
      const cores = Number(options.cpuCores);
      if (!Number.isInteger(cores) || cores < 1) {
        throw new UsageError(`Cannot use --cpu-cores "${options.cpuCores}": expected a number`, {
          location: { flag: "--cpu-cores" },
          hint: "For example --cpu-cores 4 (a power of two)",
        });
      }
      for (const [flag, value] of [["--ram", options.ram], ["--disk", options.disk]] as const) {
        if (parseSize(value) === undefined) {
          throw new UsageError(`Cannot use ${flag} "${value}": expected a size such as 8G`, {
            location: { flag },
            hint: `Give a number with a unit: K, M, G or T (${flag} 8G)`,
          });
        }
      }
      const slug = options.name.trim().replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^-+|-+$/g, "");
      if (!slug) throw new UsageError(`Cannot make a VM name from "${options.name}"`);
      const text = macosVmToml({
        name: slug,
        ...(slug !== options.name ? { description: options.name } : {}),
        release: macRelease(options.version),
        cores,
        memory: options.ram,
        disk: options.disk,
      });
      const file = resolve(c.env.dirs.config, "vms", `${slug}.toml`);
      const existing = await Deno.readTextFile(file).catch((error) => {
        if (error instanceof Deno.errors.NotFound) return null;
        throw error;
      });
      if (existing !== null && existing !== text) {
        throw new UsageError(`Cannot create "${slug}": ${file} exists with other settings`, {
          hint: `Edit it and run "gini up ${file}", or choose another --name`,
        });
      }
      await deploy(c, file, c.flags.dryRun ?? false, true, {
        text,
        command: `create-vm ${slug}`,
        save: existing === null,
        flags: {
          name: "--name",
          "cpu.cores": "--cpu-cores",
          "memory.size": "--ram",
          "disks.0.size": "--disk",
          "macos.version": "--version",
        },
      });
    }));

  const vfio = program.command("vfio").description(
    "prepare this host (or --host-root) for PCI passthrough, and undo it",
  );
  interface VfioOptions {
    device?: string[];
    force?: boolean;
    bindNow?: boolean;
    initramfs?: string;
    bootloader?: string;
  }
  const vfioFlags = (command: Command) =>
    command
      .option("-d, --device <address>", "a PCI device to pass through (repeatable)", collect)
      .option("--force", "allow the boot display, or the host's only display device")
      .option("--bind-now", "also move the devices to vfio-pci now, without a reboot")
      .option("--initramfs <name>", "initramfs-tools, dracut, mkinitcpio or booster")
      .option(
        "--bootloader <name>",
        "grub, grub-bls, systemd-boot, kernel-cmdline, kernelstub, refind or limine",
      );
  const vfioRun = async (
    c: CommandEnv,
    options: VfioOptions,
    dryRun: boolean,
    approved?: ApprovedPlan,
  ) => {
    const loaded = await loadPlugins(c.env, c.flags.pluginDir ?? []);
    const request = {
      devices: options.device ?? [],
      force: options.force ?? false,
      bindNow: options.bindNow ?? false,
      ...(options.initramfs ? { initramfs: options.initramfs } : {}),
      ...(options.bootloader ? { bootloader: options.bootloader } : {}),
    };
    const { result, report } = await runStages({
      env: c.env,
      loaded,
      ui: c.ui,
      dryRun,
      targets: ["vfio:configure"],
      seeds: { "session.vfio_request": request },
      command: `vfio ${dryRun ? "plan" : "apply"} ${request.devices.join(" ")}`.trim(),
      pluginDirs: c.flags.pluginDir ?? [],
      recoverBy: "rollback",
      ...(approved ? { approved } : {}),
    });
    if (result.error instanceof PlanChangedError) {
      const again = await vfioRun(c, options, true);
      c.ui.info(`The plan now:\n${renderVfio(again.plan, again.report, true)}`);
    }
    if (!result.ok) throw result.error;
    return { plan: result.context["vfio.plan"] as unknown as VfioPlan, report };
  };
  const renderVfio = (plan: VfioPlan, report: PlanReport, dryRun: boolean) => {
    const lines = [
      "Devices (whole IOMMU groups):",
      ...plan.devices.map((d) =>
        `  ${d.address}  [${d.vendor}:${d.device}]  ${d.name}  (group ${d.iommuGroup ?? "?"}, ${
          d.driver ?? "no driver"
        }${d.reason === "listed" ? "" : `, ${d.reason}`})`
      ),
      `vfio-pci.ids: ${plan.ids.join(",")}`,
      `Kernel arguments: ${plan.kernelArgs.join(" ")}`,
      `Initramfs: ${plan.initramfs}; boot loader: ${plan.bootloader}`,
      "",
    ];
    if (plan.files.length === 0 && plan.bindNow.length === 0) {
      lines.push("Nothing to change: the host is already configured for these devices");
      return lines.join("\n");
    }
    lines.push(renderReport(report));
    if (dryRun) lines.push("", "Apply it with: gini vfio apply (the same flags)");
    else lines.push("", "Reboot to load vfio-pci at boot. Undo it with: gini vfio undo");
    return lines.join("\n");
  };
  vfioFlags(
    vfio.command("plan").description("show the devices, file diffs and commands, changing nothing"),
  ).action(run(async (c, options: VfioOptions) => {
    const { plan, report } = await vfioRun(c, options, true);
    c.ui.result({ ...report, vfio: plan }, () => renderVfio(plan, report, true));
  }));
  vfioFlags(
    vfio.command("apply").description("make the changes vfio plan shows (asks first; --yes skips)"),
  ).action(run(async (c, options: VfioOptions) => {
    const planned = await vfioRun(c, options, true);
    if (c.flags.dryRun || (planned.plan.files.length === 0 && planned.plan.bindNow.length === 0)) {
      c.ui.result(
        { ...planned.report, vfio: planned.plan },
        () => renderVfio(planned.plan, planned.report, true),
      );
      return;
    }
    const approved = approvedPlan(planned.report);
    if (
      !confirmed(
        c,
        `Apply these changes? (plan ${approved.digest.slice(7, 19)})`,
        "Cannot change the host's boot configuration without confirmation",
        renderVfio(planned.plan, planned.report, true),
      )
    ) return 1;
    const { plan, report } = await vfioRun(c, options, false, approved);
    c.ui.result({ ...report, vfio: plan }, () => renderVfio(plan, report, false));
  }));
  vfio.command("undo")
    .description("restore every file the last gini vfio apply changed, byte for byte, and rebuild")
    .action(run(async ({ ui, env, flags }) => {
      const tx = (await listTransactions(env.dirs.state)).find((t) =>
        t.state === "committed" && t.command.startsWith("vfio apply") && t.applied.length > 0
      );
      if (!tx) {
        ui.result({ undone: null }, () => "Nothing to undo: no applied VFIO configuration");
        return;
      }
      const report = await rollbackFile(tx.file, createOpEnv(env, ui), flags.dryRun ?? false);
      ui.result({ id: tx.id, ...report }, () =>
        [
          `${flags.dryRun ? "Would undo" : "Undid"} ${tx.id} (${tx.command}):`,
          ...report.undone.map((u) =>
            `  ${flags.dryRun ? "would undo" : "undid"} ${u.description}`
          ),
          ...report.irreversible.map((u) => `  ! cannot undo ${u.description}`),
          ...report.failed.map((u) => `  ✗ ${u.description}: ${u.error}`),
        ].join("\n"));
      return report.failed.length ? 1 : 0;
    }));
  vfio.command("status")
    .description("what is bound to vfio-pci, what is configured, and whether a reboot is pending")
    .action(run(async (c) => {
      const ui = c.ui;
      const s = await query<VfioStatus>(c, "vfio:status", "vfio.status");
      ui.result(s, () =>
        [
          `Bound to vfio-pci now: ${
            s.bound.length ? s.bound.map((b) => `${b.address} ${b.name}`).join(", ") : "none"
          }`,
          `Configured: ids ${s.configured.ids.join(",") || "none"}; kernel arguments ${
            s.configured.kernelArgs.join(" ") || "none"
          } (${s.configured.initramfs ?? "?"}, ${s.configured.bootloader ?? "?"})`,
          `Running kernel arguments: ${s.running.kernelArgs.join(" ") || "none"}`,
          s.rebootPending
            ? "A reboot is pending: the running kernel lacks the configuration"
            : "No reboot pending",
          ...s.notes.map((n) => `note: ${n}`),
        ].join("\n"));
    }));

  program.command("schema")
    .description("print the JSON Schema of a Gini file, for editors")
    .argument("<kind>", '"vm"')
    .action(run(({ ui }, kind: string) => {
      if (kind !== "vm") {
        throw new UsageError(`Cannot print a schema for "${kind}"`, { hint: 'Known: "vm"' });
      }
      const schema = vmJsonSchema();
      ui.result(schema, () => JSON.stringify(schema, null, 2));
    }));

  program.command("run")
    .description(
      "run plugin stages (all, or the named ones and what they need); for plugin authors",
    )
    .argument("[stages...]", "stage ids like compat-check:write-report")
    .addOption(
      new Option("--stage-timeout <ms>", "override every stage's timeout").argParser((v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n <= 0) {
          throw new UsageError(`Cannot use --stage-timeout "${v}": expected milliseconds`);
        }
        return n;
      }),
    )
    .action(
      run(async ({ ui, env, flags }, stages: string[], options: { stageTimeout?: number }) => {
        const loaded = await loadPlugins(env, flags.pluginDir ?? []);
        const { result, report } = await runStages({
          env,
          loaded,
          ui,
          dryRun: flags.dryRun ?? false,
          ...(stages.length ? { targets: stages } : {}),
          ...(options.stageTimeout ? { stageTimeoutMs: options.stageTimeout } : {}),
          command: ["run", ...stages].join(" "),
          pluginDirs: flags.pluginDir ?? [],
        });
        ui.result({
          ok: result.ok,
          ...report,
          ...(result.error ? { error: result.error.toJSON() } : {}),
        }, () => renderReport(report));
        if (result.error && !ui.json) ui.failure(result.error);
        return result.ok ? 0 : result.error?.exitCode ?? 1;
      }),
    );

  /** `register_commands`: adds the `[[commands]]` of the loaded plugins as subcommands. */
  const registerPluginCommands = async (flags: GlobalOptions) => {
    const env = resolveStartupEnv(flags, processEnv, cwd);
    const loaded = await loadPlugins(env, flags.pluginDir ?? []);
    const taken = new Set(program.commands.map((c) => c.name()));
    for (const manifest of loaded.plugins) {
      for (const spec of manifest.commands) {
        if (taken.has(spec.name)) continue;
        taken.add(spec.name);
        const command = program.command(spec.name).description(
          `${spec.description} (plugin ${manifest.plugin.name})`,
        );
        for (const arg of spec.arguments) {
          command.argument(arg.endsWith("?") ? `[${arg.slice(0, -1)}]` : `<${arg}>`);
        }
        command.action(run(async (c, ...args: unknown[]) => {
          const values = args.slice(0, spec.arguments.length) as (string | undefined)[];
          const loadedNow = await loadPlugins(c.env, c.flags.pluginDir ?? []);
          const { result, report } = await runStages({
            env: c.env,
            loaded: loadedNow,
            ui: c.ui,
            dryRun: !spec.live || (c.flags.dryRun ?? false),
            targets: [`${manifest.plugin.name}:${spec.stage}`],
            seeds: {
              "session.command": {
                name: spec.name,
                arguments: Object.fromEntries(
                  spec.arguments.map((a, i) => [a.replace(/\?$/, ""), values[i] ?? null]),
                ),
              },
            },
            command: [spec.name, ...values.filter((v) => v !== undefined)].join(" "),
            pluginDirs: c.flags.pluginDir ?? [],
            recoverBy: "rollback",
          });
          if (!result.ok) throw result.error;
          const value = result.context[spec.result] ?? null;
          c.ui.result(
            value,
            () =>
              spec.live && !c.flags.dryRun
                ? renderReport(report)
                : typeof value === "string"
                ? value
                : JSON.stringify(value, null, 2),
          );
        }));
      }
    }
  };

  return { program, exitCode: () => exitCode, registerPluginCommands };
}

const VALUE_FLAGS = new Set([
  "--host-root",
  "--config-dir",
  "--data-dir",
  "--state-dir",
  "--cache-dir",
  "--plugin-dir",
]);

/** The global flags before the subcommand, and the subcommand's name. */
function preScan(args: string[]): { command?: string; flags: GlobalOptions } {
  const flags: GlobalOptions = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [name, inline] = arg.includes("=") ? arg.split(/=(.*)/s) as [string, string] : [arg];
    if (VALUE_FLAGS.has(name)) {
      const value = inline ?? args[++i];
      if (value === undefined) break;
      if (name === "--plugin-dir") flags.pluginDir = [...(flags.pluginDir ?? []), value];
      if (name === "--data-dir") flags.dataDir = value;
      if (name === "--config-dir") flags.configDir = value;
      continue;
    }
    if (arg.startsWith("-")) continue;
    return { command: arg, flags };
  }
  return { flags };
}

/** Runs the CLI with `args`; returns the exit code. */
export async function main(
  argv: string[],
  options: { sink?: UiSink; env?: Record<string, string | undefined>; cwd?: string } = {},
): Promise<number> {
  let args = argv;
  const { program, exitCode, registerPluginCommands } = buildProgram(
    options.sink,
    options.env ?? Deno.env.toObject(),
    options.cwd ?? Deno.cwd(),
  );
  const scan = preScan(args);
  // `gini --version` (or -V) before any command is `gini version`, in every output format.
  if (!scan.command && args.some((a) => a === "--version" || a === "-V")) {
    args = [...args.filter((a) => a !== "--version" && a !== "-V"), "version"];
  }
  // Plugins' commands are looked up only when the command is not built in (or for help), so the
  // built-in commands never pay for plugin discovery.
  if (
    !scan.command || scan.command === "help" ||
    !program.commands.some((c) => c.name() === scan.command)
  ) {
    try {
      await registerPluginCommands(scan.flags);
    } catch { /* a broken plugin is reported by the command that loads it */ }
  }
  if (args.length === 0) {
    program.outputHelp({ error: true });
    return 2;
  }
  // Tab in a shell: answered before commander, which would take the words' flags for its own.
  if (args[0] === "__complete") {
    const words = args.slice(1);
    const flags = preScan(words).flags;
    await registerPluginCommands(flags).catch(() => {});
    const env = resolveStartupEnv(
      flags,
      options.env ?? Deno.env.toObject(),
      options.cwd ?? Deno.cwd(),
    );
    const candidates = await complete(program, words, {
      vms: async () => (await listVms(env.dirs.data)).map((vm) => vm.name),
      transactions: async () => (await listTransactions(env.dirs.state)).map((tx) => tx.id),
      files: async (suffix) =>
        (await Array.fromAsync(Deno.readDir(options.cwd ?? Deno.cwd())))
          .filter((e) => !e.isDirectory && e.name.endsWith(suffix)).map((e) => e.name).sort(),
    }).catch(() => []);
    const ui = createUi({ ...(options.sink ? { sink: options.sink } : {}) });
    if (candidates.length) ui.result(candidates, () => candidates.join("\n"));
    return 0;
  }
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version") return 0;
      if (error.code === "commander.help") return 0;
    }
    // A bad command, flag or flag value (also from a flag's own parser): exit code 2, as text
    // or, with --json, as a JSON error.
    const ui = createUi({
      json: args.includes("--json"),
      ...(options.sink ? { sink: options.sink } : {}),
    });
    if (error instanceof CommanderError) {
      // commander says "error: unknown option '--x'\n(Did you mean --y?)".
      const [first = "", ...rest] = error.message.replace(/^error: /, "").split("\n");
      const suggestion = rest.join(" ").match(/Did you mean (\S+?)\?/)?.[1];
      const message = first.replace(/'([^']*)'/g, '"$1"');
      ui.failure(
        new UsageError(message.charAt(0).toUpperCase() + message.slice(1), {
          hint: suggestion
            ? `Did you mean "${suggestion}"?`
            : error.code === "commander.unknownCommand"
            ? "List the commands with: gini help"
            : `See: gini ${scan.command ? `${scan.command} ` : ""}--help`,
        }),
      );
      return 2;
    }
    ui.failure(error);
    return error instanceof GiniError ? error.exitCode : 1;
  }
  return exitCode();
}

if (import.meta.main) {
  // Outside a live run (which stops its own way), a stop signal ends gini at once, even when a
  // plugin's worker registered a listener for it.
  setStopFallback((signal) => {
    Deno.stderr.writeSync(new TextEncoder().encode(`Stopped by ${signal}\n`));
    Deno.exit(STOP_SIGNALS[signal]);
  });
  Deno.exit(await main(Deno.args));
}
