/**
 * Shell completions: `gini completions bash|zsh|fish` prints a small script that asks
 * `gini __complete WORDS…` for the candidates at each Tab, so plugin commands, VM names and
 * transaction ids are always the current ones (as cobra-based tools such as Lima do).
 *
 * @module
 */
import type { Argument, Command, Option } from "@commander-js/extra-typings";
import { join } from "../workers/path.ts";
import { didYouMean, UsageError } from "../kernel/mod.ts";
import type { Cli } from "./_env.ts";

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

/** What Tab offers for an argument: VM names, files ending with a suffix, transaction ids. */
export type CompletionKind = "vms" | "files" | "transactions";

const argumentSources = new WeakMap<Argument, { kind: CompletionKind; suffix: string }>();

/** Makes Tab offer `kind` for a command's argument at `index`. */
export function completeWith(
  // deno-lint-ignore no-explicit-any
  command: Command<any, any, any>,
  index: number,
  kind: CompletionKind,
  suffix = "",
): void {
  const argument = command.registeredArguments[index];
  if (argument) argumentSources.set(argument, { kind, suffix });
}

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
  const source = argument ? argumentSources.get(argument) : undefined;
  const values = source?.kind === "vms"
    ? await sources.vms()
    : source?.kind === "files"
    ? await sources.files(source.suffix)
    : source?.kind === "transactions"
    ? await sources.transactions()
    : [];
  return matching([...subcommands, ...values]);
}

/** Registers `gini completions SHELL` (and the hidden `__complete`, answered by main()). */
export function registerCompletions(cli: Cli): void {
  cli.program.command("completions")
    .description("print a shell completion script: bash, zsh or fish (see the README)")
    .argument("<shell>", "bash, zsh or fish")
    .action(cli.action(({ ui }, shell: string) => {
      if (!(SHELLS as readonly string[]).includes(shell)) {
        throw new UsageError(
          `Cannot write completions for "${shell}": expected bash, zsh or fish`,
          {
            hint: didYouMean(shell, SHELLS) ?? "Run: gini completions bash",
            location: { flag: "<shell>" },
          },
        );
      }
      const script = completionScript(shell as Shell);
      ui.result({ shell, script }, () => script.trimEnd());
    }));
  cli.program.command("__complete", { hidden: true })
    .description("the candidates at the cursor, for the completion scripts")
    .argument("[words...]", "the words after gini, the last one being typed")
    .allowUnknownOption()
    .helpOption(false);
}

/** The names of the VMs under `<data>/vms` (folders holding a vm.json). */
export async function vmNames(dataDir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(join(dataDir, "vms"))) {
      if (entry.isDirectory && await exists(join(dataDir, "vms", entry.name, "vm.json"))) {
        names.push(entry.name);
      }
    }
  } catch { /* no VMs yet */ }
  return names.sort();
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}
