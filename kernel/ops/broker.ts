/**
 * The broker: checks every op against the grants of the plugin that asked, before
 * anything happens. Paths are made absolute and canonical (symlinks of existing
 * parents resolved), so `..` and symlinks cannot escape a granted root.
 *
 * @module
 */
import {
  basename,
  dirname,
  isAbsolute,
  join,
  normalize,
  relative,
  sep,
} from "../../workers/path.ts";
import { ManifestError, PermissionDeniedError } from "../errors.ts";
import { describedPrograms, readArgv } from "./argv.ts";
import type { Manifest } from "../plugins/manifest.ts";
import type { PermissionNeed } from "./types.ts";
import { expandPlaceholders, type StartupEnv } from "../paths.ts";

/** A plugin's grants, expanded to absolute canonical roots. */
export interface Grants {
  plugin: string;
  /**
   * A plugin shipped with Gini: it may run programs whose arguments the kernel cannot check
   * (argv.ts), and the paths those programs read are not limited to its read grant (a VM
   * file names disks and images anywhere). Third-party plugins get neither.
   */
  core?: boolean;
  write: string[];
  read: string[];
  /** Files the user named for this run (`access`): exactly those paths, nothing below them. */
  exact?: { read: string[]; write: string[] };
  run: Set<string>;
  lvm: boolean;
  /** Hosts the plugin may download from; "file" allows local files (file:// URLs). */
  download: string[];
  /** Whether the plugin may read files in the folder of the user's request. */
  requestFiles?: boolean;
  /** Whether the plugin may record journal checkpoints (the core recovery plugin). */
  checkpoint?: boolean;
  /** sysfs files the plugin may write, as globs (`*` matches within one path segment). */
  sysfs?: string[];
  /** The canonical `/sys` a sysfs write must land in; null for the kernel's own recovery. */
  sysfsRoot?: string | null;
}

/**
 * The canonical form of an absolute path: `.` and `..` folded, then every symlink in the
 * longest existing prefix resolved (the final component too, when it exists).
 */
export function canonicalize(path: string): string {
  let existing = normalize(path);
  const rest: string[] = [];
  for (;;) {
    try {
      const real = Deno.realPathSync(existing);
      return rest.length ? join(real, ...rest.toReversed()) : real;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      // A dangling symlink: resolve its target lexically and continue from there.
      try {
        const target = Deno.readLinkSync(existing);
        existing = normalize(isAbsolute(target) ? target : join(dirname(existing), target));
        continue;
      } catch { /* not a link */ }
      const parent = dirname(existing);
      if (parent === existing) return join(existing, ...rest.toReversed());
      rest.push(basename(existing));
      existing = parent;
    }
  }
}

/** Whether `path` is `root` or inside it. Both canonical. */
export function isWithin(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

/**
 * Expands a grant: placeholders (`{data}`) name Gini's directories; other absolute paths are
 * host paths, placed under `--host-root` when one is given.
 */
export function expandGrant(grant: string, env: StartupEnv): string {
  if (grant.startsWith("{")) return expandPlaceholders(grant, env);
  if (!isAbsolute(grant)) return normalize(join(env.hostRoot, grant));
  return env.hostRoot === "/" ? normalize(grant) : normalize(join(env.hostRoot, grant));
}

/**
 * Builds a plugin's grants from its manifest. Every host path grant must still be inside
 * `--host-root` once symlinks are resolved; placeholders (`{data}`) are Gini's own directories.
 */
export function grantsFor(manifest: Manifest, env: StartupEnv): Grants {
  const hostRoot = canonicalize(env.hostRoot);
  const expand = (list: string[], key: "ops.write" | "permissions.read") =>
    list.map((grant, i) => {
      const canonical = canonicalize(expandGrant(grant, env));
      if (!grant.startsWith("{") && !isWithin(canonical, hostRoot)) {
        throw new ManifestError(
          `Cannot grant plugin "${manifest.plugin.name}" "${grant}" (${manifest.file}, [${
            key.replace(".", "].")
          }): it resolves to "${canonical}", outside the host root "${hostRoot}"`,
          {
            location: { file: manifest.file, key: `${key}.${i}` },
            hint: `Remove the symlink that leads out of "${hostRoot}", or the grant`,
          },
        );
      }
      return canonical;
    });
  // Files named on the command line are the user's own paths, not host paths under --host-root.
  const named = {
    read: (manifest.named?.read ?? []).map(canonicalize),
    write: (manifest.named?.write ?? []).map(canonicalize),
  };
  // Folders named on the command line (a `dir` value with access): roots for this run only.
  const readDirs = (manifest.named?.readDirs ?? []).map(canonicalize);
  const write = [
    ...expand(manifest.ops.write, "ops.write"),
    ...(manifest.named?.writeDirs ?? []).map(canonicalize),
  ];
  return {
    plugin: manifest.plugin.name,
    core: manifest.origin === "core",
    write,
    read: [...expand(manifest.permissions.read, "permissions.read"), ...readDirs, ...write],
    exact: { read: [...named.read, ...named.write], write: named.write },
    run: new Set(manifest.ops.run),
    lvm: manifest.ops.lvm,
    download: manifest.ops.download,
    requestFiles: manifest.ops.request_files,
    checkpoint: manifest.ops.checkpoint,
    sysfs: manifest.ops.sysfs.map((g) => expandGrant(g, env)),
    sysfsRoot: canonicalize(expandGrant("/sys", env)),
  };
}

function globToRegExp(glob: string): RegExp {
  const body = glob.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(
    "[^/]*",
  );
  return new RegExp(`^${body}$`);
}

/** Checks a sysfs write against the plugin's `[ops].sysfs` globs and the host's `/sys`. */
export function checkSysfs(grants: Grants, op: string, path: string): void {
  const deny = (reason: string, hint: string): never => {
    throw new PermissionDeniedError(grants.plugin, op, path, reason, hint);
  };
  if (!isAbsolute(path) || normalize(path) !== path) {
    deny("the path is not absolute and normal", "Pass an absolute path without . or ..");
  }
  const patterns = grants.sysfs ?? [];
  if (!patterns.some((p) => p === "/**" || globToRegExp(p).test(path))) {
    deny(
      "it is not in the plugin's sysfs grant",
      patterns.length
        ? `The plugin may write: ${patterns.join(", ")}`
        : "Add the file (globs allowed) to [ops].sysfs in the plugin's manifest",
    );
  }
  if (grants.sysfsRoot && !isWithin(canonicalize(path), grants.sysfsRoot)) {
    deny(
      `it resolves outside ${grants.sysfsRoot}`,
      "sysfs writes must stay in the host's /sys",
    );
  }
}

/**
 * The /proc files the kernel serves: system-wide facts about the host. Nothing of a process
 * (`/proc/self`, `/proc/thread-self`, `/proc/<pid>/…`: the kernel's own environment, memory,
 * open files), and nothing that is a link into one (`/proc/mounts`, `/proc/net`).
 */
export const PROC_ALLOWED: readonly string[] = [
  "/proc/cpuinfo",
  "/proc/meminfo",
  "/proc/cmdline",
  "/proc/modules",
  "/proc/interrupts",
  "/proc/version",
  "/proc/uptime",
  "/proc/loadavg",
  "/proc/swaps",
  "/proc/partitions",
  "/proc/filesystems",
  "/proc/devices",
  "/proc/sys/kernel/osrelease",
  "/proc/sys/kernel/ostype",
  "/proc/sys/kernel/version",
  "/proc/sys/vm/nr_hugepages",
];

/** Refuses a /proc path (canonical) that is not on the allowlist. */
export function checkProc(grants: Grants, op: string, path: string, canonical: string): void {
  // The folders holding allowed files are allowed too (a stat's parent, a listing of /proc).
  if (
    !isWithin(canonical, "/proc") ||
    PROC_ALLOWED.some((file) => file === canonical || isWithin(file, canonical))
  ) return;
  const resolvedNote = canonical === path ? "" : ` (it resolves to "${canonical}")`;
  throw new PermissionDeniedError(
    grants.plugin,
    op,
    path,
    `the kernel serves only system-wide /proc files, not those of a process${resolvedNote}`,
    `Read one of: ${PROC_ALLOWED.join(", ")}`,
  );
}

/** Checks a path against roots; returns its canonical form or throws. */
export function checkPath(
  grants: Grants,
  op: string,
  path: string,
  access: "read" | "write",
): string {
  if (!isAbsolute(path)) {
    throw new PermissionDeniedError(
      grants.plugin,
      op,
      path,
      "the path is not absolute",
      "Pass an absolute path",
    );
  }
  const canonical = canonicalize(path);
  // Every read, whichever op asks (a copy, a download, a program's input): /proc's allowlist.
  if (access === "read") checkProc(grants, op, path, canonical);
  const roots = access === "write" ? grants.write : grants.read;
  const named = grants.exact?.[access] ?? [];
  if (!named.includes(canonical) && !roots.some((root) => isWithin(canonical, root))) {
    const resolvedNote = canonical === normalize(path) ? "" : ` (it resolves to "${canonical}")`;
    throw new PermissionDeniedError(
      grants.plugin,
      op,
      path,
      `it is outside the plugin's ${access} grant${resolvedNote}`,
      roots.length
        ? `The plugin may ${access} under: ${roots.join(", ")}`
        : `Add the directory to [${
          access === "write" ? "ops" : "permissions"
        }].${access} in the plugin's manifest`,
    );
  }
  return canonical;
}

/**
 * A check on a program's argv that depends on who asks: an input path (checked against the read
 * grant of a third-party plugin) or an argv the kernel cannot check (refused to one). It travels
 * as the program of a `run` need, the one need the broker checks knowing the plugin's origin.
 */
export type ArgvCheck =
  | { program: string; input: string }
  | { program: string; unchecked: string };

const ARGV_CHECK = "\0argv-check:";

/** The `run` need that carries an argv check to the broker (see checkProgram). */
export function argvCheckNeed(check: ArgvCheck): { grant: "run"; program: string } {
  return { grant: "run", program: `${ARGV_CHECK}${JSON.stringify(check)}` };
}

/** Core plugins and the kernel's own rollback are trusted with what the kernel cannot check. */
function trusted(grants: Grants): boolean {
  return grants.core === true || grants.plugin.startsWith("kernel:");
}

function checkArgv(grants: Grants, op: string, check: ArgvCheck): void {
  if (trusted(grants)) return;
  if ("input" in check) {
    checkPath(grants, `${op} ${check.program}`, check.input, "read");
    return;
  }
  throw new PermissionDeniedError(
    grants.plugin,
    op,
    check.program,
    `its arguments are not ones the kernel can check (${check.unchecked}); only plugins shipped with Gini may run it like this`,
    `Pass only the arguments kernel/ops/argv.ts describes for "${check.program}" (${
      describedPrograms().includes(check.program) ? "see its description there" : "it has none"
    }), or use an op kind that does the work`,
  );
}

/** Checks that a program is granted. Only bare names are accepted: the kernel resolves them. */
export function checkProgram(grants: Grants, op: string, program: string): void {
  if (program.startsWith(ARGV_CHECK)) {
    return checkArgv(grants, op, JSON.parse(program.slice(ARGV_CHECK.length)) as ArgvCheck);
  }
  if (program.includes("/") || !grants.run.has(program)) {
    throw new PermissionDeniedError(
      grants.plugin,
      op,
      program,
      program.includes("/")
        ? "programs are named without a path"
        : "the program is not in the plugin's run grant",
      `Add "${basename(program)}" to [ops].run in the plugin's manifest`,
    );
  }
}

/** Checks that the plugin may manage logical volumes. */
export function checkLvm(grants: Grants, op: string, target: string): void {
  if (!grants.lvm) {
    throw new PermissionDeniedError(
      grants.plugin,
      op,
      target,
      "the plugin has no LVM grant",
      "Set [ops].lvm = true in the plugin's manifest",
    );
  }
}

/** Checks that a plugin may record journal checkpoints. */
export function checkCheckpoint(grants: Grants, op: string): void {
  if (!grants.checkpoint) {
    throw new PermissionDeniedError(
      grants.plugin,
      op,
      "the journal",
      "the plugin has no checkpoint grant",
      "Set [ops].checkpoint = true in the plugin's manifest",
    );
  }
}

/** Checks a download's URL against the plugin's hosts (`*.example.org` matches subdomains). */
export function checkDownload(grants: Grants, op: string, url: string): void {
  const parsed = new URL(url);
  const allowed = parsed.protocol === "file:"
    ? grants.download.includes("file")
    : (parsed.protocol === "https:" || parsed.protocol === "http:") &&
      grants.download.some((host) =>
        host === parsed.hostname ||
        (host.startsWith("*.") && parsed.hostname.endsWith(host.slice(1)))
      );
  if (!allowed) {
    throw new PermissionDeniedError(
      grants.plugin,
      op,
      url,
      parsed.protocol === "file:"
        ? "the plugin may not read local files"
        : `"${parsed.hostname}" is not in the plugin's download grant`,
      `Add "${
        parsed.protocol === "file:" ? "file" : parsed.hostname
      }" to [ops].download in the plugin's manifest`,
    );
  }
}

/** Checks a read of a file named by the user's request: inside the request's folder, for a plugin allowed to. */
export function checkRequestFile(
  grants: Grants,
  op: string,
  path: string,
  requestDir: string | undefined,
): string {
  if (!grants.requestFiles) {
    throw new PermissionDeniedError(
      grants.plugin,
      op,
      path,
      "the plugin may not read the request's files",
      "Set [ops].request_files = true in the plugin's manifest",
    );
  }
  const canonical = isAbsolute(path) ? canonicalize(path) : path;
  if (!requestDir || !isAbsolute(path) || !isWithin(canonical, canonicalize(requestDir))) {
    throw new PermissionDeniedError(
      grants.plugin,
      op,
      path,
      requestDir
        ? `it is outside the folder of the request, "${requestDir}"`
        : "this command has no request file",
      "Keep files the VM file names next to it (or in a folder below it)",
    );
  }
  return canonical;
}

/**
 * What running `argv` needs: its program; every output path in the write grant; every input
 * path in the read grant (third-party plugins); and, for an argv the kernel cannot read (no
 * description, arguments it does not cover, a core-only program), a plugin shipped with Gini.
 */
export function argvNeeds(argv: readonly string[]): PermissionNeed[] {
  const program = argv[0]!;
  const needs: PermissionNeed[] = [{ grant: "run", program }];
  const reading = readArgv(argv);
  if (reading.kind === "undescribed") {
    needs.push(argvCheckNeed({ program, unchecked: "it has no argv description" }));
    return needs;
  }
  if (reading.kind === "unknown") {
    needs.push(argvCheckNeed({ program, unchecked: reading.reason }));
    return needs;
  }
  if (reading.coreOnly) needs.push(argvCheckNeed({ program, unchecked: reading.coreOnly }));
  needs.push(...reading.programs.map((p) => ({ grant: "run" as const, program: p })));
  needs.push(...reading.outputs.map((path) => ({ grant: "write" as const, path })));
  needs.push(...reading.inputs.map((input) => argvCheckNeed({ program, input })));
  return needs;
}
