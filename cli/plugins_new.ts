/**
 * `gini plugins new NAME [--dir D]`: a working plugin folder D/NAME (manifest, module with one
 * stage and one event handler, key contract, a test written with the kit, README, deno.json)
 * that passes `gini plugins test` and `gini plugins bundle` as written.
 *
 * @module
 */
import { basename, join, resolve } from "../workers/path.ts";
import { GiniError, UsageError } from "../kernel/mod.ts";
import { fromFileUrl } from "../kernel/url.ts";
import { scaffoldFiles, scaffoldNames } from "./_scaffold.ts";
import type { Cli } from "./_env.ts";

const KEBAB = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/** The folder of this Gini's SDK and test kit, as files another Deno can read. */
function workersDir(): string {
  if (!/^deno(\.exe)?$/.test(basename(Deno.execPath()))) {
    // A compiled binary holds its sources in memory: no other program can import them.
    throw new GiniError(
      "SDK_UNAVAILABLE",
      "Cannot make a plugin folder with the compiled gini: its SDK is not on disk for Deno to import",
      1,
      {
        hint:
          "Run gini from a checkout (deno task install writes a gini launcher), which gives the SDK's path",
      },
    );
  }
  return fromFileUrl(new URL("../workers", import.meta.url)).replace(/\/$/, "");
}

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    for await (const _ of Deno.readDir(dir)) return false;
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return true;
    if (error instanceof Deno.errors.NotADirectory) return false;
    throw error;
  }
}

/** Registers `gini plugins new`. */
export function registerPluginsNew(cli: Cli, group: ReturnType<Cli["program"]["command"]>): void {
  group.command("new")
    .description("make a plugin folder that passes its own test and bundles")
    .argument("<name>", "the plugin's kebab-case name (also its folder's)")
    .option("--dir <dir>", "the folder to make it in (default: the current one)")
    .action(cli.action(async (c, name: string, o: { dir?: string }) => {
      if (!KEBAB.test(name)) {
        throw new UsageError(
          `Cannot make plugin "${name}": NAME must be a kebab-case name like "host-notes"`,
          {
            location: { flag: "NAME" },
            hint: "Use lower-case letters, digits and single hyphens, starting with a letter",
          },
        );
      }
      const folder = join(resolve(cli.cwd, o.dir ?? "."), name);
      if (!await isEmptyOrMissing(folder)) {
        throw new UsageError(`Cannot make plugin "${name}" in ${folder}: the folder is not empty`, {
          location: { flag: "--dir" },
          hint: "Choose another name or --dir; gini plugins new never overwrites files",
        });
      }
      const files = scaffoldFiles(scaffoldNames(name), workersDir());
      const paths = Object.keys(files).map((f) => join(folder, f));
      const next = [
        `gini plugins test ${folder}`,
        `gini plugins bundle ${folder}`,
      ];
      if (c.flags.dryRun) {
        c.ui.result(
          { folder, files: paths, dryRun: true },
          () => [`Would make ${folder} with:`, ...paths.map((p) => `  ${p}`)].join("\n"),
        );
        return;
      }
      await Deno.mkdir(folder, { recursive: true });
      for (const [file, text] of Object.entries(files)) {
        await Deno.writeTextFile(join(folder, file), text, { createNew: true });
      }
      c.ui.result(
        { folder, files: paths, next },
        () =>
          [
            `Made plugin "${name}" in ${folder}:`,
            ...Object.keys(files).map((f) => `  ${f}`),
            "Next:",
            ...next.map((n) => `  ${n}`),
          ].join("\n"),
      );
    }));
}
