/**
 * How qemu-setup presents `gini new`: the file it would write (a dry run) or wrote, with the next
 * two commands to run. (`gini schema vm` prints its result key as it is.)
 *
 * @module
 */
import { isAbsolute, relative } from "node:path";
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
    return {
      text: `Wrote ${file}: edit it, then run "gini plan ${shown}" and "gini up ${shown}"`,
      data,
    };
  },
};
