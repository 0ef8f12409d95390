/**
 * The adapter that runs programs: the only code that imports dax. Programs are
 * resolved to absolute paths from the PATH captured at start-up, get a clean,
 * explicit environment, a timeout, and a bounded capture of their output.
 *
 * @module
 */
import { isAbsolute, join } from "node:path";
import { HostCommandError, UsageError } from "../errors.ts";

/** What a finished program returned. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of one program run. */
export interface RunOptions {
  timeoutMs?: number;
  stdin?: string;
  /** Extra variables on top of the clean environment. */
  env?: Record<string, string>;
  /** Do not throw on a non-zero exit code. */
  noThrow?: boolean;
}

/** Keep at most this much of each output stream. */
const OUTPUT_LIMIT = 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;

function tail(text: string, lines = 20): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** Runs programs for the kernel. */
export class HostRunner {
  readonly #path: string[];
  readonly #cache = new Map<string, string | null>();

  /** @param searchPath the PATH captured at start-up */
  constructor(searchPath: string) {
    // System tools (mkfs.fat, sgdisk, lvcreate) live in sbin, which users' PATH often lacks.
    const dirs = searchPath.split(":").filter((p) => isAbsolute(p));
    for (const sbin of ["/usr/local/sbin", "/usr/sbin", "/sbin"]) {
      if (!dirs.includes(sbin)) dirs.push(sbin);
    }
    this.#path = dirs;
  }

  /** The absolute path of a program, or null when it is not installed. */
  which(program: string): string | null {
    if (isAbsolute(program)) return program;
    if (program.includes("/")) return null;
    const cached = this.#cache.get(program);
    if (cached !== undefined) return cached;
    let found: string | null = null;
    for (const dir of this.#path) {
      const candidate = join(dir, program);
      try {
        const info = Deno.statSync(candidate);
        if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) {
          found = candidate;
          break;
        }
      } catch { /* not here */ }
    }
    this.#cache.set(program, found);
    return found;
  }

  /** The clean environment every child gets. */
  cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
    return { PATH: this.#path.join(":"), LC_ALL: "C.UTF-8", LANG: "C.UTF-8", ...extra };
  }

  /** Runs `argv` (never through a shell) and returns its output. */
  async run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const [program, ...args] = argv;
    if (!program) throw new UsageError("Cannot run an empty command");
    const absolute = this.which(program);
    if (!absolute) {
      throw new HostCommandError(
        [...argv],
        127,
        `${program}: not found in ${this.#path.join(":")}`,
        `Install "${program}"`,
      );
    }
    // Loaded on first use: dax costs ~90 ms of start-up that most commands never need.
    const { default: $ } = await import("dax");
    let command = $`${absolute} ${args}`
      .clearEnv()
      .env(this.cleanEnv(options.env))
      .cwd("/")
      .stdout("piped")
      .stderr("piped")
      .noThrow()
      .timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS)
      .quiet();
    if (options.stdin !== undefined) command = command.stdinText(options.stdin);
    const result = await command;
    const stdout = result.stdout.slice(0, OUTPUT_LIMIT);
    const stderr = result.stderr.slice(-OUTPUT_LIMIT);
    if (result.code !== 0 && !options.noThrow) {
      throw new HostCommandError([absolute, ...args], result.code, tail(stderr || stdout));
    }
    return { code: result.code, stdout, stderr };
  }
}
