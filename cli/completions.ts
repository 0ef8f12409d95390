/**
 * Shell completions: `gini completions bash|zsh|fish` prints a small script that asks
 * `gini __complete WORDS…` for the candidates at each Tab, so plugin commands, VM names and
 * transaction ids are always the current ones (as cobra-based tools such as Lima do).
 *
 * @module
 */
import type { Command, Option } from "@commander-js/extra-typings";

/** The shells a script is written for. */
export const SHELLS = ["bash", "zsh", "fish"] as const;
/** One of {@linkcode SHELLS}. */
export type Shell = (typeof SHELLS)[number];

/** Where dynamic candidates come from. */
export interface CompletionSources {
  vms(): Promise<string[]>;
  transactions(): Promise<string[]>;
  /** Files in the working directory ending with `suffix`. */
  files(suffix: string): Promise<string[]>;
}

/** The script that makes `shell` complete `gini`. */
export function completionScript(shell: Shell): string {
  switch (shell) {
    case "bash":
      return `# gini completion for bash: eval "$(gini completions bash)"
_gini() {
  local IFS=$'\\n'
  COMPREPLY=($(gini __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _gini gini
`;
    case "zsh":
      return `#compdef gini
# gini completion for zsh: eval "$(gini completions zsh)", or save as _gini in your $fpath
_gini() {
  local -a candidates
  candidates=("\${(@f)$(gini __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  compadd -a candidates
}
if [ "$funcstack[1]" = "_gini" ]; then
  _gini "$@"
else
  compdef _gini gini
fi
`;
    case "fish":
      return `# gini completion for fish: gini completions fish | source
complete -c gini -f -a '(gini __complete (commandline -opc)[2..-1] (commandline -ct))'
`;
  }
}

type AnyCommand = Command<unknown[], Record<string, unknown>, Record<string, unknown>>;

function takesValue(option: Option): boolean {
  return option.required || option.optional;
}

function findOption(command: AnyCommand, root: AnyCommand, flag: string): Option | undefined {
  const name = flag.split("=")[0];
  return [...command.options, ...root.options].find((o) => o.long === name || o.short === name);
}

/**
 * The candidates for the last of `words` (the words after `gini`, the last one being typed,
 * possibly empty), one per line in the order shown.
 */
export async function complete(
  root: AnyCommand,
  words: string[],
  sources: CompletionSources,
): Promise<string[]> {
  const current = words.at(-1) ?? "";
  let command = root;
  let position = 0;
  let valueOf: Option | undefined;
  for (const word of words.slice(0, -1)) {
    if (valueOf) {
      valueOf = undefined;
      continue;
    }
    if (word.startsWith("-")) {
      const option = findOption(command, root, word);
      if (option && takesValue(option) && !word.includes("=")) valueOf = option;
      continue;
    }
    const sub = command.commands.find((c) => c.name() === word || c.aliases().includes(word)) as
      | AnyCommand
      | undefined;
    if (sub) {
      command = sub;
      position = 0;
    } else position++;
  }
  // A flag's value: left to the shell (files), as is anything unknown.
  if (valueOf) return [];
  const matching = (list: string[]) => [...new Set(list)].filter((c) => c.startsWith(current));
  if (current.startsWith("-")) {
    const options = command === root ? root.options : [...command.options, ...root.options];
    return matching(
      options.filter((o) => !o.hidden).flatMap((o) => o.long ? [o.long] : o.short ? [o.short] : []),
    );
  }
  const subcommands = command.commands
    .filter((c) => !(c as unknown as { _hidden?: boolean })._hidden)
    .map((c) => c.name());
  const args = command.registeredArguments;
  const argument = args[position] ?? (args.at(-1)?.variadic ? args.at(-1) : undefined);
  const values = !argument
    ? []
    : argument.description === "the VM's name"
    ? await sources.vms()
    : argument.name() === "vm.toml"
    ? await sources.files(".toml")
    : argument.name() === "id"
    ? await sources.transactions()
    : [];
  return matching([...subcommands, ...values]);
}
