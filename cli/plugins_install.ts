/**
 * `gini plugins bundle|install|upgrade|approve|remove|keygen`: third-party plugins from a source
 * folder to a package, from a URL to an approved install, and out again.
 *
 * @module
 */
import { resolve } from "../workers/path.ts";
import { createOpEnv, UsageError } from "../kernel/mod.ts";
import { bundlePlugin } from "../kernel/plugins/bundle.ts";
import {
  commit,
  type Proposal,
  proposeApprove,
  proposeInstall,
  proposeUpgrade,
  removePlugin,
} from "../kernel/plugins/install.ts";
import { generateSigningKey, keyFingerprint } from "../kernel/plugins/trust.ts";
import { type Cli, type CommandEnv, confirmed } from "./_env.ts";

const VERB = { install: "Install", upgrade: "Upgrade", approve: "Approve" } as const;
const DONE = { install: "Installed", upgrade: "Upgraded", approve: "Approved" } as const;

/** The proposal in plain words, as the user approves it. */
export function proposalText(p: Proposal): string {
  const head = p.action === "upgrade"
    ? `${VERB[p.action]} plugin "${p.name}" from ${p.from} to ${p.version}`
    : `${VERB[p.action]} plugin "${p.name}" ${p.version}`;
  const lines = [
    head,
    `  from     ${p.source}`,
    `  sha256   ${p.sha256}`,
    `  signed   ${p.signer ? `by key ${keyFingerprint(p.signer)}` : "no"}`,
    "It may (! marks what can change the host):",
    ...p.summary.map((line) => `  ${line.risky ? "!" : "-"} ${line.text}`),
  ];
  if (p.action !== "install" && p.wider.length) {
    lines.push("Compared with what you approved before, it may now also:");
    lines.push(...p.wider.map((line) => `  ${line.risky ? "!" : "+"} ${line.text}`));
  } else if (p.action === "upgrade") {
    lines.push("It asks for nothing you did not approve before.");
  }
  lines.push(...p.warnings.map((w) => `Warning: ${w}`));
  return lines.join("\n");
}

/** Shows a proposal, asks when it needs a yes, and commits it (not in a dry run). */
async function decide(c: CommandEnv, p: Proposal): Promise<number> {
  const text = proposalText(p);
  const data = {
    action: p.action,
    name: p.name,
    version: p.version,
    ...(p.from ? { from: p.from } : {}),
    source: p.source,
    sha256: p.sha256,
    signer: p.signer ?? null,
    grants: p.summary,
    wider: p.wider,
    warnings: p.warnings,
    dryRun: Boolean(c.flags.dryRun),
  };
  if (c.flags.dryRun) {
    c.ui.result(data, () => `${text}\nNothing was changed (dry run).`);
    return 0;
  }
  if (p.needsApproval) {
    if (c.flags.yes && !c.flags.json) c.ui.info(text);
    const ok = confirmed(
      c,
      `${VERB[p.action]} "${p.name}" with these permissions?`,
      `Cannot ${p.action} plugin "${p.name}" without approval`,
      text,
    );
    if (!ok) {
      c.ui.info("Nothing was changed.");
      return 1;
    }
  } else if (!c.flags.json) c.ui.info(text);
  await commit(p, c.env);
  c.ui.result(
    { ...data, approved: true },
    () => `${DONE[p.action]} "${p.name}" ${p.version}: recorded in plugins.lock`,
  );
  return 0;
}

/** Registers the package commands under `gini plugins`. */
export function registerPluginInstall(cli: Cli, group: ReturnType<Cli["program"]["command"]>) {
  const opts = (c: CommandEnv) => ({
    env: c.env,
    opEnv: createOpEnv(c.env, c.ui),
    cwd: cli.cwd,
  });
  group.command("bundle")
    .description("build a plugin package (zip) from a plugin's source folder")
    .argument("<dir>", "the plugin's folder (with plugin.toml)")
    .option("-o, --output <file>", "where to write the package (default NAME-VERSION.zip)")
    .option("--sign <key>", "sign it with this private key (from gini plugins keygen)")
    .action(cli.action(async (c, dir: string, o: { output?: string; sign?: string }) => {
      const made = await bundlePlugin(dir, {
        cwd: cli.cwd,
        path: cli.processEnv.PATH ?? "/usr/bin:/bin",
        ...(o.output ? { output: o.output } : {}),
        ...(o.sign ? { signingKey: resolve(cli.cwd, o.sign) } : {}),
      });
      c.ui.result(
        made,
        () =>
          [
            `Wrote ${made.file} (${made.name} ${made.version}, ${made.bytes} bytes)`,
            `sha256 ${made.sha256}`,
            ...(made.signature ? [`Signed: ${made.signature}`] : []),
          ].join("\n"),
      );
    }));
  group.command("install")
    .description("install a plugin package from a URL or a file, after you approve what it may do")
    .argument("<source>", "an http(s) or file URL, or a path")
    .option("--sha256 <hex>", "refuse the package unless it has this sha256")
    .action(cli.action(async (c, source: string, o: { sha256?: string }) => {
      return await decide(c, await proposeInstall(source, { ...opts(c), ...pin(o) }));
    }));
  group.command("upgrade")
    .description("upgrade an installed plugin; asks again if it wants more than you approved")
    .argument("<name>", "plugin name")
    .argument("[source]", "where the new package is (default: where it was installed from)")
    .option("--sha256 <hex>", "refuse the package unless it has this sha256")
    .option("--allow-downgrade", "accept an older version")
    .action(cli.action(async (c, name: string, source: string | undefined, o) => {
      const p = await proposeUpgrade(name, source, {
        ...opts(c),
        ...pin(o),
        allowDowngrade: Boolean(o.allowDowngrade),
      });
      return await decide(c, p);
    }));
  group.command("approve")
    .description("approve a plugin folder placed by hand, after seeing what it may do")
    .argument("<name>", "plugin name")
    .action(cli.action(async (c, name: string) => decide(c, await proposeApprove(name, c.env))));
  group.command("remove")
    .description("uninstall a plugin (a hand-placed folder stays, no longer approved)")
    .argument("<name>", "plugin name")
    .action(cli.action(async (c, name: string) => {
      if (c.flags.dryRun) {
        c.ui.info(`Would remove plugin "${name}" from plugins.lock (dry run)`);
        return;
      }
      const entry = await removePlugin(name, c.env);
      c.ui.result(
        { removed: name, version: entry.version, kind: entry.kind },
        () =>
          entry.kind === "folder"
            ? `Removed "${name}" from plugins.lock; its folder ${entry.source} stays and is no longer loaded`
            : `Removed plugin "${name}" ${entry.version}`,
      );
    }));
  group.command("keygen")
    .description("make an Ed25519 key pair for signing packages")
    .requiredOption("-o, --output <file>", "where to write the private key (mode 0600)")
    .action(cli.action(async (c, o: { output: string }) => {
      const file = resolve(cli.cwd, o.output);
      const key = await generateSigningKey();
      await Deno.writeTextFile(file, JSON.stringify(key.privateKey) + "\n", {
        mode: 0o600,
        createNew: true,
      }).catch((error) => {
        if (error instanceof Deno.errors.AlreadyExists) {
          throw new UsageError(`Cannot write ${file}: it exists`, {
            hint: "Choose another file; a key is never overwritten",
          });
        }
        throw error;
      });
      c.ui.result(
        { file, publicKey: key.publicKey, fingerprint: keyFingerprint(key.publicKey) },
        () =>
          `Wrote the private key ${file} (keep it secret)\npublic key ${key.publicKey} (fingerprint ${
            keyFingerprint(key.publicKey)
          })`,
      );
    }));
}

function pin(o: { sha256?: string }): { pin?: string } {
  return o.sha256 ? { pin: o.sha256.toLowerCase() } : {};
}
