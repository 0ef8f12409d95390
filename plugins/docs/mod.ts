/**
 * docs: the documentation generator. From the loaded plugins and the kernel's command table
 * (`session.plugins`, which the kernel seeds read-only for this plugin's stage) and the VM file's
 * JSON Schema (`qemu_setup.vm_json_schema`), it writes a plugin catalogue, the command
 * reference, the VM file reference and Mermaid diagrams of plugin dependencies and the stage DAG,
 * as Markdown, HTML or man pages, through `fs.*` ops in the folder the user names.
 *
 * @example
 * ```sh
 * gini docs > gini.md                      # everything, one Markdown page
 * gini docs --format man -o man/ && man -l man/gini.1
 * gini docs --format html -o site/         # open site/index.html
 * gini docs --section vm-file              # the README's VM file table
 * ```
 *
 * @module
 */
import { join } from "../../workers/path.ts";
import {
  definePlugin,
  type Json,
  PLUGIN_CATALOGUE,
  type StageContext,
  stageError,
} from "../../workers/sdk.ts";
import { GENERATED, type Generated } from "./contracts.ts";
import { manPages } from "./_man.ts";
import { MERMAID, tarMember } from "./_mermaid.ts";
import { buildPages, commandsTable, vmTable } from "./_pages.ts";
import {
  htmlFile,
  htmlPage,
  markdownBlocks,
  markdownFile,
  markdownPage,
  MERMAID_FILE,
} from "./_writers.ts";

/**
 * The file a `gini docs -o DIR` run leaves in DIR: a later run may write over the pages there,
 * and in no other folder that holds files.
 */
export const DOCS_MARKER = ".gini-docs";

type Flags = { format: "md" | "html" | "man"; output: string | null; section: string | null };

/** The Mermaid renderer's text from the cached package, downloading it first (HTML only). */
async function mermaidBundle(ctx: StageContext): Promise<string | null> {
  await ctx.op("download", {
    url: MERMAID.url,
    sha256: MERMAID.sha256,
    sizeBytes: MERMAID.sizeBytes,
    label: `mermaid ${MERMAID.version} (npm)`,
  });
  const cached = join(ctx.dirs.cache, "downloads", `sha256-${MERMAID.sha256}`);
  // In a dry run the package may not be in the cache yet: the plan says it would be written.
  const found = await Deno.stat(cached).then(() => true, () => false);
  if (!found) return null;
  const bytes = await tarMember(cached, MERMAID.member);
  if (!bytes) {
    throw stageError(
      `Cannot find "${MERMAID.member}" in the mermaid ${MERMAID.version} package`,
      "The package's layout changed: pin a version that has dist/mermaid.min.js",
    );
  }
  return new TextDecoder().decode(bytes);
}

/**
 * Refuses an output folder that holds files an earlier `gini docs` did not write: its pages are
 * written over (README.md, index.html), so only a new or empty folder, or one with the marker.
 */
async function checkOutputFolder(dir: string): Promise<void> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  } catch (error) {
    // Not there yet, or outside what this run may read: the fs ops then say why they fail.
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotCapable) return;
    throw error;
  }
  if (!names.length || names.includes(DOCS_MARKER)) return;
  const shown = names.sort().slice(0, 3).map((n) => `"${n}"`).join(", ");
  throw stageError(
    `Cannot write the pages in --output "${dir}": it holds files gini docs did not write (${shown}${
      names.length > 3 ? ", …" : ""
    }), which its pages could replace`,
    `Give --output a new or empty folder, such as "${join(dir, "gini-docs")}"`,
    "USAGE",
  );
}

/** The files of a format, by path relative to the output folder. */
function filesOf(flags: Flags, catalogue: Json, schema: Json): Map<string, string> {
  const plugins = catalogue as never;
  if (flags.format === "man") return manPages(plugins, schema);
  const pages = buildPages(plugins, schema);
  return new Map(
    pages.map((p) =>
      flags.format === "md"
        ? [markdownFile(p.name), markdownPage(p)]
        : [htmlFile(p.name), htmlPage(p)]
    ),
  );
}

async function generate(ctx: StageContext): Promise<void> {
  const flags = (ctx.get("session.command") as { flags?: Flags } | null)?.flags;
  const catalogue = ctx.get(PLUGIN_CATALOGUE);
  // The kernel gives both only to the command (gini run docs:generate has neither).
  if (!flags || !catalogue) {
    throw stageError(
      'Cannot document the plugins: the kernel gave no "session.plugins" to this run',
      "Run it as gini docs",
      "USAGE",
    );
  }
  const schema = ctx.get("qemu_setup.vm_json_schema") ?? {};
  const result = (value: Generated) => ctx.set(GENERATED, value);
  if (flags.section) {
    if (flags.output || flags.format !== "md") {
      throw stageError(
        `Cannot use --section with ${
          flags.output ? "--output" : `--format ${flags.format}`
        }: a section is Markdown on standard output`,
        "Leave out --output and --format, or --section",
        "USAGE",
      );
    }
    const block = flags.section === "commands" ? commandsTable(catalogue) : vmTable(schema);
    return result({ format: "md", dir: null, files: [], text: markdownBlocks([block]) });
  }
  if (!flags.output) {
    if (flags.format !== "md") {
      throw stageError(
        `Cannot write --format ${flags.format} to standard output: it is several files`,
        `Give --output a folder: gini docs --format ${flags.format} -o DIR`,
        "USAGE",
      );
    }
    const text = buildPages(catalogue, schema).map(markdownPage).join("\n");
    return result({ format: "md", dir: null, files: [], text });
  }
  const dir = flags.output;
  await checkOutputFolder(dir);
  const files = filesOf(flags, catalogue as unknown as Json, schema);
  await ctx.op("fs.mkdir", { path: dir });
  await ctx.op("fs.write", {
    path: join(dir, DOCS_MARKER),
    content: "Pages written by gini docs, which writes over them when run again with this folder\n",
    overwrite: true,
  });
  for (const [name, content] of files) {
    await ctx.op("fs.write", { path: join(dir, name), content, overwrite: true });
  }
  if (flags.format === "html") {
    const bundle = await mermaidBundle(ctx);
    if (bundle !== null) {
      await ctx.op("fs.write", {
        path: join(dir, MERMAID_FILE),
        content: bundle,
        overwrite: true,
        source: `${MERMAID.url} (dist/mermaid.min.js)`,
      });
    } else {
      ctx.ui.info(`Would write ${MERMAID_FILE} from mermaid ${MERMAID.version}, once downloaded`);
    }
    files.set(MERMAID_FILE, "");
  }
  result({ format: flags.format, dir, files: [...files.keys()].sort(), text: null });
}

export default definePlugin({
  stages: { generate },
  commands: {
    docs: {
      render(view) {
        const made = view.context[GENERATED] as Generated | null | undefined;
        if (!made) return { text: view.plan ?? "" };
        if (made.text !== null) return { text: made.text.replace(/\n$/, ""), data: made };
        const what = `${made.files.length} ${
          made.format === "man" ? "man page(s)" : "file(s)"
        } in "${made.dir}"`;
        return view.phase === "applied"
          ? { text: `Wrote ${what}`, data: made }
          : { text: `${view.plan ?? ""}\nWould write ${what}`.trim(), data: made };
      },
    },
  },
});
