/**
 * `run`: runs a program with an argv array, never a shell string. The program must
 * be in the plugin's `[ops].run` grant, and the paths its argv names in the plugin's
 * grants (argv.ts says which arguments are paths). Invocations the kernel knows to be
 * read-only (`qemu-img info`, version queries, `vgs`) also run in a dry run.
 *
 * @module
 */
import { basename, join } from "../../workers/path.ts";
import { z } from "zod";
import type { OpRequest } from "../../workers/protocol.ts";
import { argvNeeds } from "./broker.ts";
import { atomicWrite } from "./_fs.ts";
import { defineOp, type OpEnv } from "./types.ts";

export { argvNeeds };

/** The environment variables a plugin may set for a program it runs. */
export const RUN_ENV_ALLOWED = [
  "SOURCE_DATE_EPOCH",
  "MTOOLS_SKIP_CHECK",
  "LC_ALL",
  "LANG",
  "TZ",
] as const;

const RunArgs = z.strictObject({
  argv: z.array(z.string().max(64 * 1024)).min(1).max(10_000),
  timeoutMs: z.number().int().positive().max(24 * 3600 * 1000).optional(),
  stdin: z.string().max(16 * 1024 * 1024).optional(),
  /**
   * Extra environment: only variables that change how a program formats its output, never how
   * it finds code or files (PATH, LD_*, HOME…): the kernel runs programs with a clean one.
   */
  env: z.record(z.string(), z.string().max(4096)).superRefine((env, ctx) => {
    for (const key of Object.keys(env)) {
      if (!(RUN_ENV_ALLOWED as readonly string[]).includes(key)) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `"${key}" may not be set: expected one of ${
            RUN_ENV_ALLOWED.join(", ")
          } (programs run with the kernel's clean environment)`,
        });
      }
    }
  }).optional(),
  /** Commands that undo this one's effect, run in order. */
  undo: z.array(z.array(z.string()).min(1)).optional(),
  /** How long the command is expected to take, for the plan's summary. */
  estimateSeconds: z.number().nonnegative().optional(),
  /** Estimated disk bytes the command will use. */
  estimateBytes: z.number().nonnegative().optional(),
  allowFailure: z.boolean().optional(),
  /**
   * A rebuild (initramfs, grub.cfg): it has no inverse of its own, it is run again once the
   * files it reads are restored, so a rollback runs it after every other undo.
   */
  rebuild: z.boolean().optional(),
  /** Files the command creates: they must be in the write grant, and undoing the run removes them. */
  creates: z.array(z.string().min(1)).optional(),
  /**
   * The only files the command changes, all created earlier in the same run (a disk image being
   * partitioned and formatted): they must be in the write grant, and undoing their creation
   * undoes this too, so the run itself has nothing to undo.
   */
  modifies: z.array(z.string().min(1)).optional(),
  /**
   * A version query (`PROGRAM --version`), whose answer only changes when the program does: kept
   * in `{state}/probes.json` keyed by the program's path, size and mtime. "use" answers from there
   * and otherwise runs the program, writing nothing (a plan); "store" also keeps a new answer;
   * "refresh" runs the program whatever is kept, and keeps its answer.
   */
  probe: z.enum(["use", "store", "refresh"]).optional(),
}).refine((a) => !a.probe || (a.argv.length === 2 && VERSION_FLAGS.has(a.argv[1]!)), {
  message: 'probe is for a version query: ["PROGRAM", "--version"]',
  path: ["probe"],
});
type RunArgs = z.infer<typeof RunArgs>;

type RunResult = { code: number; stdout: string; stderr: string };

/** The cached answers of version queries, by program path, size, mtime and argv. */
const probesFile = (env: OpEnv) => join(env.startup.dirs.state, "probes.json");

/** The cache key of a version query: null when the program is not installed. */
async function probeKey(a: RunArgs, env: OpEnv): Promise<string | null> {
  const path = env.host.which(a.argv[0]!);
  if (!path) return null;
  const info = await Deno.stat(path).catch(() => null);
  if (!info?.mtime) return null;
  return JSON.stringify([path, info.size, info.mtime.getTime(), a.argv.slice(1)]);
}

/** The kept answers; none when the file is missing or damaged (it is only a cache). */
async function readProbes(file: string): Promise<Record<string, RunResult>> {
  try {
    return JSON.parse(await Deno.readTextFile(file)) as Record<string, RunResult>;
  } catch {
    return {};
  }
}

/** Runs a version query, or answers it from the cache when the program has not changed. */
async function probe(a: RunArgs, env: OpEnv, run: () => Promise<RunResult>) {
  const key = await probeKey(a, env);
  if (!key) return await run();
  const file = probesFile(env);
  const hit = a.probe === "refresh" ? undefined : (await readProbes(file))[key];
  if (hit) return { ...hit, cached: true };
  const result = await run();
  if (result.code !== 0 || a.probe === "use") return result;
  // Read again just before the write: a run beside this one may have kept answers meanwhile.
  const kept = { ...await readProbes(file), [key]: result };
  try {
    await Deno.mkdir(env.startup.dirs.state, { recursive: true });
    await atomicWrite(file, new TextEncoder().encode(JSON.stringify(kept)), 0o600);
  } catch { /* a cache that cannot be written is only slower next time */ }
  return result;
}

const VERSION_FLAGS = new Set(["--version", "-version", "version", "-V"]);

/** Invocations that change nothing, by program: a predicate over the arguments. */
const READ_ONLY: Record<string, (args: string[]) => boolean> = {
  "qemu-img": (a) =>
    VERSION_FLAGS.has(a[0] ?? "") || a[0] === "info" || a[0] === "measure" ||
    // snapshot -l lists; -c, -a and -d change the image.
    (a[0] === "snapshot" && a.includes("-l") && !a.some((x) => ["-c", "-a", "-d"].includes(x))) ||
    // check -r repairs the image: a change.
    (a[0] === "check" && !a.includes("-r")),
  "qemu-system-x86_64": (a) =>
    a.length >= 1 && (VERSION_FLAGS.has(a[0]!) || (a.length === 2 && a[1] === "help")),
  "vgs": () => true,
  "lvs": () => true,
  "pvs": () => true,
  "xorriso": (a) => a.length === 1 && VERSION_FLAGS.has(a[0]!),
  "genisoimage": (a) => a.length === 1 && VERSION_FLAGS.has(a[0]!),
  "swtpm": (a) => a.length === 1 && VERSION_FLAGS.has(a[0]!),
  "lspci": () => true,
  // virsh's read-only queries: "virsh -c URI domstate NAME" and the like.
  "virsh": (a) =>
    (a.length === 1 && VERSION_FLAGS.has(a[0]!)) ||
    ["domstate", "dominfo", "list", "version", "capabilities", "snapshot-list", "snapshot-info"]
      .includes(
        a.find((x, i) => !x.startsWith("-") && a[i - 1] !== "-c") ?? "",
      ),
  "mdir": () => true,
  "isoinfo": () => true,
};

/** Whether the kernel knows this argv to change nothing. */
export function isReadOnlyInvocation(argv: readonly string[]): boolean {
  const [program, ...args] = argv;
  const check = program ? READ_ONLY[basename(program)] : undefined;
  return check ? check(args) : false;
}

export const runOp = defineOp<RunArgs>({
  kind: "run",
  schema: RunArgs,
  pathArgs: [],
  describe: (a) =>
    `Run ${a.argv.map((x) => /^[\w@%+=:,./-]+$/.test(x) ? x : JSON.stringify(x)).join(" ")}`,
  estimate: (a) => ({ bytes: a.estimateBytes ?? 0, seconds: a.estimateSeconds ?? 1 }),
  // What a rollback would run is checked now, against the same plugin's grants.
  permission: (a) => [
    ...argvNeeds(a.argv),
    ...(a.undo ?? []).flatMap(argvNeeds),
    ...[...(a.creates ?? []), ...(a.modifies ?? [])].map((path) => ({
      grant: "write" as const,
      path,
    })),
  ],
  readOnly: (a) => isReadOnlyInvocation(a.argv),
  capture: () => Promise.resolve(null),
  conflicts: () => [],
  async execute(a, env) {
    const run = async (): Promise<RunResult> => {
      const result = await env.host.run(a.argv, {
        ...(a.timeoutMs === undefined ? {} : { timeoutMs: a.timeoutMs }),
        ...(a.stdin === undefined ? {} : { stdin: a.stdin }),
        ...(a.env === undefined ? {} : { env: a.env }),
        noThrow: a.allowFailure ?? false,
      });
      return { code: result.code, stdout: result.stdout, stderr: result.stderr };
    };
    return a.probe ? await probe(a, env, run) : await run();
  },
  simulate: () => ({ code: 0, stdout: "", stderr: "", simulated: true }),
  inverse: (a): OpRequest[] | null => {
    if (isReadOnlyInvocation(a.argv)) return [];
    if (a.rebuild) return [{ kind: "run", args: { argv: a.argv, rebuild: true } }];
    if (!a.undo && !a.creates) return a.modifies ? [] : null;
    return [
      ...(a.undo ?? []).map((argv) => ({ kind: "run", args: { argv } })),
      ...(a.creates ?? []).map((path) => ({ kind: "fs.remove", args: { path, missingOk: true } })),
    ];
  },
});
