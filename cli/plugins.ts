/**
 * `gini plugins list|info|graph`: the plugins this run loads, what they may do, and how their
 * stages connect; the package commands are in plugins_install.ts, the authoring ones (new,
 * test) in plugins_new.ts and plugins_test.ts.
 *
 * @module
 */
import { describePlugin, pluginGraph, pluginSummary } from "../kernel/plugins/describe.ts";
import { lockPath } from "../kernel/plugins/installed.ts";
import { type LockFile, readLock } from "../kernel/plugins/trust.ts";
import type { Manifest } from "../kernel/plugins/manifest.ts";
import { type Cli, plugins } from "./_env.ts";
import { registerPluginInstall } from "./plugins_install.ts";
import { registerPluginsNew } from "./plugins_new.ts";
import { registerPluginsTest } from "./plugins_test.ts";

/** Where a loaded plugin came from, its sha256 and whether the user approved it. */
function provenance(lock: LockFile, m: Manifest) {
  if (m.origin === "core") return { source: "built in", sha256: null, approved: true };
  if (m.origin === "extra") return { source: m.dir, sha256: null, approved: false };
  const entry = lock.plugins[m.plugin.name];
  return { source: entry?.source ?? m.dir, sha256: entry?.sha256 ?? null, approved: true };
}

/** A plugin not loaded because nobody approved it (or its files changed since). */
const UNAPPROVED = /^(not approved|its files changed)/;

/** Registers `gini plugins …`. */
export function registerPlugins(cli: Cli): void {
  const group = cli.program.command("plugins").description(
    "list, inspect, install and approve plugins",
  );
  group.command("list")
    .description("list plugins with their source, approval, permissions and stages")
    .action(cli.action(async (c) => {
      const loaded = await plugins(c);
      const lock = await readLock(lockPath(c.env));
      const list = loaded.plugins.map((m) => ({
        ...pluginSummary(m),
        ...provenance(lock, m),
        loaded: true,
      }));
      const notLoaded = loaded.skipped.map((s) => ({
        name: s.plugin,
        loaded: false,
        approved: !UNAPPROVED.test(s.reason),
        reason: s.reason,
      }));
      c.ui.result(
        [...list, ...notLoaded],
        () =>
          [
            ...list.map((p) =>
              [
                `${p.name} ${p.version}  ${p.priority}${p.core ? "  core" : ""}${
                  p.approved ? "" : "  NOT APPROVED (--plugin-dir)"
                }`,
                `  ${p.description}`,
                ...(p.origin === "core" ? [] : [`  source: ${p.source}`]),
                ...(p.sha256 ? [`  sha256: ${p.sha256}`] : []),
                `  stages: ${p.stages.map((s) => s.id).join(", ") || "(none)"}`,
                ...(p.commands.length ? [`  commands: ${p.commands.join(", ")}`] : []),
              ].join("\n")
            ),
            ...notLoaded.map((p) => `${p.name}  NOT LOADED: ${p.reason}`),
          ].join("\n") || "No plugins found",
      );
    }));
  group.command("info")
    .description("show one plugin's manifest, permissions, stages and commands")
    .argument("<name>", "plugin name")
    .action(cli.action(async (c, name: string) => {
      const info = await describePlugin(await plugins(c), name);
      c.ui.result(info.data, () => info.text);
    }));
  group.command("graph")
    .description("print the plugin dependencies and the stage DAG as Mermaid")
    .action(cli.action(async (c) => {
      const graph = pluginGraph(await plugins(c));
      c.ui.result(graph.data, () => graph.mermaid);
    }));
  registerPluginInstall(cli, group);
  registerPluginsNew(cli, group);
  registerPluginsTest(cli, group);
}
