/**
 * Argv descriptions: for each program a plugin may have the kernel run, which of its
 * arguments are paths it reads (inputs) and which are paths it writes (outputs), for the
 * subcommands and flags Gini's plugins use. `run` checks every output against the plugin's
 * write grant and every input against its read grant; an argv a description does not
 * understand, and any argv of a program without a description, is left to core plugins.
 *
 * @example
 * ```ts
 * readArgv(["qemu-img", "convert", "-O", "raw", "/in.dmg", "/out.img"]);
 * // { kind: "paths", inputs: ["/in.dmg"], outputs: ["/out.img"], programs: [] }
 * ```
 *
 * @module
 */
import { dirname, isAbsolute, join } from "../../workers/path.ts";

/** What the kernel makes of an argv. */
export type ArgvReading =
  | {
    kind: "paths";
    /** Paths the program reads. */
    inputs: string[];
    /** Paths the program creates or changes. */
    outputs: string[];
    /** Further programs the argv runs (chroot's command). */
    programs: string[];
    /** Set for programs only core plugins may run whatever their argv, and why. */
    coreOnly?: string;
  }
  /** A described program with arguments its description does not cover. */
  | { kind: "unknown"; reason: string }
  /** A program the kernel has no description of. */
  | { kind: "undescribed" };

type Paths = {
  inputs: string[];
  outputs: string[];
  programs?: string[];
  /** Why this argv is for core plugins only although the program is described. */
  unchecked?: string;
};
type Reader = (args: string[]) => Paths | string;

/** Options a program takes: flags (no value), values (not paths), inputs and outputs (paths). */
interface OptionSpec {
  flags?: readonly string[];
  values?: readonly string[];
  inputs?: readonly string[];
  outputs?: readonly string[];
}

interface Parsed {
  positionals: string[];
  inputs: string[];
  outputs: string[];
  values: Map<string, string>;
  flags: Set<string>;
}

/**
 * Splits arguments into options (by the spec) and positionals. A dash argument the spec does not
 * name makes the argv one the kernel does not understand: it could take a path.
 */
function parseOptions(args: readonly string[], spec: OptionSpec): Parsed | string {
  const parsed: Parsed = {
    positionals: [],
    inputs: [],
    outputs: [],
    values: new Map(),
    flags: new Set(),
  };
  const takesValue = (name: string) =>
    spec.values?.includes(name) || spec.inputs?.includes(name) || spec.outputs?.includes(name);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      parsed.positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      parsed.positionals.push(arg);
      continue;
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (spec.flags?.includes(name) && eq < 0) {
      parsed.flags.add(name);
      continue;
    }
    if (!takesValue(name)) return `unknown option "${arg}"`;
    let value: string;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      if (i + 1 >= args.length) return `option "${name}" needs a value`;
      value = args[++i]!;
    }
    if (spec.inputs?.includes(name)) parsed.inputs.push(value);
    else if (spec.outputs?.includes(name)) parsed.outputs.push(value);
    // A program may combine a repeated option (qemu-img's -o) where this reading keeps one.
    else if (parsed.values.has(name)) return `option "${name}" is given more than once`;
    else parsed.values.set(name, value);
  }
  return parsed;
}

/** Reads an argv with one option spec and a rule for its positionals. */
function withOptions(
  spec: OptionSpec,
  positionals: (p: string[], parsed: Parsed) => Paths | string,
): Reader {
  return (args) => {
    const parsed = parseOptions(args, spec);
    if (typeof parsed === "string") return parsed;
    const rest = positionals(parsed.positionals, parsed);
    if (typeof rest === "string") return rest;
    return {
      inputs: [...parsed.inputs, ...rest.inputs],
      outputs: [...parsed.outputs, ...rest.outputs],
      programs: rest.programs ?? [],
      ...(rest.unchecked ? { unchecked: rest.unchecked } : {}),
    };
  };
}

const NONE: Paths = { inputs: [], outputs: [] };
const VERSION = ["--version", "-version", "-V", "--help", "-h"];

/** An argv that is exactly one of `forms` (each a list of arguments). */
function only(...forms: string[][]): Reader {
  return (args) =>
    forms.some((f) => f.length === args.length && f.every((x, i) => x === args[i]))
      ? NONE
      : `only ${forms.map((f) => `"${f.join(" ")}"`).join(", ")} are understood`;
}

const versionOnly = only(...VERSION.map((v) => [v]));

function count(p: string[], n: number, what: string): string | null {
  return p.length === n ? null : `expected ${what}, found ${p.length} argument(s)`;
}

/**
 * qemu-img's `-o` options: a backing or data file is a path. Commas escaped as ",," are not
 * split by this reading, so they are refused.
 */
function qemuImgOptions(value: string, output: string | undefined): Paths | string {
  if (value.includes(",,")) return `"-o ${value}" uses escaped commas`;
  const paths: Paths = { inputs: [], outputs: [] };
  for (const pair of value.split(",")) {
    // Split at the first "=" only: the value is the rest, "=" and all.
    const at = pair.indexOf("=");
    const key = at < 0 ? pair : pair.slice(0, at);
    const v = at < 0 ? undefined : pair.slice(at + 1);
    if ((key === "backing_file" || key === "data_file") && v !== undefined && hasProtocol(v)) {
      return `"${key}=${v}" names a protocol, not a file`;
    }
    if (key === "backing_file" && v !== undefined) paths.inputs.push(relativeTo(v, output));
    else if (key === "data_file" && v !== undefined) paths.outputs.push(relativeTo(v, output));
    else if (key.includes("file") || key.includes("secret")) {
      return `"-o ${key}" names a file this reading does not cover`;
    }
  }
  return paths;
}

/**
 * Whether qemu would open `name` through a protocol (`file:`, `json:`, `fat:`, `nbd:`…) rather
 * than as a file: a ":" before the first "/".
 */
export function hasProtocol(name: string): boolean {
  return /^[^/]*:/.test(name);
}

/** Why an image whose format is not given as raw is left to core plugins. */
export const HEADERS_UNCHECKED =
  "qemu-img follows the backing and data files an image's header names, which the kernel does not read: give its format as raw";

/** The reason to leave an argv to core plugins when an image's format is not raw. */
function unlessRaw(format: string | undefined): { unchecked?: string } {
  return format === "raw" ? {} : { unchecked: HEADERS_UNCHECKED };
}

/** qemu-img resolves a relative backing file against the image's folder. */
function relativeTo(path: string, image: string | undefined): string {
  return isAbsolute(path) || !image || !isAbsolute(image) ? path : join(dirname(image), path);
}

const QEMU_IMG: Record<string, Reader> = {
  // snapshot -l lists an image's internal snapshots; -c, -a and -d change the image.
  snapshot: withOptions(
    { flags: ["-q", "-l", "-U", "--force-share"], values: ["-f", "-c", "-a", "-d"] },
    (p, parsed) => {
      const changes = ["-c", "-a", "-d"].filter((o) => parsed.values.has(o));
      if (changes.length + (parsed.flags.has("-l") ? 1 : 0) !== 1) {
        return "expected one of -l, -c, -a or -d";
      }
      return count(p, 1, "one image") ?? {
        inputs: changes.length ? [] : p,
        outputs: changes.length ? p : [],
        ...unlessRaw(parsed.values.get("-f")),
      };
    },
  ),
  info: withOptions(
    {
      flags: ["-U", "--force-share", "--backing-chain"],
      values: ["--output", "-f"],
    },
    (p, parsed) =>
      count(p, 1, "one image") ??
        { inputs: p, outputs: [], ...unlessRaw(parsed.values.get("-f")) },
  ),
  check: withOptions(
    { flags: ["-U", "--force-share", "-q"], values: ["--output", "-f", "-r"] },
    (p, parsed) =>
      count(p, 1, "one image") ??
        (parsed.values.has("-r")
          ? { inputs: [], outputs: p, ...unlessRaw(parsed.values.get("-f")) }
          : { inputs: p, outputs: [], ...unlessRaw(parsed.values.get("-f")) }),
  ),
  measure: withOptions(
    { flags: ["-U", "--force-share"], values: ["--output", "-f", "-O", "-o", "--size", "-l"] },
    (p, parsed) => {
      if (parsed.values.has("-o")) return '"-o" is not understood with measure';
      if (p.length > 1) return "expected at most one image";
      return { inputs: p, outputs: [], ...(p.length ? unlessRaw(parsed.values.get("-f")) : {}) };
    },
  ),
  create: withOptions(
    { flags: ["-q", "-u"], values: ["-f", "-F", "-o", "-b"] },
    (p, parsed) => {
      if (p.length < 1 || p.length > 2) return "expected an image and a size";
      const image = p[0]!;
      const paths: Paths = { inputs: [], outputs: [image] };
      const backing = parsed.values.get("-b");
      if (backing !== undefined && hasProtocol(backing)) {
        return `"-b ${backing}" names a protocol, not a file`;
      }
      if (backing !== undefined) paths.inputs.push(relativeTo(backing, image));
      const options = parsed.values.get("-o");
      if (options !== undefined) {
        const more = qemuImgOptions(options, image);
        if (typeof more === "string") return more;
        paths.inputs.push(...more.inputs);
        paths.outputs.push(...more.outputs);
      }
      // A backing image is opened (its header followed) unless it is raw.
      return paths.inputs.length ? { ...paths, ...unlessRaw(parsed.values.get("-F")) } : paths;
    },
  ),
  convert: withOptions(
    {
      flags: ["-q", "-p", "-c", "-U", "--force-share", "-n", "-W", "-C"],
      values: ["-f", "-O", "-o", "-S", "-t", "-T", "-m", "-l", "-F", "-B"],
    },
    (p, parsed) => {
      if (p.length < 2) return "expected one or more images and an output";
      const output = p.at(-1)!;
      const paths: Paths = {
        inputs: p.slice(0, -1),
        outputs: [output],
        ...unlessRaw(parsed.values.get("-f")),
      };
      const backing = parsed.values.get("-B");
      if (backing !== undefined && hasProtocol(backing)) {
        return `"-B ${backing}" names a protocol, not a file`;
      }
      if (backing !== undefined) {
        paths.inputs.push(relativeTo(backing, output));
        if (parsed.values.get("-F") !== "raw") paths.unchecked = HEADERS_UNCHECKED;
      }
      const options = parsed.values.get("-o");
      if (options !== undefined) {
        const more = qemuImgOptions(options, output);
        if (typeof more === "string") return more;
        paths.inputs.push(...more.inputs);
        paths.outputs.push(...more.outputs);
      }
      return paths;
    },
  ),
};

/** mkisofs options (genisoimage, and xorriso's emulation of it) the seed ISO uses. */
const MKISOFS = withOptions(
  {
    flags: ["-quiet", "-joliet", "-J", "-rock", "-r", "-R"],
    values: ["-volid", "-V", "--set_all_file_dates", "-input-charset"],
    outputs: ["-output", "-o"],
  },
  (p, parsed) =>
    parsed.outputs.length === 1 && p.length > 0
      ? { inputs: p, outputs: [] }
      : "expected one -output and the files to put in the image",
);

/** mtools: `-i IMAGE` (with an optional `@@offset`) and "::" paths inside it. */
function mtoolsImage(parsed: Parsed): string | null {
  const image = parsed.values.get("-i");
  return image === undefined ? null : image.replace(/@@\d+[KMG]?$/, "");
}

function mtools(spec: OptionSpec, paths: (image: string, p: string[]) => Paths | string): Reader {
  return withOptions({ ...spec, values: [...(spec.values ?? []), "-i"] }, (p, parsed) => {
    const image = mtoolsImage(parsed);
    if (image === null) return 'expected "-i IMAGE" (a drive from mtools.conf is not understood)';
    const drive = p.find((x) => /^[A-Za-z]:/.test(x));
    if (drive) return `"${drive}" names an mtools drive; use "::" with -i`;
    return paths(image, p);
  });
}

const MTOOLS_FLAGS = ["-b", "-s", "-Q", "-n", "-o", "-m", "-v", "-p", "-t", "-a", "-/", "-w"];

/** Reads that only report (lvm's), without a configuration of their own. */
const LVM_REPORT = withOptions(
  {
    flags: ["--nosuffix", "--noheadings", "-a", "--all", "--readonly", "--binary"],
    values: ["--reportformat", "--units", "-o", "--options", "-O", "--sort", "-S", "--select"],
  },
  () => NONE,
);

/** virsh's snapshot commands Gini uses, by how many names follow (domain, then snapshot). */
const VIRSH_SNAPSHOT_COMMANDS: Record<string, number> = {
  "snapshot-list": 1,
  "snapshot-create-as": 2,
  "snapshot-revert": 2,
  "snapshot-delete": 2,
};

const virshUris = new Set(["qemu:///system", "qemu:///session", "test:///default"]);
const VIRSH_NAME_COMMANDS = new Set(["domstate", "dominfo", "shutdown", "destroy", "start"]);

/** virsh: a known connection URI and one of the domain commands Gini uses. */
const VIRSH: Reader = (args) => {
  if (args.length === 1 && VERSION.includes(args[0]!)) return NONE;
  const parsed = parseOptions(args, {
    flags: ["-q", "--quiet", "-r", "--readonly", "--all", "--name", "--nvram", "--atomic"],
    values: ["-c", "--connect"],
  });
  if (typeof parsed === "string") return parsed;
  const uri = parsed.values.get("-c") ?? parsed.values.get("--connect");
  if (uri !== undefined && !virshUris.has(uri)) {
    return `connection URI "${uri}" is not one of ${[...virshUris].join(", ")}`;
  }
  const [command, ...rest] = parsed.positionals;
  if (command === "list" || command === "version" || command === "capabilities") {
    return rest.length === 0 ? NONE : `"${command}" takes no arguments here`;
  }
  if (command === "undefine" || (command && VIRSH_NAME_COMMANDS.has(command))) {
    if (parsed.flags.has("--nvram") && command !== "undefine") return '"--nvram" is for undefine';
    return rest.length === 1 ? NONE : `expected one domain name after "${command}"`;
  }
  const names = command === undefined ? undefined : VIRSH_SNAPSHOT_COMMANDS[command];
  if (names !== undefined) {
    if (parsed.flags.has("--nvram")) return '"--nvram" is for undefine';
    return rest.length === names ? NONE : `expected ${names} name(s) after "${command}"`;
  }
  if (command === "define") {
    return "the domain XML it reads names disks and files the kernel does not check";
  }
  return `subcommand "${command ?? ""}" is not understood`;
};

const REBUILD = "it runs hooks and scripts from the host's configuration, with the kernel's rights";

/** Programs and how to read their arguments. `coreOnly` programs are for core plugins alone. */
const DESCRIPTIONS: Record<string, { read: Reader; coreOnly?: string }> = {
  "true": { read: () => NONE },
  "false": { read: () => NONE },
  // sleep SECONDS…: durations only.
  "sleep": {
    read: (args) =>
      args.length > 0 && args.every((a) => /^\d+(\.\d+)?[smhd]?$/.test(a))
        ? NONE
        : "expected durations",
  },
  "qemu-img": {
    read: (args) => {
      const [sub, ...rest] = args;
      if (args.length === 1 && VERSION.includes(sub!)) return NONE;
      const reader = sub === undefined ? undefined : QEMU_IMG[sub];
      return reader
        ? reader(rest)
        : `subcommand "${sub ?? ""}" is not understood (known: ${
          Object.keys(QEMU_IMG).join(", ")
        })`;
    },
  },
  "qemu-system-x86_64": {
    read: only(
      ...VERSION.map((v) => [v]),
      ...["-machine", "-M", "-cpu", "-device", "-accel"].map((flag) => [flag, "help"]),
    ),
  },
  "swtpm": { read: versionOnly },
  "swtpm_ioctl": {
    read: withOptions(
      { flags: ["-s", "-i", "-c", "-v", "-g", "--version"], outputs: ["--unix"] },
      (p, parsed) =>
        p.length === 0 && (parsed.outputs.length === 1 || parsed.flags.has("--version"))
          ? NONE
          : 'expected "--unix SOCKET" and flags',
    ),
  },
  "virsh": { read: VIRSH },
  // Logical volumes go through lvm.create and lvm.remove, which check the lvm grant.
  "lvcreate": { read: versionOnly },
  "lvremove": { read: versionOnly },
  "vgs": { read: LVM_REPORT },
  "lvs": { read: LVM_REPORT },
  "pvs": { read: LVM_REPORT },
  "xorriso": {
    read: (args) =>
      args[0] === "-as" && args[1] === "mkisofs"
        ? MKISOFS(args.slice(2))
        : args.length === 1 && VERSION.includes(args[0]!)
        ? NONE
        : 'only "-as mkisofs" and version queries are understood',
  },
  "genisoimage": {
    read: (args) => args.length === 1 && VERSION.includes(args[0]!) ? NONE : MKISOFS(args),
  },
  "isoinfo": {
    read: withOptions(
      {
        flags: ["-d", "-f", "-l", "-R", "-J", "-p", "-debug"],
        values: ["-j", "-x", "-N"],
        inputs: ["-i"],
      },
      (p, parsed) =>
        p.length === 0 && parsed.inputs.length === 1 ? NONE : 'expected one "-i IMAGE"',
    ),
  },
  "sgdisk": {
    read: withOptions(
      {
        flags: ["-o", "--clear", "-Z", "--zap-all", "-z", "--zap", "-g", "--mbrtogpt", "-p"],
        values: [
          "-n",
          "--new",
          "-t",
          "--typecode",
          "-c",
          "--change-name",
          "-a",
          "--set-alignment",
          "-u",
          "--partition-guid",
        ],
        inputs: ["-l", "--load-backup"],
        outputs: ["-b", "--backup"],
      },
      (p) => count(p, 1, "one disk") ?? { inputs: [], outputs: p },
    ),
  },
  "mkfs.fat": {
    read: withOptions(
      {
        flags: ["-a", "-C", "-I", "-v", "--invariant"],
        values: ["-F", "-s", "-S", "-n", "--offset", "-i", "-r", "-R", "-f", "-h", "-M", "-D"],
      },
      (p) =>
        p.length === 1 || p.length === 2
          ? { inputs: [], outputs: [p[0]!] }
          : "expected a device and an optional block count",
    ),
  },
  "mcopy": {
    read: mtools({ flags: MTOOLS_FLAGS, values: ["-D"] }, (image, p) => {
      if (p.length < 2) return "expected sources and a destination";
      const target = p.at(-1)!;
      const sources = p.slice(0, -1);
      // Into the image: it is written, the host sources are read. Out of it: the reverse.
      if (target.startsWith("::")) {
        return { inputs: sources.filter((s) => !s.startsWith("::")), outputs: [image] };
      }
      if (sources.some((s) => !s.startsWith("::"))) return "copies between two host paths";
      return { inputs: [image], outputs: [target] };
    }),
  },
  "mmd": {
    read: mtools(
      { values: ["-D"] },
      (image, p) =>
        p.length > 0 && p.every((x) => x.startsWith("::"))
          ? { inputs: [], outputs: [image] }
          : 'expected "::" folders',
    ),
  },
  "mdir": {
    read: mtools(
      { flags: MTOOLS_FLAGS },
      (image, p) =>
        p.every((x) => x.startsWith("::"))
          ? { inputs: [image], outputs: [] }
          : 'expected "::" folders',
    ),
  },
  "lspci": {
    read: withOptions(
      {
        flags: ["-n", "-nn", "-k", "-v", "-vv", "-vvv", "-D", "-m", "-mm", "-t", "-x", "-q"],
        values: ["-s", "-d"],
      },
      (p) => p.length === 0 ? NONE : "takes no positional arguments",
    ),
  },
  // The VFIO rebuilds: core plugins only; their outputs are still checked.
  "update-initramfs": {
    coreOnly: REBUILD,
    read: withOptions(
      { flags: ["-u", "-c", "-v"], values: ["-k"] },
      (p) => p.length === 0 ? { inputs: [], outputs: ["/boot"] } : "takes no positionals",
    ),
  },
  "dracut": {
    coreOnly: REBUILD,
    read: withOptions(
      { flags: ["--force", "-f", "--regenerate-all", "-q", "--quiet"] },
      (p) => p.length === 0 ? { inputs: [], outputs: ["/boot"] } : "takes no positionals here",
    ),
  },
  "mkinitcpio": {
    coreOnly: REBUILD,
    read: withOptions(
      { flags: ["-P", "--allpresets"] },
      (p) => p.length === 0 ? { inputs: [], outputs: ["/boot"] } : "takes no positionals",
    ),
  },
  "booster": {
    coreOnly: REBUILD,
    read: (args) => {
      if (args[0] !== "build") return 'only "build" is understood';
      const parsed = parseOptions(args.slice(1), {
        flags: ["--force"],
        values: ["--kernel-version"],
      });
      if (typeof parsed === "string") return parsed;
      return count(parsed.positionals, 1, "one output image") ??
        { inputs: [], outputs: parsed.positionals };
    },
  },
  "grub-mkconfig": {
    coreOnly: REBUILD,
    read: withOptions(
      { outputs: ["-o", "--output"] },
      (p, parsed) => p.length === 0 && parsed.outputs.length === 1 ? NONE : 'expected "-o FILE"',
    ),
  },
  "grub2-mkconfig": {
    coreOnly: REBUILD,
    read: withOptions(
      { outputs: ["-o", "--output"] },
      (p, parsed) => p.length === 0 && parsed.outputs.length === 1 ? NONE : 'expected "-o FILE"',
    ),
  },
  "kernel-install": {
    coreOnly: REBUILD,
    read: (args) =>
      args[0] === "add" && args.length === 3
        ? { inputs: [args[2]!], outputs: [] }
        : 'only "add VERSION KERNEL" is understood',
  },
  "kernelstub": {
    coreOnly: REBUILD,
    read: (args) => args.length === 0 ? { inputs: [], outputs: ["/boot"] } : "takes no arguments",
  },
  // chroot ROOT COMMAND…: the command's paths are inside ROOT.
  "chroot": {
    coreOnly: "it runs whatever program the new root holds, with the kernel's rights",
    read: (args) => {
      const [root, ...command] = args;
      if (!root || root.startsWith("-") || command.length === 0) {
        return 'expected "chroot ROOT PROGRAM [ARGS…]"';
      }
      const inner = readArgv(command);
      if (inner.kind === "undescribed") return `"${command[0]}" has no argv description`;
      if (inner.kind === "unknown") return `"${command[0]}": ${inner.reason}`;
      const under = (path: string) => isAbsolute(path) ? join(root, path) : path;
      return {
        inputs: [root, ...inner.inputs.map(under)],
        outputs: inner.outputs.map(under),
        programs: [command[0]!, ...inner.programs],
      };
    },
  },
};

/** The distributions' initramfs and boot loader rebuild commands (the VFIO set-up runs them). */
export const REBUILD_PROGRAMS: readonly string[] = Object.keys(DESCRIPTIONS).filter((p) =>
  DESCRIPTIONS[p]!.coreOnly === REBUILD
);

/** Whether the kernel has a description of `program`'s arguments. */
export function isDescribed(program: string): boolean {
  return Object.hasOwn(DESCRIPTIONS, program);
}

/** Why only core plugins may run `program`, if they alone may. */
export function coreOnlyReason(program: string): string | undefined {
  return Object.hasOwn(DESCRIPTIONS, program) ? DESCRIPTIONS[program]!.coreOnly : undefined;
}

/** The programs with an argv description, sorted. */
export function describedPrograms(): string[] {
  return Object.keys(DESCRIPTIONS).sort();
}

/** Which arguments of `argv` are input and output paths, if the kernel understands it. */
export function readArgv(argv: readonly string[]): ArgvReading {
  const [program, ...args] = argv;
  if (program === undefined || !Object.hasOwn(DESCRIPTIONS, program)) {
    return { kind: "undescribed" };
  }
  const description = DESCRIPTIONS[program]!;
  const read = description.read(args);
  if (typeof read === "string") return { kind: "unknown", reason: read };
  return {
    kind: "paths",
    inputs: read.inputs,
    outputs: read.outputs,
    programs: read.programs ?? [],
    ...(description.coreOnly || read.unchecked
      ? { coreOnly: description.coreOnly ?? read.unchecked! }
      : {}),
  };
}
