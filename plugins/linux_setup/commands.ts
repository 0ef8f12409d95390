/**
 * linux-setup's commands: `gini images list` (the cloud image catalogue) and `gini images pull
 * NAME` (a catalogue image, a URL or a local file, downloaded into the cache and verified).
 *
 * @module
 */
import {
  type CommandDefinition,
  type ContextKey,
  contextValue,
  type Json,
  type Plain,
  type StageContext,
} from "../../workers/sdk.ts";
import { CATALOGUE, type CatalogueEntry } from "./catalogue.ts";

/** `session.command` of `gini images pull NAME`: the image, and the folder a path is relative to. */
export const PULL_COMMAND: ContextKey<{ args: { name: string }; cwd: string }> = "session.command";

/** `linux_setup.catalogue`: what `gini images list` lists. */
export type CatalogueRow = Plain<CatalogueEntry & { name: string }>;
export const CATALOGUE_LIST: ContextKey<CatalogueRow[]> = "linux_setup.catalogue";

/** `linux_setup.pulled`: the image `gini images pull` put in the cache. */
export type PulledImage = { name: string; path: string; source: string };
export const PULLED: ContextKey<PulledImage> = "linux_setup.pulled";

/** The stage of `gini images list`. */
export function listImages(ctx: StageContext): void {
  ctx.set(CATALOGUE_LIST, Object.entries(CATALOGUE).map(([name, e]) => ({ name, ...e })));
}

/** `gini images list`: two lines an image. */
export const imagesListCommand: CommandDefinition = {
  render(view) {
    const list = contextValue(view, CATALOGUE_LIST)!;
    return list.map((e) =>
      `${e.name.padEnd(14)} ${e.description}\n${
        "".padEnd(14)
      } ${e.url} (${e.format}, ${e.algorithm})`
    ).join("\n");
  },
};

/** `gini images pull NAME`: where the image is, or the plan of fetching it; --json both. */
export const imagesPullCommand: CommandDefinition = {
  render(view) {
    const pulled = contextValue(view, PULLED)!;
    const summary = (view.report as { summary: { operations: number; readOnly: number } })
      .summary;
    const planned = view.phase !== "applied" && summary.operations > summary.readOnly;
    return {
      text: planned ? view.plan : `${view.args.name}: ${pulled.path}`,
      data: { ...(view.report as Record<string, Json>), image: pulled },
    };
  },
};
