/**
 * Installing, upgrading, approving and removing third-party plugins. Each step first reads and
 * checks everything (download, hash, pin, signature, manifest, module imports, the difference in
 * grants) into a {@linkcode Proposal} the CLI shows; only an approved proposal is committed: the
 * package stored read-only under its sha256, then `plugins.lock` replaced in one rename.
 *
 * @module
 */
import { dirname, isAbsolute, join, resolve } from "../../workers/path.ts";
import * as semver from "semver";
import { ConfigError, GiniError, UsageError } from "../errors.ts";
import type { StartupEnv } from "../paths.ts";
import { fromFileUrl, toFileUrl } from "../url.ts";
import type { OpEnv } from "../ops/types.ts";
import { downloadOp } from "../ops/download.ts";
import { sha256Hex } from "../ops/_fs.ts";
import { CORE_PLUGIN_DIR, discoverPlugins } from "./discover.ts";
import type { Manifest } from "./manifest.ts";
import { type PluginPackage, readPackage } from "./package.ts";
import { handPlacedFolders, lockPath, type PluginFolder, storedPackage } from "./installed.ts";
import {
  describeGrants,
  type GrantLine,
  type GrantSet,
  grantsOf,
  keyFingerprint,
  type LockEntry,
  type LockFile,
  parseSignature,
  readLock,
  verifySignature,
  widerGrants,
  writeLock,
} from "./trust.ts";

/** Raised when a package may not be installed or upgraded as asked. */
export class InstallError extends GiniError {
  constructor(message: string, hint: string) {
    super("PLUGIN_INSTALL_REFUSED", message, 1, { hint });
    this.name = "InstallError";
  }
}

/** What an install, upgrade or approve would do, for the user to approve. */
export interface Proposal {
  action: "install" | "upgrade" | "approve";
  name: string;
  version: string;
  /** The version installed now (upgrade). */
  from?: string;
  source: string;
  sha256: string;
  signer?: string;
  grants: GrantSet;
  /** Plain-word lines: what the plugin may do (risky ones marked). */
  summary: GrantLine[];
  /** For an upgrade, what it may do that the installed version may not; approval needed if any. */
  wider: GrantLine[];
  /** Notes the user should see (unsigned, signed for the first time…). */
  warnings: string[];
  /** Does the user have to say yes? */
  needsApproval: boolean;
  /** What committing writes. */
  entry: LockEntry;
  bytes?: Uint8Array;
}

/** The URL of a source given as a URL or a path, and how it is recorded. */
export function sourceOf(source: string, cwd: string): { url: URL; recorded: string } {
  if (/^https?:\/\//.test(source) || source.startsWith("file://")) {
    return { url: new URL(source), recorded: source };
  }
  const path = isAbsolute(source) ? source : resolve(cwd, source);
  return { url: toFileUrl(path), recorded: path };
}

/** Fetches a package through the kernel's download op (verified against `pin`, resumable). */
async function fetchPackage(url: URL, pin: string | undefined, opEnv: OpEnv): Promise<Uint8Array> {
  const args = {
    url: url.href,
    label: `plugin package ${url.href}`,
    ...(pin ? { sha256: pin } : {}),
  };
  const got = await downloadOp.execute(args, opEnv, { cached: false }) as { path: string };
  return await Deno.readFile(got.path);
}

/** The detached signature next to the package (`<url>.sig`), if there is one. */
async function fetchSignature(url: URL): Promise<{ text: string; file: string } | undefined> {
  const sigUrl = new URL(`${url.href}.sig`);
  if (sigUrl.protocol === "file:") {
    try {
      return { text: await Deno.readTextFile(sigUrl), file: fromFileUrl(sigUrl) };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
  }
  const response = await fetch(sigUrl, { signal: AbortSignal.timeout(30_000) });
  if (response.status === 404) {
    await response.body?.cancel();
    return undefined;
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new InstallError(
      `Cannot read the signature ${sigUrl.href}: the server answered ${response.status}`,
      "Try again, or ask the publisher why the .sig is unavailable",
    );
  }
  const text = await response.text();
  if (text.length > 4096) {
    throw new InstallError(
      `Cannot read the signature ${sigUrl.href}: it is too long`,
      "A .sig is a small JSON file",
    );
  }
  return { text, file: sigUrl.href };
}

/** Checks the signature, if any: the public key it names, or nothing for an unsigned package. */
async function signerOf(url: URL, bytes: Uint8Array): Promise<string | undefined> {
  const sig = await fetchSignature(url);
  if (!sig) return undefined;
  const parsed = parseSignature(sig.text, sig.file);
  if (!await verifySignature(bytes, parsed)) {
    throw new InstallError(
      `Cannot install ${url.href}: its signature ${sig.file} does not match the package (key ${
        keyFingerprint(parsed.key)
      })`,
      "The package or its signature was changed after signing; do not install it. Ask the publisher",
    );
  }
  return parsed.key;
}

/** Refuses a name a core plugin (or an author's --plugin-dir plugin) already has. */
async function checkFreeName(name: string): Promise<void> {
  const core = await discoverPlugins([{ dir: CORE_PLUGIN_DIR, origin: "core" }]);
  if (core.manifests.some((m) => m.plugin.name === name)) {
    throw new InstallError(
      `Cannot install plugin "${name}": a plugin shipped with Gini has that name`,
      "Ask the publisher to rename it",
    );
  }
}

interface Fetched {
  pkg: PluginPackage;
  bytes: Uint8Array;
  recorded: string;
  signer: string | undefined;
}

async function fetchAndRead(
  source: string,
  pin: string | undefined,
  opEnv: OpEnv,
  cwd: string,
): Promise<Fetched> {
  if (pin !== undefined && !/^[0-9a-f]{64}$/.test(pin)) {
    throw new UsageError(`Cannot use --sha256 "${pin}": expected 64 lowercase hex digits`, {
      hint: "Copy the sha256 the publisher gives (sha256sum NAME.zip)",
    });
  }
  const { url, recorded } = sourceOf(source, cwd);
  const bytes = await fetchPackage(url, pin, opEnv);
  const pkg = await readPackage(bytes, recorded);
  return { pkg, bytes, recorded, signer: await signerOf(url, bytes) };
}

function lockEntry(fetched: Fetched, kind: LockEntry["kind"]): LockEntry {
  const m = fetched.pkg.manifest;
  return {
    name: m.plugin.name,
    version: m.plugin.version,
    source: fetched.recorded,
    kind,
    sha256: fetched.pkg.sha256,
    entry_sha256: fetched.pkg.entrySha256,
    grants: grantsOf(m),
    ...(fetched.signer ? { signer: fetched.signer } : {}),
    approved_at: new Date().toISOString(),
  };
}

/** Reads and checks a package to install; nothing is written. */
export async function proposeInstall(
  source: string,
  options: { pin?: string; env: StartupEnv; opEnv: OpEnv; cwd: string },
): Promise<Proposal> {
  const fetched = await fetchAndRead(source, options.pin, options.opEnv, options.cwd);
  const m = fetched.pkg.manifest;
  const lock = await readLock(lockPath(options.env));
  const existing = lock.plugins[m.plugin.name];
  if (existing) {
    throw new InstallError(
      `Cannot install plugin "${m.plugin.name}": version ${existing.version} is installed (from ${existing.source})`,
      `Run "gini plugins upgrade ${m.plugin.name} ${source}" to replace it`,
    );
  }
  await checkFreeName(m.plugin.name);
  const entry = lockEntry(fetched, "package");
  return {
    action: "install",
    name: m.plugin.name,
    version: m.plugin.version,
    source: fetched.recorded,
    sha256: entry.sha256,
    ...(entry.signer ? { signer: entry.signer } : {}),
    grants: entry.grants,
    summary: describeGrants(entry.grants),
    wider: [],
    warnings: fetched.signer ? [] : [
      `The package is not signed: nothing shows who built it. Check its sha256 (${entry.sha256}) with the publisher`,
    ],
    needsApproval: true,
    entry,
    bytes: fetched.bytes,
  };
}

/** Why an upgrade's signer is refused, if it is. */
function signerProblem(name: string, before: LockEntry, signer: string | undefined) {
  if (!before.signer) return undefined;
  if (!signer) {
    return `the installed version is signed (key ${
      keyFingerprint(before.signer)
    }) and this package is not`;
  }
  if (signer !== before.signer) {
    return `it is signed by key ${
      keyFingerprint(signer)
    }, not by the key pinned when "${name}" was installed (${keyFingerprint(before.signer)})`;
  }
  return undefined;
}

/** Reads and checks an upgrade: version, signer and the difference in grants. */
export async function proposeUpgrade(
  name: string,
  source: string | undefined,
  options: { pin?: string; env: StartupEnv; opEnv: OpEnv; cwd: string; allowDowngrade?: boolean },
): Promise<Proposal> {
  const lock = await readLock(lockPath(options.env));
  const before = lock.plugins[name];
  if (!before || before.kind !== "package") {
    throw new InstallError(
      `Cannot upgrade plugin "${name}": it is not an installed package`,
      before
        ? `Plugin "${name}" is a folder; edit it and run "gini plugins approve ${name}"`
        : 'See "gini plugins list"',
    );
  }
  const fetched = await fetchAndRead(
    source ?? before.source,
    options.pin,
    options.opEnv,
    options.cwd,
  );
  const m = fetched.pkg.manifest;
  if (m.plugin.name !== name) {
    throw new InstallError(
      `Cannot upgrade plugin "${name}" with ${fetched.recorded}: that package is plugin "${m.plugin.name}"`,
      "Check the URL",
    );
  }
  if (semver.lt(m.plugin.version, before.version) && !options.allowDowngrade) {
    throw new InstallError(
      `Cannot upgrade plugin "${name}" from ${before.version} to ${m.plugin.version}: that is a downgrade`,
      "Pass --allow-downgrade if you mean to go back to the older version",
    );
  }
  const refused = signerProblem(name, before, fetched.signer);
  if (refused) {
    throw new InstallError(
      `Cannot upgrade plugin "${name}": ${refused}`,
      `If the publisher really changed keys, run "gini plugins remove ${name}" and install it again, checking the new key with them`,
    );
  }
  const entry = lockEntry(fetched, "package");
  const wider = widerGrants(before.grants, entry.grants);
  const warnings = fetched.signer ? [] : ["The package is not signed"];
  if (fetched.signer && !before.signer) {
    warnings.push(
      `The package is now signed, by key ${
        keyFingerprint(fetched.signer)
      }: it is pinned from now on`,
    );
  }
  return {
    action: "upgrade",
    name,
    version: m.plugin.version,
    from: before.version,
    source: fetched.recorded,
    sha256: entry.sha256,
    ...(entry.signer ? { signer: entry.signer } : {}),
    grants: entry.grants,
    summary: describeGrants(entry.grants),
    wider,
    warnings,
    needsApproval: wider.length > 0,
    entry,
    bytes: fetched.bytes,
  };
}

/** Reads a hand-placed folder to approve. */
export async function proposeApprove(
  name: string,
  env: StartupEnv,
  systemDir?: string,
): Promise<Proposal> {
  const folders = await handPlacedFolders(env, systemDir);
  const folder = folders.find((f) => f.manifest?.plugin.name === name) ??
    folders.find((f) => f.dir.split("/").pop() === name);
  if (!folder) {
    throw new InstallError(
      `Cannot approve plugin "${name}": no plugin folder of that name in ${
        join(env.dirs.data, "plugins")
      } or the system's plugin folder`,
      'See "gini plugins list" for the plugins not approved',
    );
  }
  if (folder.problem) {
    throw new InstallError(
      `Cannot approve plugin "${name}" in ${folder.dir}: ${folder.problem}`,
      "A hand-placed plugin is a folder with plugin.toml and one bundled module (gini plugins bundle, then unzip)",
    );
  }
  const lock = await readLock(lockPath(env));
  const before = lock.plugins[name];
  if (before && before.kind === "package") {
    throw new InstallError(
      `Cannot approve the folder ${folder.dir}: an installed package is named "${name}"`,
      `Remove one of them ("gini plugins remove ${name}")`,
    );
  }
  await checkFreeName(name);
  const entry = folderEntry(folder);
  return {
    action: "approve",
    name,
    version: entry.version,
    ...(before ? { from: before.version } : {}),
    source: folder.dir,
    sha256: entry.sha256,
    grants: entry.grants,
    summary: describeGrants(entry.grants),
    wider: before ? widerGrants(before.grants, entry.grants) : [],
    warnings: [],
    needsApproval: true,
    entry,
  };
}

function folderEntry(folder: PluginFolder): LockEntry {
  const m = folder.manifest as Manifest;
  return {
    name: m.plugin.name,
    version: m.plugin.version,
    source: folder.dir,
    kind: "folder",
    sha256: folder.sha256!,
    entry_sha256: folder.entrySha256!,
    grants: grantsOf(m),
    approved_at: new Date().toISOString(),
  };
}

/** Writes `bytes` to `path` in one rename, read-only. */
async function writeReadOnly(path: string, bytes: Uint8Array): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${Deno.pid}.tmp`;
  await Deno.writeFile(temp, bytes, { mode: 0o444 });
  await Deno.chmod(temp, 0o444);
  await Deno.rename(temp, path);
}

/** Commits an approved proposal: the package stored, then the lock replaced. */
export async function commit(proposal: Proposal, env: StartupEnv): Promise<void> {
  const path = lockPath(env);
  const lock = await readLock(path);
  const before = lock.plugins[proposal.name];
  if (proposal.bytes) {
    const stored = storedPackage(env, proposal.entry.sha256);
    if (await sha256Hex(proposal.bytes) !== proposal.entry.sha256) {
      throw new InstallError("The package changed in memory before it was stored", "Try again");
    }
    await writeReadOnly(stored, proposal.bytes);
  }
  const next: LockFile = { ...lock, plugins: { ...lock.plugins, [proposal.name]: proposal.entry } };
  await writeLock(path, next);
  if (before?.kind === "package" && before.sha256 !== proposal.entry.sha256) {
    await removeStored(env, before.sha256, next);
  }
}

/** Deletes a stored package no lock entry uses any more. */
async function removeStored(env: StartupEnv, sha256: string, lock: LockFile): Promise<void> {
  if (Object.values(lock.plugins).some((e) => e.kind === "package" && e.sha256 === sha256)) return;
  await Deno.remove(storedPackage(env, sha256)).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
}

/** Removes a plugin from the lock (and its stored package); a folder stays on disk. */
export async function removePlugin(name: string, env: StartupEnv): Promise<LockEntry> {
  const path = lockPath(env);
  const lock = await readLock(path);
  const entry = lock.plugins[name];
  if (!entry) {
    const known = Object.keys(lock.plugins);
    throw new ConfigError(`Cannot remove plugin "${name}": it is not in ${path}`, {
      location: { file: path, key: `plugins.${name}` },
      hint: known.length ? `Installed: ${known.join(", ")}` : "No plugin is installed",
    });
  }
  const plugins = { ...lock.plugins };
  delete plugins[name];
  const next = { ...lock, plugins };
  await writeLock(path, next);
  if (entry.kind === "package") await removeStored(env, entry.sha256, next);
  return entry;
}
