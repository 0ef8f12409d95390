/**
 * `gini plugins list|info|graph`: the plugins this run loads, what they may do, and how their
 * stages connect.
 *
 * @module
 */
import { describePlugin, pluginGraph, pluginSummary } from "../kernel/plugins/describe.ts";
import { type Cli, plugins } from "./_env.ts";

/** Registers `gini plugins …`. */
export function registerPlugins(cli: Cli): void {
  const group = cli.program.command("plugins").description("list and inspect plugins");
  group.command("list")
    .description("list loaded plugins with their permissions, ops and stages")
    .action(cli.action(async (c) => {
      const loaded = await plugins(c);
      for (const s of loaded.skipped) c.ui.warn(`Skipped plugin "${s.plugin}": ${s.reason}`);
      const list = loaded.plugins.map(pluginSummary);
      c.ui.result(
        list,
        () =>
          list.length === 0 ? "No plugins found" : list.map((p) =>
            [
              `${p.name} ${p.version}  ${p.priority}${p.core ? "  core" : ""}`,
              `  ${p.description}`,
              `  stages: ${p.stages.map((s) => s.id).join(", ") || "(none)"}`,
              ...(p.commands.length ? [`  commands: ${p.commands.join(", ")}`] : []),
            ].join("\n")
          ).join("\n"),
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
}
