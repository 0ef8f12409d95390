/**
 * windows-setup: for VM files with a `[windows]` table, reads the user's Windows ISO (UDF, through
 * 7z) to choose the image of `sources/install.wim` and its language, takes the drivers Setup needs
 * from the virtio-win ISO, writes `autounattend.xml` (mode 0600) and puts both on a FAT image made
 * with mtools. `gini windows editions ISO` lists an ISO's images.
 *
 * @example
 * ```toml
 * name = "win11"
 * guest = "windows"
 * [windows]
 * iso = "Win11_24H2_English_x64.iso"
 * password_file = "win11.password"
 * ```
 *
 * @module
 */
import { basename, isAbsolute, join, resolve } from "../../workers/path.ts";
import {
  type CommandDefinition,
  ConfigError,
  type ContextKey,
  contextValue,
  definePlugin,
  type Json,
  sha256Hex,
  type StageContext,
  USER_VM_REQUEST,
} from "../../workers/sdk.ts";
import { locateKey } from "../../workers/sdk_toml.ts";
import { VM_CONFIG } from "../qemu_setup/keys.ts";
import type { WindowsConfig } from "../qemu_setup/vm_schema.ts";
import { WINDOWS_MEDIA } from "./contracts.ts";
import {
  buildAnswerFile,
  checkAnswerFile,
  computerName,
  DRIVER_FOLDER,
  isServer,
  type WindowsProfile,
} from "./unattend.ts";
import { readWimImages, WimFormatError, type WimImage } from "./wim.ts";
import { DONE_MARKER } from "./unattend.ts";
import catalogue from "./catalogue.json" with { type: "json" };

/** What the stages need of the VM file. */
type SetupConfig = {
  name: string;
  file: string;
  text: string;
  dir: string;
  windows: WindowsConfig;
  password: string;
  tpm: boolean;
  secureBoot: boolean;
  /**
   * The file deploy writes when it sees the installation done; once it exists, the VM boots from
   * its disk and nothing is read, made or attached for the installation again.
   */
  record: string;
  installed: boolean;
};

type ImageChoice = {
  iso: string;
  /** Null in a dry run: 7z does not run, so the ISO is read when the VM is deployed. */
  image: WimImage | null;
  profile: WindowsProfile;
  language: string;
};

type Drivers = {
  iso: string;
  /** The files to take out of it, by where they go on the answer-file image. */
  files: string[];
  /** 7z's -t option that reads it ("-tudf"), if any. */
  type: string[];
};

const CONFIG: ContextKey<SetupConfig> = "windows_setup.config";
/** These three are null once the installation is done. */
const IMAGE: ContextKey<ImageChoice | null> = "windows_setup.image";
const DRIVERS: ContextKey<Drivers | null> = "windows_setup.drivers";
/** The answer file, and the same with its passwords hidden (what a plan shows). */
const ANSWER_FILE: ContextKey<{ text: string; shown: string } | null> = "windows_setup.answer_file";
/** `session.command` of `gini windows editions ISO`. */
const EDITIONS_COMMAND: ContextKey<{ args: { iso: string } }> = "session.command";
const EDITIONS: ContextKey<{ iso: string; images: WimImage[] | null }> = "windows_setup.editions";

/**
 * What the boot loader of Microsoft's installation media prints, on the screen and (through
 * OVMF's console) the serial port, when it waits a few seconds for a key to boot from the disc.
 */
export const BOOT_PROMPT = "Press any key to boot from CD or DVD";

/** The drivers Windows Setup loads from `$WinPEDriver$`: disk, network, input, RNG, balloon, serial. */
export const SETUP_DRIVERS = ["viostor", "NetKVM", "vioinput", "viorng", "Balloon", "vioserial"];

/** The virtio-win releases Gini knows, each with its SHA-256. */
const VIRTIO_WIN = catalogue as Record<
  string,
  { description: string; url: string; sha256: string; approxBytes: number }
>;

const config = (ctx: StageContext) => ctx.get(CONFIG)!;

/** A bad `[windows]` value: exit 2, naming the file, the key and the next step. */
function bad(c: Pick<SetupConfig, "file" | "text">, key: string, message: string, hint: string) {
  const path = ["windows", key];
  return new ConfigError(message, {
    location: { file: c.file, key: path.join("."), ...locateKey(c.text, path) },
    hint,
  });
}

const fromFile = (file: string, path: string) =>
  isAbsolute(path) ? path : resolve(file, "..", path);

/** Windows' default password policy on Server (complexity); clients take any non-empty one. */
function passwordProblem(password: string, user: string, server: boolean): string | null {
  if (password.length === 0) return "it is empty";
  if (password.length > 127) return "it is longer than Windows' 127 characters";
  if (!server) return null;
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((r) => r.test(password));
  if (password.length < 8 || classes.length < 3) {
    return "Windows Server's default policy wants at least 8 characters from three of: lower case, upper case, digits, symbols";
  }
  if (password.toLowerCase().includes(user.toLowerCase())) {
    return "it contains the user name, which Windows Server's default policy refuses";
  }
  return null;
}

/** The answer file's profile of an image: Windows 10, 11 (23H2, 24H2), Server 2022 or 2025. */
export function profileOf(image: WimImage): WindowsProfile | null {
  const build = image.build;
  if (build === null) return null;
  if (image.installationType?.startsWith("Server")) {
    return build >= 26100 ? "server-2025" : build >= 20348 ? "server-2022" : null;
  }
  return build >= 26100 ? "11-24h2" : build >= 22000 ? "11-23h2" : build >= 10240 ? "10" : null;
}

/** The image `edition` names; by default the only one, else Pro. */
export function chooseImage(
  images: WimImage[],
  edition: number | string | undefined,
): WimImage | string {
  const list = images.map((i) => `${i.index} "${i.name}"`).join(", ");
  if (typeof edition === "number") {
    return images.find((i) => i.index === edition) ??
      `the ISO has no image ${edition}; it has ${list}`;
  }
  if (typeof edition === "string") {
    const want = edition.toLowerCase();
    return images.find((i) => i.name.toLowerCase() === want) ??
      images.find((i) => i.edition?.toLowerCase() === want) ??
      `the ISO has no image named "${edition}"; it has ${list}`;
  }
  if (images.length === 1) return images[0]!;
  return images.find((i) => i.edition === "Professional") ??
    images.find((i) => /\bPro$/i.test(i.name)) ??
    `the ISO has ${images.length} images and none is Pro: ${list}`;
}

/** The files of a 7z listing (`7z l -slt`): path, size and modification time. */
export function parseListing(stdout: string): { path: string; size: number; folder: boolean }[] {
  const files: { path: string; size: number; folder: boolean }[] = [];
  // The archive's own block comes first, before the "----------" line.
  const body = stdout.split(/^-{10}$/m).slice(1).join("\n");
  for (const block of body.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of block.split("\n")) {
      const at = line.indexOf(" = ");
      if (at > 0) fields.set(line.slice(0, at), line.slice(at + 3));
    }
    const path = fields.get("Path");
    if (!path) continue;
    files.push({
      path,
      size: Number(fields.get("Size") ?? 0),
      folder: fields.get("Folder") === "+" || (fields.get("Attributes") ?? "").startsWith("D"),
    });
  }
  return files;
}

/**
 * Lists an ISO with 7z, or says why it cannot be read: as UDF first (a Windows ISO's ISO 9660 view
 * holds only README.TXT, and 7z picks that view for a file not named .iso), else as 7z sees it.
 * `type` is the -t option that read it, for taking files out the same way.
 */
async function listIso(ctx: StageContext, iso: string, fail: (why: string) => Error) {
  type Listed = { code: number; stdout: string; stderr: string; simulated?: boolean };
  const list = (type: string[]) =>
    ctx.op<Listed>("run", {
      argv: ["7z", "l", "-slt", ...type, iso],
      allowFailure: true,
      timeoutMs: 120_000,
      // A listing changes nothing: there is nothing to undo.
      undo: [],
    });
  const complete = (l: Listed) => l.code === 0 || /^-{10}$/m.test(l.stdout);
  let type = ["-tudf"];
  let listed = await list(type);
  if (listed.simulated) return null;
  if (!complete(listed)) {
    type = [];
    listed = await list(type);
  }
  if (!complete(listed)) {
    const tail = `${listed.stderr}\n${listed.stdout}`.split("\n").map((l) => l.trim())
      .filter((l) => /error|cannot|no such/i.test(l)).slice(-2).join("; ");
    const gone = /errno=2\b|No such file/.test(`${listed.stderr}\n${listed.stdout}`);
    throw fail(gone ? "it does not exist" : tail || `7z exited with ${listed.code}`);
  }
  return { stdout: listed.stdout, files: parseListing(listed.stdout), type };
}

/**
 * The images of the ISO's install.wim (or install.esd): from the cache when this ISO was read
 * before, else 7z takes the file out into the cache, its header and XML are read, and it is
 * removed again (Setup reads it from the ISO itself).
 */
async function readImages(
  ctx: StageContext,
  iso: string,
  fail: (why: string, hint: string) => Error,
): Promise<WimImage[] | null> {
  const listing = await listIso(
    ctx,
    iso,
    (why) => fail(`7z cannot read it (${why})`, "Check the path, and that the file is a whole ISO"),
  );
  if (!listing) return null;
  const wim = listing.files.find((f) => /^sources\/install\.(wim|esd)$/i.test(f.path));
  if (!wim) {
    throw fail(
      "it holds no sources/install.wim or sources/install.esd, so it is not a Windows installation ISO",
      "Use the ISO Microsoft's download page or the Media Creation Tool gives",
    );
  }
  // The listing names the volume and every file with its size and time: the same ISO, the same key.
  const key = (await sha256Hex(listing.stdout.replace(/^.*$/m, ""))).slice(0, 24);
  const cached = join(ctx.dirs.cache, "windows", "editions", `${key}.json`);
  try {
    return JSON.parse(await Deno.readTextFile(cached)) as WimImage[];
  } catch {
    // Not read before.
  }
  const out = join(ctx.dirs.cache, "windows", "extract", key);
  const file = join(out, wim.path);
  await ctx.op("fs.mkdir", { path: out });
  ctx.ui.info(`Reading ${wim.path} of ${basename(iso)} (${Math.round(wim.size / 2 ** 20)} MiB)`);
  await ctx.op("run", {
    argv: ["7z", "x", "-y", ...listing.type, `-o${out}`, iso, wim.path],
    creates: [file],
    timeoutMs: 30 * 60_000,
    estimateBytes: wim.size,
    estimateSeconds: Math.ceil(wim.size / 200e6),
  });
  let images: WimImage[];
  try {
    images = await readWimImages(file);
  } catch (error) {
    if (!(error instanceof WimFormatError)) throw error;
    throw fail(`its ${wim.path} cannot be read: ${error.message}`, "Use an unmodified Windows ISO");
  }
  await ctx.op("fs.mkdir", { path: join(ctx.dirs.cache, "windows", "editions") });
  await ctx.op("fs.write", {
    path: cached,
    content: `${JSON.stringify(images, null, 2)}\n`,
    overwrite: true,
  });
  // Setup reads the image from the ISO itself: the copy goes (a tree removal, not hashed first).
  await ctx.op("fs.remove", { path: out, recursive: true });
  return images;
}

/** A local file or a URL (downloaded and checked against `sha256`). */
async function resolveIso(ctx: StageContext, c: SetupConfig): Promise<string> {
  const { iso, sha256 } = c.windows;
  if (/^https?:\/\//.test(iso)) {
    if (!sha256) {
      throw bad(
        c,
        "iso",
        `Cannot download "${iso}": no sha256 is given to check it with`,
        'Add sha256 = "…" to [windows] (Microsoft\'s download page lists it), or download the ISO and give its path',
      );
    }
    let got: { path: string };
    try {
      got = await ctx.op<{ path: string }>("download", {
        url: iso,
        label: `Downloading ${basename(new URL(iso).pathname)}`,
        checksum: { algorithm: "sha256", value: sha256.toLowerCase() },
      });
    } catch (error) {
      const actual = error instanceof Error && error.message.match(/its sha256 is ([0-9a-f]{64})/);
      if (!actual) throw error;
      throw bad(
        c,
        "sha256",
        `Cannot use the Windows ISO "${iso}": its SHA-256 is ${actual[1]}, not the sha256 given`,
        "Compare sha256 with the one Microsoft publishes for this ISO; nothing was kept of the download",
      );
    }
    return ctx.dryRun
      ? join(ctx.dirs.cache, "downloads", basename(new URL(iso).pathname))
      : got.path;
  }
  return fromFile(c.file, iso.startsWith("file://") ? new URL(iso).pathname : iso);
}

/** The virtio-win ISO: a catalogue release (downloaded, verified) or a local file. */
async function resolveDrivers(ctx: StageContext, c: SetupConfig): Promise<string> {
  const name = c.windows.drivers;
  const entry = VIRTIO_WIN[name];
  if (entry) {
    const got = await ctx.op<{ path: string }>("download", {
      url: entry.url,
      label: `Downloading ${name}`,
      sizeBytes: entry.approxBytes,
      sizeApproximate: true,
      checksum: { algorithm: "sha256", value: entry.sha256 },
    });
    return ctx.dryRun ? join(ctx.dirs.cache, "downloads", basename(entry.url)) : got.path;
  }
  if (/^[a-z]+:\/\//.test(name) || !/\.iso$/i.test(name)) {
    throw bad(
      c,
      "drivers",
      `Cannot use drivers "${name}": it is neither a catalogue release nor a local .iso file`,
      `Use ${
        Object.keys(VIRTIO_WIN).map((k) => `"${k}"`).join(", ")
      }, or the path of a virtio-win ISO`,
    );
  }
  return fromFile(c.file, name);
}

/** The mtools image size for `bytes` of files: room for FAT and cluster slack, at least 16 MiB. */
function imageSectors(bytes: number, files: number): number {
  const total = bytes * 1.1 + files * 4096 + 4 * 2 ** 20;
  return Math.max(32768, Math.ceil(total / 512 / 2048) * 2048);
}

export default definePlugin({
  stages: {
    "load-config-toml": async (ctx) => {
      const request = ctx.get(USER_VM_REQUEST)!;
      const vm = ctx.get(VM_CONFIG)!;
      const windows = vm.windows!;
      const base = { file: request.file, text: request.text };
      if (vm.guest !== "windows") {
        throw new ConfigError(`Cannot use [windows] in a VM with guest = "${vm.guest}"`, {
          location: { file: request.file, key: "guest", ...locateKey(request.text, ["guest"]) },
          hint: 'Set guest = "windows", or remove the [windows] table',
        });
      }
      const passwordPath = fromFile(request.file, windows.password_file);
      let password: string;
      try {
        password = (await ctx.op<{ text: string }>("file.read", { path: passwordPath })).text;
      } catch (error) {
        throw bad(
          base,
          "password_file",
          `Cannot read password_file "${windows.password_file}": ${
            error instanceof Error ? error.message : error
          }`,
          `Put the password in a file next to ${
            basename(request.file)
          } (chmod 600), its first line`,
        );
      }
      password = password.split(/\r?\n/)[0]!;
      const dir = join(ctx.dirs.data, "vms", vm.name);
      const record = join(dir, "windows", "installed");
      // Read with the worker's own permission ({data}/vms): the VM's folder, not a host path. A
      // VM saved before Gini saw installations through has no record and no install in its
      // definition: it is not given media it never had.
      const saved = await Deno.readTextFile(join(dir, "vm.json")).catch(() => null);
      const installed = await Deno.stat(record).then(() => true, () => false) ||
        (saved !== null && !("install" in JSON.parse(saved)));
      ctx.set(CONFIG, {
        name: vm.name,
        ...base,
        dir,
        record,
        installed,
        windows,
        password,
        tpm: vm.tpm.enabled,
        secureBoot: vm.firmware.type === "uefi" && vm.firmware.secure_boot,
      });
    },
    "read-install-image": async (ctx) => {
      const c = config(ctx);
      if (c.installed) return ctx.set(IMAGE, null);
      const iso = await resolveIso(ctx, c);
      const images = await readImages(
        ctx,
        iso,
        (why, hint) => bad(c, "iso", `Cannot read the Windows ISO "${iso}": ${why}`, hint),
      );
      let image: WimImage | null = null;
      if (images) {
        const chosen = chooseImage(images, c.windows.edition);
        if (typeof chosen === "string") {
          throw bad(
            c,
            "edition",
            `Cannot choose the edition to install: ${chosen}`,
            `Set [windows] edition to one of those indexes or names (gini windows editions ${iso})`,
          );
        }
        image = chosen;
      } else if (c.windows.edition === undefined) {
        ctx.ui.info(`The edition is read from ${basename(iso)} when the VM is deployed`);
      }
      const known = c.windows.version ?? (image ? profileOf(image) : null);
      // A plan does not run 7z (it is not a read-only query to the kernel): until the ISO is read
      // the plan shows a Windows 11 24H2 answer file, and checks what it can.
      const provisional = !known && !images && ctx.dryRun;
      const profile = known ?? (provisional ? "11-24h2" : null);
      if (!profile) {
        throw bad(
          c,
          "version",
          image
            ? `Cannot tell which Windows "${image.name}" is: its image gives no build Gini knows (${image.build})`
            : "Cannot tell which Windows the ISO holds before it is read",
          `Set [windows] version to one of 10, 11-23h2, 11-24h2, server-2022, server-2025`,
        );
      }
      const own = image?.defaultLanguage ?? image?.languages[0] ?? null;
      const language = c.windows.language ?? own ?? "en-US";
      if (image && !image.languages.some((l) => l.toLowerCase() === language.toLowerCase())) {
        throw bad(
          c,
          "language",
          `Cannot install "${image.name}" in ${language}: the image holds ${
            image.languages.join(", ") || "no language"
          } only`,
          own
            ? `Remove language from [windows] (Gini then uses ${own}), or use a ${language} ISO`
            : "Use an ISO of that language",
        );
      }
      if (
        !provisional && profile.startsWith("11-") && (!c.tpm || !c.secureBoot) &&
        !c.windows.bypass_checks
      ) {
        throw bad(
          c,
          "bypass_checks",
          `Cannot install Windows 11 without ${
            !c.tpm ? "a TPM 2.0" : "Secure Boot"
          }: Setup refuses ("This PC can't run Windows 11")`,
          '[tpm] enabled = true and [firmware] type = "uefi", secure_boot = true; or bypass_checks = true in [windows] to install without (Setup\'s LabConfig keys)',
        );
      }
      const problem = passwordProblem(c.password, c.windows.user, isServer(profile));
      if (problem && !provisional) {
        throw bad(
          c,
          "password_file",
          `Cannot use the password in "${c.windows.password_file}": ${problem}`,
          "Write a stronger password on its first line",
        );
      }
      ctx.set(IMAGE, { iso, image, profile, language });
    },
    "prepare-drivers": async (ctx) => {
      const c = config(ctx);
      const chosen = ctx.get(IMAGE);
      if (!chosen) return ctx.set(DRIVERS, null);
      const { profile } = chosen;
      const iso = await resolveDrivers(ctx, c);
      const listing = await listIso(
        ctx,
        iso,
        (why) =>
          bad(
            c,
            "drivers",
            `Cannot read the virtio-win ISO "${iso}": 7z says ${why}`,
            "Check the path, or use a catalogue release",
          ),
      );
      const folder = DRIVER_FOLDER[profile];
      const wanted = [...SETUP_DRIVERS, "viogpudo"].map((d) => `${d}/${folder}/amd64/`);
      const files = (listing?.files ?? []).filter((f) =>
        !f.folder && (wanted.some((w) => f.path.startsWith(w)) ||
          f.path === "guest-agent/qemu-ga-x86_64.msi")
      ).map((f) => f.path).sort();
      if (listing) {
        const missing = [...wanted, "guest-agent/qemu-ga-x86_64.msi"].filter((w) =>
          !files.some((f) => f.startsWith(w))
        );
        if (missing.length) {
          throw bad(
            c,
            "drivers",
            `Cannot use the virtio-win ISO "${iso}": it has no ${missing.join(", ")}`,
            `Use a virtio-win release with drivers for ${folder} (0.1.271 or later)`,
          );
        }
      }
      ctx.set(DRIVERS, { iso, files, type: listing?.type ?? [] });
    },
    "generate-answer-file": (ctx) => {
      const c = config(ctx);
      const chosen = ctx.get(IMAGE);
      if (!chosen) return ctx.set(ANSWER_FILE, null);
      const { image, profile, language } = chosen;
      const w = c.windows;
      const options = {
        profile,
        imageIndex: image?.index ?? (typeof w.edition === "number" ? w.edition : 1),
        language,
        user: w.user,
        password: c.password,
        productKey: w.product_key ?? null,
        timezone: w.timezone,
        computerName: w.computer_name ?? computerName(c.name),
        firstLogon: w.first_logon,
        bypassChecks: w.bypass_checks,
      };
      const text = buildAnswerFile(options);
      checkAnswerFile(text);
      const shown = text.replace(
        /<Value>[A-Za-z0-9+/=]+<\/Value>(\s*<PlainText>)/g,
        "<Value>(hidden)</Value>$1",
      );
      ctx.set(ANSWER_FILE, { text, shown });
    },
    "assemble-unattend-image": async (ctx) => {
      const c = config(ctx);
      const chosen = ctx.get(IMAGE);
      const drivers = ctx.get(DRIVERS);
      const answer = ctx.get(ANSWER_FILE);
      const img = join(c.dir, "unattend.img");
      const done = {
        record: c.record,
        prompt: BOOT_PROMPT,
        done: DONE_MARKER,
        timeoutMinutes: c.windows.install_timeout,
      };
      if (!chosen || !drivers || !answer) {
        ctx.set(WINDOWS_MEDIA, {
          installer: c.windows.iso,
          drivers: "",
          unattend: img,
          image: null,
          profile: c.windows.version ?? "",
          installed: true,
          ...done,
        });
        return;
      }
      const { iso: installer, image, profile } = chosen;
      const dir = join(c.dir, "windows");
      const stage = join(dir, "files");
      const xml = join(dir, "autounattend.xml");
      await ctx.op("fs.mkdir", { path: dir });
      await ctx.op("fs.write", { path: xml, content: answer.text, overwrite: true, mode: 0o600 });
      await ctx.op("fs.remove", { path: stage, recursive: true, missingOk: true });
      await ctx.op("fs.mkdir", { path: stage });
      if (drivers.files.length) {
        await ctx.op("run", {
          argv: ["7z", "x", "-y", ...drivers.type, `-o${stage}`, drivers.iso, ...drivers.files],
          creates: drivers.files.map((f) => join(stage, f)),
          timeoutMs: 10 * 60_000,
        });
      }
      const sizes = ctx.dryRun ? 0 : (await Promise.all(
        drivers.files.map((f) => Deno.stat(join(stage, f)).then((s) => s.size, () => 0)),
      )).reduce((a, b) => a + b, 0);
      const mtools = (...argv: string[]) =>
        ctx.op("run", {
          argv,
          modifies: [img],
          env: { MTOOLS_SKIP_CHECK: "1" },
          timeoutMs: 120_000,
        });
      // It holds the answer file, so it is made 0600 first and mformat (-C) keeps that mode.
      await ctx.op("fs.write", { path: img, content: "", overwrite: true, mode: 0o600 });
      await mtools(
        "mformat",
        "-C",
        "-i",
        img,
        "-T",
        String(imageSectors(sizes, drivers.files.length)),
        "-h",
        "64",
        "-s",
        "32",
        "-v",
        "GINI-WIN",
        "::",
      );
      await mtools("mcopy", "-i", img, xml, "::/autounattend.xml");
      await mtools("mmd", "-i", img, "::/$WinPEDriver$", "::/gini", "::/gini/viogpudo");
      const folder = DRIVER_FOLDER[profile];
      const present = new Set(drivers.files.map((f) => f.split("/")[0]!));
      const setupDrivers = SETUP_DRIVERS.filter((d) => ctx.dryRun || present.has(d));
      if (setupDrivers.length) {
        await mtools(
          "mcopy",
          "-s",
          "-Q",
          "-i",
          img,
          ...setupDrivers.map((d) => join(stage, d)),
          "::/$WinPEDriver$/",
        );
      }
      const gpu = drivers.files.filter((f) => f.startsWith(`viogpudo/${folder}/amd64/`));
      if (gpu.length) {
        await mtools(
          "mcopy",
          "-Q",
          "-i",
          img,
          ...gpu.map((f) => join(stage, f)),
          "::/gini/viogpudo/",
        );
      }
      if (drivers.files.includes("guest-agent/qemu-ga-x86_64.msi")) {
        await mtools(
          "mcopy",
          "-i",
          img,
          join(stage, "guest-agent/qemu-ga-x86_64.msi"),
          "::/gini/qemu-ga-x86_64.msi",
        );
      }
      ctx.ui.info(`The answer file for ${profile}:\n${answer.shown}`);
      ctx.set(WINDOWS_MEDIA, {
        installer,
        drivers: drivers.iso,
        unattend: img,
        image: image ? { index: image.index, name: image.name } : null,
        profile,
        installed: false,
        ...done,
      });
    },
    "list-editions": async (ctx) => {
      const { args: { iso } } = ctx.get(EDITIONS_COMMAND)!;
      const images = await readImages(
        ctx,
        iso,
        (why, hint) =>
          Object.assign(new Error(`Cannot read the Windows ISO "${iso}": ${why}`), {
            code: "USAGE",
            hint,
          }),
      );
      ctx.set(EDITIONS, { iso, images });
    },
  },
  commands: {
    "windows editions": {
      render(view) {
        const value = contextValue(view, EDITIONS)!;
        if (!value.images) return { text: view.plan, data: value as unknown as Json };
        const rows = value.images.map((i) =>
          `${String(i.index).padStart(3)}  ${i.name.padEnd(36)} ${(i.edition ?? "").padEnd(20)} ${
            i.languages.join(",")
          }${i.build ? `  build ${i.build}` : ""}${profileOf(i) ? `  (${profileOf(i)})` : ""}`
        );
        return {
          text: [
            `${"idx".padStart(3)}  ${"name".padEnd(36)} ${"edition".padEnd(20)} languages`,
            ...rows,
          ]
            .join("\n"),
          data: value as unknown as Json,
        };
      },
    } satisfies CommandDefinition,
  },
});
