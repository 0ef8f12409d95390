/**
 * `scripts/install-host-deps.sh --verify`: lists every program Gini and its tests run (the
 * plugins' `[ops].run` grants, the programs the kernel's own ops start, what the tests and the
 * scripts spawn), finds each on this machine as the kernel does, and checks that the Debian
 * package owning it is on the install script's PACKAGES list, pulled in by that list with
 * `--no-install-recommends`, or Essential. Fails naming every program that is none of these.
 *
 * @example
 * ```sh
 * bash scripts/install-host-deps.sh --verify            # a summary line and the failures
 * bash scripts/install-host-deps.sh --verify --verbose  # one line per program
 * ```
 *
 * @module
 */
import { isAbsolute, join } from "node:path";
import { parse } from "smol-toml";
import { fromFileUrl } from "../kernel/url.ts";
import { REBUILD_PROGRAMS } from "../kernel/ops/argv.ts";

const REPO = fromFileUrl(new URL("../", import.meta.url));
const INSTALL_SCRIPT = "scripts/install-host-deps.sh";

/** Where a program use was found. */
export type Source = "manifest" | "kernel" | "tests" | "scripts";

/** One place that runs a program. */
export interface Use {
  program: string;
  source: Source;
  /** `file:line`, or a manifest's path. */
  where: string;
}

/** What a scan found: the uses, and failures (spawns it cannot name, stale declarations). */
export interface Scan {
  uses: Use[];
  problems: string[];
}

/** A package line of the PACKAGES array. */
export interface ListedPackage {
  name: string;
  comment: string;
}

/**
 * Programs not checked against the package list, each with the reason, for uses in `within`
 * (path prefixes; anywhere when absent). A use elsewhere is checked like any other.
 */
export const EXEMPT: Record<string, { reason: string; within?: string[] }> = {
  // The target distribution's rebuild commands. The vfio plugin runs them on the host it
  // configures, where they belong to that distribution's own initramfs and boot loader (Gini never
  // installs them); the VFIO tests run them inside fixture roots through chroot, where they are
  // stand-ins or the debootstrapped root's own.
  ...Object.fromEntries(
    REBUILD_PROGRAMS.map((p) => [p, {
      reason: "the configured distribution's rebuild command, run inside the target root",
      within: ["plugins/vfio/", "tests/vfio_test.ts"],
    }]),
  ),
  // What must exist before the installer can install anything.
  "apt-get": { reason: "bootstrap: apt, which the installer itself runs through" },
  "apt-cache": { reason: "bootstrap: apt, which the installer itself runs through" },
  sudo: { reason: "bootstrap: the installer's $SUDO when not run as root" },
  npx: { reason: "bootstrap: scripts/deno.sh fetches the pinned Deno through Node's npx" },
  deno: { reason: "bootstrap: the pinned Deno (scripts/deno.sh), from npm, not a Debian package" },
  frob: {
    reason: "a shell script the probe-cache test writes and runs",
    within: ["kernel/ops/run_probe_test.ts"],
  },
};

/**
 * Programs the scanners cannot see, each checked: its file must still contain `mention`.
 */
export const DECLARED: { file: string; program: string; mention: string; why: string }[] = [
  {
    file: "scripts/_debootstrap.sh",
    program: "env",
    mention: "CLEAN_ENV=(env -i",
    why: "the CLEAN_ENV array's first word",
  },
  {
    file: "scripts/_debootstrap.sh",
    program: "debootstrap",
    mention: '"${CLEAN_ENV[@]}" debootstrap',
    why: "run through the CLEAN_ENV array",
  },
  {
    file: "scripts/_debootstrap.sh",
    program: "chroot",
    mention: '"${CLEAN_ENV[@]}" chroot',
    why: "run through the CLEAN_ENV array",
  },
  {
    file: INSTALL_SCRIPT,
    program: "apt-get",
    mention: "$SUDO apt-get",
    why: "run through $SUDO",
  },
  { file: INSTALL_SCRIPT, program: "sudo", mention: 'SUDO="sudo"', why: "$SUDO when not root" },
  {
    file: "tests/_vfio_roots.ts",
    program: "/bin/busybox",
    mention: '"/bin/busybox"',
    why: "copied into fixture roots as their shell",
  },
  {
    file: "tests/vm_test.ts",
    program: "xmllint",
    mention: '"virt-xml-validate"',
    why: "virt-xml-validate runs it",
  },
];

/**
 * Helpers that spawn a program: `args` ones take it as their first argument, `argv` ones as the
 * first element of the array they take. A spawn of a computed program outside these is a failure.
 */
export const SPAWN_HELPERS: Record<string, "args" | "argv"> = {
  sh: "args", // tests/_helpers.ts
  timed: "argv", // scripts/bench_check.ts
  run: "argv", // this file
  inShell: "args", // tests/completions_test.ts
};

/**
 * Spawns of a computed program, by `file: expression`, with where their program is named (and so
 * checked) or why it is no package's.
 */
export const COMPUTED_SPAWNS: Record<string, string> = {
  "kernel/ops/run.ts: a.argv": "the run op: a plugin's program, named in its [ops].run grant",
  "kernel/ops/qemu_launch.ts: a.argv": "the deploy plugin's QEMU, named in its [ops].run grant",
  "kernel/ops/qemu_state.ts: local.argv":
    "the new QEMU of gini migrate: the deploy plugin's QEMU, named in its [ops].run grant",
  "kernel/ops/image_create.ts: imageCreateArgv(a)": "qemu-img, named in the op's run permission",
  "tests/completions_test.ts: program": "inShell(), whose callers name the shell",
  "kernel/host/run.ts: absolute": "the host runner: argv[0] of its callers, resolved by which()",
  "kernel/host/terminal.ts: absolute":
    "handOver(): ssh, which the ssh.session op names, resolved by which()",
  "tests/first_use_test.ts: path": "the gini launcher `deno task install` wrote",
  "kernel/plugins/bundle.ts: deno":
    "Deno itself (this process, or deno on PATH for gini plugins bundle), which the README's set-up installs",
};

// ------------------------------------------------------------------------------------------------
// PACKAGES

/** The install script's PACKAGES array: the lines between `PACKAGES=(` and `)`, less comments. */
export function parsePackages(script: string): ListedPackage[] {
  const lines = script.split("\n");
  const start = lines.findIndex((l) => l.startsWith("PACKAGES=("));
  const end = lines.findIndex((l, i) => i > start && l.startsWith(")"));
  if (start < 0 || end < 0) throw new Error(`Cannot find PACKAGES=( ... ) in ${INSTALL_SCRIPT}`);
  return lines.slice(start + 1, end).flatMap((line) => {
    const hash = line.indexOf("#");
    const names = (hash < 0 ? line : line.slice(0, hash)).trim().split(/\s+/).filter(Boolean);
    const comment = hash < 0 ? "" : line.slice(hash + 1).trim();
    return names.map((name) => ({ name, comment }));
  });
}

// ------------------------------------------------------------------------------------------------
// Scanning TypeScript

const STR = String.raw`(?:"([^"\\\n]*)"|'([^'\\\n]*)')`;
const PROGRAM = /^(?:\/[\w.+/-]+|[\w][\w.+-]*)$/;

function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf("\n"); i >= 0 && i < index; i = text.indexOf("\n", i + 1)) line++;
  return line;
}

function literal(m: RegExpExecArray, first = 1): string {
  return m[first] ?? m[first + 1] ?? "";
}

/** A Deno.Command of a computed program: neither a literal nor Deno itself. */
const COMPUTED_COMMAND =
  /new\s+Deno\.Command\((?!\s*(?:["']|Deno\.execPath\(\)))\s*([\w.!]+(?:\[[^\]]*\]!?)?(?:\([^)]*\))?)/g;

/** The name of the function around `index`: the last declaration before it. */
function enclosingFunction(text: string, index: number): string | null {
  const decl = /\bfunction\s+(\w+)\s*\(|\b(?:const|let)\s+(\w+)\s*=\s*(?:async\s*)?\(/g;
  let name: string | null = null;
  for (const m of text.slice(0, index).matchAll(decl)) name = m[1] ?? m[2] ?? null;
  return name;
}

/** Programs a test or script file spawns, by `new Deno.Command`, spawn helpers and `bash -c`. */
export function scanTypeScript(file: string, text: string, source: Source): Scan {
  const uses: Use[] = [];
  const problems: string[] = [];
  const add = (program: string, index: number) => {
    if (PROGRAM.test(program)) {
      uses.push({ program, source, where: `${file}:${lineAt(text, index)}` });
    }
  };
  const literalSpawns = [
    new RegExp(String.raw`new\s+Deno\.Command\(\s*${STR}`, "g"),
    new RegExp(String.raw`\bargv:\s*\[\s*${STR}`, "g"),
    ...Object.entries(SPAWN_HELPERS).map(([name, kind]) =>
      new RegExp(
        String.raw`(?<![\w.$])${name}\(\s*${kind === "argv" ? String.raw`\[\s*` : ""}${STR}`,
        "g",
      )
    ),
  ];
  for (const re of literalSpawns) {
    for (const m of text.matchAll(re)) add(literal(m as RegExpExecArray), m.index);
  }
  const shellStrings = [
    new RegExp(String.raw`Command\(\s*"(?:ba|da)?sh",\s*\{\s*args:\s*\[\s*"-c",\s*${STR}`, "g"),
    new RegExp(String.raw`\[\s*"(?:ba|da)?sh",\s*"-c",\s*${STR}`, "g"),
  ];
  for (const re of shellStrings) {
    for (const m of text.matchAll(re)) {
      for (const c of shellCommands(literal(m as RegExpExecArray)).commands) {
        add(c.program, m.index);
      }
    }
  }
  for (const m of text.matchAll(COMPUTED_COMMAND)) {
    const helper = enclosingFunction(text, m.index);
    if (helper !== null && helper in SPAWN_HELPERS) continue;
    if (`${file}: ${m[1]}` in COMPUTED_SPAWNS) continue;
    problems.push(
      `${file}:${lineAt(text, m.index)} spawns a computed program (${m[1]}) outside a known` +
        ` helper: name it, or add "${file}: ${m[1]}" to COMPUTED_SPAWNS saying where it is named`,
    );
  }
  for (const [name, kind] of Object.entries(SPAWN_HELPERS)) {
    if (kind !== "args") continue;
    const call = new RegExp(String.raw`(?<![\w.$])(function\s+)?${name}\((?!\s*["')])`, "g");
    for (const m of text.matchAll(call)) {
      if (m[1]) continue;
      problems.push(
        `${file}:${lineAt(text, m.index)} calls ${name}() with a computed program: name it`,
      );
    }
  }
  return { uses, problems };
}

/** Programs the kernel's own code runs (outside its tests). */
export function scanKernel(file: string, text: string): Scan {
  const uses: Use[] = [];
  const problems: string[] = [];
  const literalSpawns = [
    new RegExp(String.raw`\bhost\.run\(\s*\[\s*${STR}`, "g"),
    new RegExp(String.raw`\bprogram:\s*${STR}`, "g"),
    new RegExp(String.raw`\bargv:\s*\[\s*${STR}`, "g"),
    new RegExp(String.raw`new\s+Deno\.Command\(\s*${STR}`, "g"),
  ];
  for (const re of literalSpawns) {
    for (const m of text.matchAll(re)) {
      const program = literal(m as RegExpExecArray);
      if (PROGRAM.test(program)) {
        uses.push({ program, source: "kernel", where: `${file}:${lineAt(text, m.index)}` });
      }
    }
  }
  const computed = [/\bhost\.run\((?!\s*\[)\s*([\w.]+(?:\([^)]*\))?)/g, COMPUTED_COMMAND];
  for (const re of computed) {
    for (const m of text.matchAll(re)) {
      if (`${file}: ${m[1]}` in COMPUTED_SPAWNS) continue;
      problems.push(
        `${file}:${lineAt(text, m.index)} runs a computed argv (${m[1]}): name its program, or` +
          ` add "${file}: ${m[1]}" to COMPUTED_SPAWNS saying where the program is named`,
      );
    }
  }
  return { uses, problems };
}

/** The programs a plugin manifest grants in `[ops].run`. */
export function scanManifest(file: string, text: string): Scan {
  const ops = (parse(text) as { ops?: { run?: unknown } }).ops;
  const run = ops?.run ?? [];
  if (!Array.isArray(run) || run.some((p) => typeof p !== "string")) {
    return { uses: [], problems: [`${file}: [ops].run must be an array of program names`] };
  }
  return {
    uses: (run as string[]).map((program) => ({ program, source: "manifest", where: file })),
    problems: [],
  };
}

// ------------------------------------------------------------------------------------------------
// Scanning shell

interface Token {
  op: boolean;
  text: string;
  /** Holds an expansion ($x, $(...), `...`): not a program name. */
  dynamic: boolean;
  at: number;
}

/** The index of the bracket closing the one at `open`, skipping quoted text. */
function matchClose(src: string, open: number): number {
  const openCh = src[open];
  const close = openCh === "{" ? "}" : ")";
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    const c = src[i];
    if (c === "\\") i++;
    else if (c === "'") i = src.indexOf("'", i + 1) < 0 ? src.length : src.indexOf("'", i + 1);
    else if (c === '"') i = endOfDouble(src, i + 1);
    else if (c === "#" && /\s/.test(src[i - 1] ?? "")) {
      i = src.indexOf("\n", i) < 0 ? src.length : src.indexOf("\n", i);
    } else if (c === openCh) depth++;
    else if (c === close && --depth === 0) return i;
  }
  return src.length;
}

/** The index of the quote closing a double-quoted string whose text starts at `i`. */
function endOfDouble(src: string, i: number): number {
  for (; i < src.length; i++) {
    const c = src[i];
    if (c === "\\") i++;
    else if (c === '"') return i;
    else if (c === "$" && (src[i + 1] === "(" || src[i + 1] === "{")) i = matchClose(src, i + 1);
  }
  return src.length;
}

/** Splits shell text into tokens; command substitutions become streams of their own. */
function lexShell(src: string, base: number, streams: Token[][]): void {
  const tokens: Token[] = [];
  streams.push(tokens);
  let word = "";
  let inWord = false;
  let dynamic = false;
  let wordAt = 0;
  let heredocNext: boolean | null = null;
  const heredocs: { delimiter: string; strip: boolean }[] = [];
  const start = (i: number) => {
    if (!inWord) {
      inWord = true;
      wordAt = base + i;
    }
  };
  const end = () => {
    if (!inWord) return;
    if (heredocNext !== null) heredocs.push({ delimiter: word, strip: heredocNext });
    heredocNext = null;
    tokens.push({ op: false, text: word, dynamic, at: wordAt });
    word = "";
    inWord = false;
    dynamic = false;
  };
  const op = (text: string, i: number) => {
    end();
    tokens.push({ op: true, text, dynamic: false, at: base + i });
  };
  /** An expansion at `i` ($..., `...`): marks the word dynamic, lexes substitutions; returns the next index. */
  const expansion = (i: number): number => {
    dynamic = true;
    word += "$";
    if (src[i] === "`") {
      const close = src.indexOf("`", i + 1) < 0 ? src.length : src.indexOf("`", i + 1);
      lexShell(src.slice(i + 1, close), base + i + 1, streams);
      return close + 1;
    }
    const next = src[i + 1];
    if (next === "(" && src[i + 2] === "(") {
      // Arithmetic: only the command substitutions inside it run anything.
      const close = matchClose(src, i + 1);
      for (let j = i + 3; j < close; j++) {
        if (src[j] === "$" && src[j + 1] === "(" && src[j + 2] !== "(") {
          const inner = matchClose(src, j + 1);
          lexShell(src.slice(j + 2, inner), base + j + 2, streams);
          j = inner;
        }
      }
      return close + 1;
    }
    if (next === "(") {
      const close = matchClose(src, i + 1);
      lexShell(src.slice(i + 2, close), base + i + 2, streams);
      return close + 1;
    }
    if (next === "{") return matchClose(src, i + 1) + 1;
    if (next === "'") {
      dynamic = false;
      const close = src.indexOf("'", i + 2) < 0 ? src.length : src.indexOf("'", i + 2);
      word += src.slice(i + 2, close);
      return close + 1;
    }
    const name = /^(?:[A-Za-z_]\w*|[0-9@*#?$!-])/.exec(src.slice(i + 1));
    if (name) return i + 1 + name[0].length;
    dynamic = false;
    return i + 1;
  };

  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === "\\" && src[i + 1] === "\n") {
      i += 2;
    } else if (c === "\\") {
      start(i);
      word += src[i + 1] ?? "";
      i += 2;
    } else if (c === "\n") {
      op("\n", i);
      i++;
      for (const { delimiter, strip } of heredocs) {
        while (i < src.length) {
          const eol = src.indexOf("\n", i) < 0 ? src.length : src.indexOf("\n", i);
          const line = src.slice(i, eol);
          i = eol + 1;
          if ((strip ? line.replace(/^\t+/, "") : line) === delimiter) break;
        }
      }
      heredocs.length = 0;
    } else if (c === " " || c === "\t") {
      end();
      i++;
    } else if (c === "#" && !inWord) {
      while (i < src.length && src[i] !== "\n") i++;
    } else if (c === "'") {
      start(i);
      const close = src.indexOf("'", i + 1) < 0 ? src.length : src.indexOf("'", i + 1);
      word += src.slice(i + 1, close);
      i = close + 1;
    } else if (c === '"') {
      start(i);
      let j = i + 1;
      while (j < src.length && src[j] !== '"') {
        if (src[j] === "\\") {
          word += src[j + 1] ?? "";
          j += 2;
        } else if (src[j] === "$" || src[j] === "`") {
          j = expansion(j);
        } else {
          word += src[j];
          j++;
        }
      }
      i = j + 1;
    } else if (c === "$" || c === "`") {
      start(i);
      i = expansion(i);
    } else if ((c === "<" || c === ">") && src[i + 1] === "(") {
      // Process substitution.
      start(i);
      dynamic = true;
      const close = matchClose(src, i + 1);
      lexShell(src.slice(i + 2, close), base + i + 2, streams);
      i = close + 1;
    } else if (c === "<" || c === ">" || (c === "&" && src[i + 1] === ">")) {
      // A redirection; a file-descriptor number before it is part of it.
      if (inWord && /^\d+$/.test(word)) {
        word = "";
        inWord = false;
      }
      const heredoc = src.startsWith("<<", i) && !src.startsWith("<<<", i);
      op("redir", i);
      let j = i + 1;
      while (j < src.length && "<>&|-".includes(src[j]!)) j++;
      if (heredoc) heredocNext = src[i + 2] === "-";
      i = j;
    } else if (c === "(" && inWord && word.endsWith("=")) {
      // An array assignment: its elements are words, but substitutions in them run.
      const close = matchClose(src, i);
      const inner: Token[][] = [];
      lexShell(src.slice(i + 1, close), base + i + 1, inner);
      streams.push(...inner.slice(1));
      word += "()";
      i = close + 1;
    } else if (";&|()".includes(c)) {
      const text = (c === ";" || c === "&" || c === "|") && src[i + 1] === c ? c + c : c;
      op(text, i);
      i += text.length;
    } else {
      start(i);
      word += c;
      i++;
    }
  }
  end();
}

const SHELL_BUILTINS = new Set(
  (". : [ [[ alias bg bind break builtin caller cd compgen complete continue declare dirs " +
    "disown echo enable eval exit export false fc fg getopts hash help history jobs kill let " +
    "local logout mapfile popd printf pushd pwd read readarray readonly return set shift shopt " +
    "source suspend test times trap true type typeset ulimit umask unalias unset wait").split(" "),
);
/** Reserved words after which a command starts. */
const SHELL_PREFIXES = new Set([
  "!",
  "{",
  "}",
  "then",
  "do",
  "else",
  "elif",
  "if",
  "while",
  "until",
  "time",
]);
/** Reserved words that start no command. */
const SHELL_NOT_COMMANDS = new Set([
  "for",
  "case",
  "select",
  "in",
  "esac",
  "fi",
  "done",
  "function",
]);
/** Programs that run the command after their options (and, for env, assignments). */
const SHELL_WRAPPERS = new Set(["env", "sudo", "nohup", "xargs", "nice"]);
const ASSIGNMENT = /^[A-Za-z_]\w*(?:\[[^\]]*\])?\+?=/;

/** The programs a shell text runs (with their offsets), and the functions it defines. */
export function shellCommands(
  src: string,
): { commands: { program: string; at: number }[]; functions: Set<string> } {
  const commands: { program: string; at: number }[] = [];
  const functions = new Set<string>();
  const command = (words: Token[]) => {
    let w = 0;
    while (words[w] && !words[w]!.dynamic && SHELL_PREFIXES.has(words[w]!.text)) w++;
    if (words[w] && SHELL_NOT_COMMANDS.has(words[w]!.text)) return;
    while (words[w] && ASSIGNMENT.test(words[w]!.text)) w++;
    while (words[w] && !words[w]!.dynamic) {
      const { text: name, at } = words[w]!;
      if (name === "command" && /^-[vV]$/.test(words[w + 1]?.text ?? "")) {
        // A probe: `command -v lspci` finds a program the caller then runs.
        for (const probe of words.slice(w + 2)) {
          if (!probe.dynamic && PROGRAM.test(probe.text)) {
            commands.push({ program: probe.text, at: probe.at });
          }
        }
        return;
      }
      if (name === "command" || name === "exec") {
        w++;
        continue;
      }
      if (name === "trap" && words[w + 1] && !words[w + 1]!.dynamic) {
        // The handler is shell text too.
        const handler = shellCommands(words[w + 1]!.text);
        commands.push(...handler.commands.map((c) => ({ program: c.program, at })));
        return;
      }
      if (SHELL_BUILTINS.has(name) || !PROGRAM.test(name)) return;
      commands.push({ program: name, at });
      // chroot runs the rest inside another root: those are that root's programs.
      if (!SHELL_WRAPPERS.has(name)) return;
      w++;
      while (words[w] && (words[w]!.text.startsWith("-") || ASSIGNMENT.test(words[w]!.text))) w++;
    }
  };
  const streams: Token[][] = [];
  lexShell(src, 0, streams);
  for (const tokens of streams) {
    let words: Token[] = [];
    for (let k = 0; k < tokens.length; k++) {
      const t = tokens[k]!;
      if (!t.op) {
        words.push(t);
      } else if (t.text === "redir") {
        if (tokens[k + 1] && !tokens[k + 1]!.op) k++;
      } else if (
        t.text === "(" && tokens[k + 1]?.op && tokens[k + 1]!.text === ")" && words.length === 1 &&
        !words[0]!.dynamic
      ) {
        functions.add(words[0]!.text);
        words = [];
        k++;
      } else {
        command(words);
        words = [];
      }
    }
    command(words);
  }
  return { commands, functions };
}

/** Programs a shell script runs, less the functions any scanned script defines. */
export function scanShell(file: string, text: string, functions: Set<string>): Scan {
  const { commands } = shellCommands(text);
  return {
    uses: commands.filter((c) => !functions.has(c.program)).map((c) => ({
      program: c.program,
      source: "scripts",
      where: `${file}:${lineAt(text, c.at)}`,
    })),
    problems: [],
  };
}

// ------------------------------------------------------------------------------------------------
// The repository

const SKIP_DIRS = new Set([".git", "node_modules", "coverage", ".gini-test", ".ci/bin"]);

/** The repository's files, relative to it, sorted. */
async function files(repo: string, dir = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(join(repo, dir))) {
    const path = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory && !SKIP_DIRS.has(path)) out.push(...await files(repo, path));
    else if (entry.isFile) out.push(path);
  }
  return out.sort();
}

/** Every program use in the repository, with the scanners' failures. */
export async function scanRepository(repo = REPO): Promise<Scan> {
  const all = await files(repo);
  const read = (file: string) => Deno.readTextFile(join(repo, file));
  const shellFiles = all.filter((f) => /^scripts\/[^/]+\.sh$/.test(f) || f === ".ci/run");
  const shellTexts = new Map<string, string>();
  const functions = new Set<string>();
  for (const file of shellFiles) {
    const text = await read(file);
    shellTexts.set(file, text);
    for (const name of shellCommands(text).functions) functions.add(name);
  }
  const scans: Scan[] = [];
  for (const file of all) {
    if (/^plugins\/.*\/plugin\.toml$/.test(file)) {
      scans.push(scanManifest(file, await read(file)));
    } else if (/^kernel\/.*\.ts$/.test(file) && !file.endsWith("_test.ts")) {
      scans.push(scanKernel(file, await read(file)));
    } else if (file.endsWith("_test.ts") || /^tests\/.*\.ts$/.test(file)) {
      scans.push(scanTypeScript(file, await read(file), "tests"));
    } else if (/^scripts\/[^/]+\.ts$/.test(file)) {
      scans.push(scanTypeScript(file, await read(file), "scripts"));
    } else if (shellTexts.has(file)) {
      scans.push(scanShell(file, shellTexts.get(file)!, functions));
    }
  }
  const problems = scans.flatMap((s) => s.problems);
  const uses = scans.flatMap((s) => s.uses);
  for (const d of DECLARED) {
    const text = shellTexts.get(d.file) ?? await read(d.file).catch(() => "");
    const index = text.indexOf(d.mention);
    if (index < 0) {
      problems.push(
        `${d.file} no longer contains ${JSON.stringify(d.mention)}: update DECLARED (${d.program})`,
      );
      continue;
    }
    uses.push({
      program: d.program,
      source: d.file.startsWith("tests/") ? "tests" : "scripts",
      where: `${d.file}:${lineAt(text, index)} (${d.why})`,
    });
  }
  return { uses, problems };
}

// ------------------------------------------------------------------------------------------------
// This machine

async function run(argv: string[]): Promise<{ code: number; stdout: string }> {
  const out = await new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "null",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

/** The kernel's search path: PATH, then the sbin folders (kernel/host/run.ts). */
function searchPath(): string[] {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter((p) => isAbsolute(p));
  for (const sbin of ["/usr/local/sbin", "/usr/sbin", "/sbin"]) {
    if (!dirs.includes(sbin)) dirs.push(sbin);
  }
  return dirs;
}

function which(program: string, dirs: string[]): string | null {
  for (const candidate of isAbsolute(program) ? [program] : dirs.map((d) => join(d, program))) {
    try {
      const info = Deno.statSync(candidate);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return candidate;
    } catch { /* not here */ }
  }
  return null;
}

/** The paths dpkg may know a file by: as found, resolved, and both sides of usrmerge. */
function pathsOf(found: string): string[] {
  const real = Deno.realPathSync(found);
  const merged = (p: string) =>
    /^\/usr\/(bin|sbin|lib)\//.test(p)
      ? p.slice(4)
      : /^\/(bin|sbin|lib)\//.test(p)
      ? `/usr${p}`
      : null;
  return [...new Set([real, found, merged(real), merged(found)].filter((p) => p !== null))];
}

/** The packages owning each path, from one `dpkg-query -S`. */
async function owners(paths: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (!paths.length) return out;
  const { stdout } = await run(["dpkg-query", "-S", ...paths]);
  for (const line of stdout.split("\n")) {
    const m = /^(.+?): (\/.*)$/.exec(line);
    if (!m || line.startsWith("diversion by")) continue;
    out.set(m[2]!, m[1]!.split(", ").map((p) => p.replace(/:[\w-]+$/, "")));
  }
  return out;
}

/** The packages `apt-get install --no-install-recommends` of the list brings (the list too). */
async function closure(packages: string[]): Promise<Set<string>> {
  const { stdout } = await run([
    "apt-cache",
    "depends",
    "--recurse",
    "--no-recommends",
    "--no-suggests",
    "--no-conflicts",
    "--no-breaks",
    "--no-replaces",
    "--no-enhances",
    ...packages,
  ]);
  return new Set(
    stdout.split("\n").filter((l) => l && !l.startsWith(" ") && !l.startsWith("<")).map((l) =>
      l.replace(/:[\w-]+$/, "")
    ),
  );
}

/** Installed packages, and which of them are Essential. */
async function installed(): Promise<{ installed: Set<string>; essential: Set<string> }> {
  const { stdout } = await run([
    "dpkg-query",
    "-W",
    "-f=${Package}\t${db:Status-Abbrev}\t${Essential}\n",
  ]);
  const result = { installed: new Set<string>(), essential: new Set<string>() };
  for (const line of stdout.split("\n")) {
    const [name, status, essential] = line.split("\t");
    if (!name || !status?.startsWith("ii")) continue;
    result.installed.add(name);
    if (essential === "yes") result.essential.add(name);
  }
  return result;
}

// ------------------------------------------------------------------------------------------------
// The verdict

/** One program's verdict. */
export interface Verdict {
  program: string;
  uses: Use[];
  path: string | null;
  pkg: string | null;
  ok: boolean;
  /** Why it is fine, or the failure. */
  reason: string;
}

/** Checks every program use against this machine and the list. */
export async function verify(repo = REPO): Promise<{ verdicts: Verdict[]; problems: string[] }> {
  const scan = await scanRepository(repo);
  const problems = [...scan.problems];
  const listed = parsePackages(await Deno.readTextFile(join(repo, INSTALL_SCRIPT)));
  const names = listed.map((p) => p.name);
  const [brought, dpkg] = await Promise.all([closure(names), installed()]);
  for (const p of listed) {
    if (!dpkg.installed.has(p.name)) {
      problems.push(`package ${p.name} is on the list but not installed: run ${INSTALL_SCRIPT}`);
    }
    if (!p.comment) problems.push(`package ${p.name} has no comment saying what it is for`);
  }
  const byProgram = new Map<string, Use[]>();
  for (const use of scan.uses) {
    byProgram.set(use.program, [...byProgram.get(use.program) ?? [], use]);
  }
  for (const program of Object.keys(EXEMPT)) {
    if (!byProgram.has(program)) {
      problems.push(`${program} is exempt but used nowhere: remove it from EXEMPT`);
    }
  }

  const dirs = searchPath();
  const found = new Map<string, string | null>();
  for (const program of byProgram.keys()) found.set(program, which(program, dirs));
  const candidates = new Map<string, string[]>();
  for (const [program, path] of found) if (path) candidates.set(program, pathsOf(path));
  const owned = await owners([...new Set([...candidates.values()].flat())]);

  const verdicts: Verdict[] = [];
  for (const [program, uses] of [...byProgram].sort(([a], [b]) => a.localeCompare(b))) {
    const path = found.get(program) ?? null;
    const pkgs = [...new Set((candidates.get(program) ?? []).flatMap((p) => owned.get(p) ?? []))];
    const exempt = EXEMPT[program];
    const checked = uses.filter((u) => !exempt?.within?.some((w) => u.where.startsWith(w)));
    const verdict = (ok: boolean, pkg: string | null, reason: string) =>
      verdicts.push({ program, uses, path, pkg, ok, reason });
    if (exempt && (!exempt.within || checked.length === 0)) {
      verdict(true, pkgs[0] ?? null, `exempt: ${exempt.reason}`);
    } else if (!path) {
      verdict(false, null, "not found on PATH, /usr/local/sbin, /usr/sbin or /sbin");
    } else if (!pkgs.length) {
      verdict(false, null, `${path} belongs to no Debian package`);
    } else if (pkgs.some((p) => names.includes(p))) {
      verdict(true, pkgs.find((p) => names.includes(p))!, "on the list");
    } else if (pkgs.some((p) => dpkg.essential.has(p))) {
      verdict(true, pkgs.find((p) => dpkg.essential.has(p))!, "essential");
    } else if (pkgs.some((p) => brought.has(p))) {
      verdict(true, pkgs.find((p) => brought.has(p))!, "pulled in by the list");
    } else {
      verdict(
        false,
        pkgs[0]!,
        `${path} is in ${pkgs.join(", ")}, which is neither on the list, pulled in by it,` +
          ` nor essential: add it to PACKAGES in ${INSTALL_SCRIPT}`,
      );
    }
  }
  return { verdicts, problems };
}

function usedBy(uses: Use[], max = 3): string {
  const places = [...new Set(uses.map((u) => u.where))];
  return places.slice(0, max).join(", ") +
    (places.length > max ? ` (+${places.length - max})` : "");
}

function say(line: string): void {
  // deno-lint-ignore no-console
  console.log(line);
}

/** Runs the check; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const verbose = args.includes("--verbose") || args.includes("-v");
  const unknown = args.filter((a) => !["--verbose", "-v"].includes(a));
  if (unknown.length) {
    say(
      `Unknown argument ${JSON.stringify(unknown[0])}: use ${INSTALL_SCRIPT} --verify [--verbose]`,
    );
    return 2;
  }
  const started = performance.now();
  const { verdicts, problems } = await verify();
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (verbose) {
    const width = Math.max(...verdicts.map((v) => v.program.length));
    for (const v of verdicts) {
      say(
        `${v.ok ? "ok  " : "FAIL"} ${v.program.padEnd(width)}  ${(v.pkg ?? "-").padEnd(22)}  ` +
          `${v.reason}  [${[...new Set(v.uses.map((u) => u.source))].join(", ")}: ${
            usedBy(v.uses)
          }]`,
      );
    }
  } else {
    for (const v of verdicts.filter((v) => !v.ok)) {
      say(`FAIL ${v.program}: ${v.reason} (used by ${usedBy(v.uses)})`);
    }
  }
  for (const p of problems) say(`FAIL ${p}`);
  const count = (reason: string) =>
    verdicts.filter((v) => v.ok && v.reason.startsWith(reason)).length;
  const failures = verdicts.filter((v) => !v.ok).length + problems.length;
  say(
    `host dependencies: ${verdicts.length} programs checked in ${seconds} s: ` +
      `${count("on the list")} on the list, ${count("pulled in")} pulled in by it, ` +
      `${count("essential")} essential, ${count("exempt")} exempt; ` +
      `${failures} failure${failures === 1 ? "" : "s"}`,
  );
  return failures ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
