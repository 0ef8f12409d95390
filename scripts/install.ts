/**
 * Puts a `gini` launcher on PATH without the internet: a small shell script that runs this
 * checkout's main.ts with exactly the flags of the `gini` task (the flags `deno compile` bakes
 * into the binary), so the README's `gini …` commands work as written. `deno task compile` makes
 * the self-contained binary instead, for machines online.
 *
 * @example
 * ```sh
 * deno task install                 # writes ~/.local/bin/gini
 * deno task install --bin /usr/local/bin
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { fromFileUrl } from "../kernel/url.ts";
import { giniRunFlags } from "./compile.ts";

const REPO = fromFileUrl(new URL("../", import.meta.url)).replace(/\/$/, "");

/** Single-quotes a word for sh. */
function quote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The launcher's text: the pinned Deno (or npx, if it moved), the task's flags, this checkout. */
export async function launcher(deno = Deno.execPath()): Promise<string> {
  const flags = await giniRunFlags();
  const run = [...flags, "--config", `${REPO}/deno.json`, `${REPO}/main.ts`].map(quote).join(" ");
  return `#!/bin/sh
# gini: written by "deno task install" from ${REPO}; runs it with the gini task's flags.
deno=${quote(deno)}
if [ -x "$deno" ]; then exec "$deno" run ${run} "$@"; fi
exec npx -y deno@${Deno.version.deno} run ${run} "$@"
`;
}

/** Writes the launcher into `bin` (made if needed); returns its path. */
export async function install(bin: string): Promise<string> {
  await Deno.mkdir(bin, { recursive: true });
  const path = join(bin, "gini");
  await Deno.writeTextFile(path, await launcher(), { mode: 0o755 });
  await Deno.chmod(path, 0o755);
  return path;
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--bin");
  const bin = at >= 0 ? Deno.args[at + 1] : join(Deno.env.get("HOME") ?? "/root", ".local/bin");
  if (!bin) throw new Error("--bin needs a folder");
  const path = await install(bin);
  const onPath = (Deno.env.get("PATH") ?? "").split(":").includes(bin);
  // deno-lint-ignore no-console
  console.log(
    `Installed ${path}${
      onPath ? "" : `\n${bin} is not on PATH: add it, e.g. export PATH="${bin}:$PATH"`
    }`,
  );
}
