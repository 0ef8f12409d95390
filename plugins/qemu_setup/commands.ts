/**
 * How qemu-setup presents `gini new`: the file it would write (a dry run) or wrote, with the next
 * two commands to run. (`gini schema vm` prints its result key as it is.)
 *
 * @module
 */
import { dirname, isAbsolute, join, relative } from "../../workers/path.ts";
import { type CommandDefinition, contextValue } from "../../workers/sdk.ts";
import { NEW_COMMAND, NEW_VM_FILE } from "./_new_vm.ts";

/** The file as the user would type it from where they ran gini: relative below it, else absolute. */
function shownPath(cwd: string, file: string): string {
  const below = relative(cwd, file);
  return below && !below.startsWith("..") && !isAbsolute(below) ? below : file;
}

/** `gini new NAME`. */
export const newCommand: CommandDefinition = {
  render(view) {
    const { file, text } = contextValue(view, NEW_VM_FILE)!;
    const written = view.phase === "applied";
    const data = { file, text, written };
    if (!written) {
      return { text: `Would write ${file} (dry run: nothing was written):\n${text}`, data };
    }
    const { cwd } = contextValue(view, NEW_COMMAND)!;
    const shown = shownPath(cwd, file);
    const password = /^password_file = "([^"]+)"/m.exec(text)?.[1];
    const first = password
      ? `put the Windows password on the first line of ${
        shownPath(cwd, join(dirname(file), password))
      } (chmod 600), `
      : "";
    return {
      text: `Wrote ${file}: ${first}edit it, then run "gini plan ${shown}" and "gini up ${shown}"`,
      data,
    };
  },
};
