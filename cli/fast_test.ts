/**
 * The fast parser (`fast.ts`) against commander, on every command of every core plugin: every
 * line it reads, commander reads the same way (command, arguments, flags, global flags); a plain
 * line it must read; a line it is unsure of it leaves to commander.
 */
import type { Command } from "@commander-js/extra-typings";
import { assert, assertEquals } from "../tests/_assert.ts";
import { tempEnv } from "../tests/_helpers.ts";
import { loadPlugins } from "../kernel/mod.ts";
import type { CommandManifest } from "../kernel/plugins/manifest.ts";
import { kernelCli } from "./_commander.ts";
import { registerPluginCommands } from "./plugin_commands.ts";
import { commandTable } from "./_plugin_run.ts";
import { fastMain, KERNEL_WORDS, parseCommand, scanGlobals } from "./fast.ts";

const env = await tempEnv();
const loaded = await loadPlugins(env, []);
const table = commandTable(loaded, KERNEL_WORDS);
const quiet = { out() {}, err() {}, isTerminal: false };

interface Reading {
  flags: Record<string, unknown>;
  path: string;
  values: unknown[];
  options: Record<string, unknown>;
}

function pathOf(command: Command): string {
  const words: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent as Command | null) {
    words.unshift(c.name());
  }
  return words.join(" ");
}

/** What commander makes of `argv`, or null when it refuses the line. */
async function commanderReads(argv: string[]): Promise<Reading | null> {
  const cli = kernelCli({ sink: quiet, env: { HOME: env.root }, cwd: env.root });
  let got: Omit<Reading, "flags"> | undefined;
  const capture = () => (...args: unknown[]) => {
    got = {
      path: pathOf(args.at(-1) as Command),
      values: args.slice(0, -2),
      options: { ...(args.at(-2) as Record<string, unknown>) },
    };
    return Promise.resolve();
  };
  registerPluginCommands({ ...cli, action: capture as typeof cli.action }, loaded, () => {});
  try {
    await cli.program.parseAsync(argv, { from: "user" });
  } catch {
    return null;
  }
  return got ? { flags: { ...cli.program.opts() }, ...got } : null;
}

/** What the fast parser makes of `argv`, or null when it leaves the line to commander. */
function fastReads(argv: string[]): Reading | null {
  try {
    const scan = scanGlobals(argv);
    const parsed = scan && parseCommand(table, scan.rest);
    if (!scan || !parsed) return null;
    return {
      flags: { ...scan.flags },
      path: parsed.owned.spec.path,
      values: parsed.values,
      options: parsed.options,
    };
  } catch {
    return null;
  }
}

function sample(spec: { type: string; choices?: string[] | undefined }): string {
  return spec.choices?.[0] ??
    (spec.type === "number"
      ? "3"
      : spec.type === "file" || spec.type === "dir"
      ? "/tmp/gini-x"
      : "web");
}

/** Lines for one command: plain ones (the fast parser must read them) and doubtful ones. */
function linesFor(spec: CommandManifest): { plain: string[][]; doubtful: string[][] } {
  const words = spec.path.split(" ");
  const required = spec.arguments.filter((a) => a.required).map(sample);
  const mandatory = spec.flags.filter((f) => f.required).flatMap((f) => [`--${f.name}`, sample(f)]);
  const base = [...words, ...required, ...mandatory];
  const plain: string[][] = [
    base,
    [...base, "--json"],
    ["--json", ...base],
    ["-n", ...base, "-v"],
    [...base, "--data-dir", "/tmp/d", "--plugin-dir", "/a", "--plugin-dir=/b"],
    [...words, ...spec.arguments.map(sample), ...mandatory],
  ];
  const doubtful: string[][] = [
    [...base, "--no-such-flag"],
    [...base, "-zq"],
    [...base, "one", "two", "three", "four"],
    [...base, "-h"],
    ["--json=yes", ...base],
  ];
  if (required.length || mandatory.length) doubtful.push(words);
  const last = spec.arguments.at(-1);
  if (last?.repeatable) {
    plain.push([...words, ...mandatory, ...spec.arguments.map(sample), "--", "ls", "-la"]);
  }
  for (const flag of spec.flags) {
    if (flag.required) continue; // in every line already
    if (flag.type === "boolean") {
      plain.push([...base, `--${flag.name}`]);
      if (flag.short) plain.push([...base, `-${flag.short}`]);
      doubtful.push([`-${flag.short ?? "q"}`, ...base]);
      doubtful.push([...base, `--${flag.name}=1`], [...base, `--${flag.name}`, `--${flag.name}`]);
      continue;
    }
    const value = sample(flag);
    plain.push([...base, `--${flag.name}`, value], [...base, `--${flag.name}=${value}`]);
    if (flag.short) plain.push([...base, `-${flag.short}`, value]);
    if (flag.repeatable) plain.push([...base, `--${flag.name}`, value, `--${flag.name}`, value]);
    doubtful.push([...base, `--${flag.name}`]);
    if (flag.type === "number") doubtful.push([...base, `--${flag.name}`, "many"]);
    if (flag.choices) doubtful.push([...base, `--${flag.name}`, "not-a-choice"]);
  }
  return { plain, doubtful };
}

Deno.test("the kernel's command words are the ones commander registers", () => {
  const cli = kernelCli({ sink: quiet });
  assertEquals(
    new Set([...cli.program.commands.map((c) => c.name()), "help"]),
    new Set(KERNEL_WORDS),
  );
});

Deno.test("the fast parser reads every plain line as commander does, and leaves the rest", async () => {
  const commands = [...table.values()].filter((o) => o.spec.mode !== "group");
  assert(commands.length > 20, `only ${commands.length} plugin commands`);
  let compared = 0;
  for (const { spec } of commands) {
    const { plain, doubtful } = linesFor(spec);
    for (const line of [...plain, ...doubtful]) {
      const fast = fastReads(line);
      const slow = await commanderReads(line);
      if (plain.includes(line)) {
        assert(
          fast !== null,
          `the fast parser left a plain line to commander: gini ${line.join(" ")}`,
        );
      }
      if (fast === null) continue;
      assert(slow !== null, `commander refuses what the fast parser read: gini ${line.join(" ")}`);
      assertEquals(fast, slow, `gini ${line.join(" ")}`);
      compared++;
    }
  }
  assert(compared > 100, `only ${compared} lines compared`);
});

Deno.test("a line the fast parser leaves gets commander's error, exit code 2", async () => {
  const out: string[] = [];
  const sink = {
    out: (s: string) => out.push(s),
    err: (s: string) => out.push(s),
    isTerminal: false,
  };
  const options = { sink, env: { HOME: env.root }, cwd: env.root };
  assertEquals(await fastMain(["status", "--bogus"], options, options.env, env.root), undefined);
  assertEquals(await fastMain(["plugins", "list"], options, options.env, env.root), undefined);
  const { main } = await import("./mod.ts");
  assertEquals(await main(["status", "web", "--bogus"], options), 2);
  assert(out.join("").includes('Unknown option "--bogus"'), out.join(""));
});
