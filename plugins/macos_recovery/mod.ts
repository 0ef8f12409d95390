/**
 * macos-recovery: `prepare` fetches and verifies the recovery image of a macOS VM's release.
 *
 * The protocol (as OpenCorePkg's macrecovery documents it): GET the server's root for a
 * `session` cookie; POST `InstallationPayload/RecoveryImage` with `cid`, `sn` (MLB), `bid`
 * (board-id), `k`, `fg` and `os`; the answer's `AU`/`AT` are the image URL and its AssetToken,
 * `CU`/`CT` those of the chunklist. Both are downloaded (resumable, with progress) with the
 * token as a cookie, the chunklist's signature and every chunk are verified, and the image is
 * converted to raw once per release under `<cache-dir>/macos/<release>/`.
 *
 * @module
 */
import { join } from "../../workers/path.ts";
import { definePlugin, runtimeValue, type StageContext, stageError } from "../../workers/sdk.ts";
import { VM_CONFIG } from "../qemu_setup/keys.ts";
import { findRelease, MAC_RELEASES, type MacRelease } from "../opencore/releases.ts";
import { machineId, vmSeed } from "../opencore/vm_seed.ts";
import { parseImageInfo, recoveryBody } from "./_recovery_request.ts";
import { APPLE_CDN, APPLE_SERVER, macosSettings } from "./_settings.ts";
import { MACOS_RECOVERY, type RecoveryImage } from "./contracts.ts";
import keys from "./keys.json" with { type: "json" };

async function exists(ctx: StageContext, path: string): Promise<boolean> {
  try {
    await ctx.host.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Opens a session with the recovery server; returns its `session` cookie. */
async function openSession(ctx: StageContext, server: string): Promise<string> {
  const session = await ctx.op<{ status: number; cookies: string[] }>("http.request", {
    url: `${server}/`,
    headers: { "User-Agent": "InternetRecovery/1.0" },
    label: `Open a recovery session with ${server}`,
  });
  const cookie = ctx.dryRun
    ? `session=${runtimeValue(`the session cookie from ${server}`)}`
    : session.cookies.map((c) => c.split(";")[0]!).find((c) => c.startsWith("session="));
  if (!cookie) {
    throw stageError(
      `Cannot start a recovery session: ${server} answered ${session.status} without a session cookie`,
      "Try again later; Apple's recovery server may be busy",
      "RECOVERY_FAILED",
    );
  }
  return cookie;
}

/** Asks the server for the release's image; returns the answer's AP, AU, AT, CU and CT. */
async function askForImage(
  ctx: StageContext,
  server: string,
  cookie: string,
  release: MacRelease,
  vm: string,
): Promise<Record<string, string>> {
  const machine = await machineId(ctx);
  const body = recoveryBody(release, machine ? vmSeed(machine, ctx.dirs.data, vm) : null);
  const answer = await ctx.op<{ status: number; text: string }>("http.request", {
    url: `${server}/InstallationPayload/RecoveryImage`,
    method: "POST",
    headers: {
      "User-Agent": "InternetRecovery/1.0",
      "Cookie": cookie,
      "Content-Type": "text/plain",
    },
    body,
    label: `Ask ${server} for the ${release.title} recovery image (board-id ${release.boardId})`,
  });
  if (ctx.dryRun) {
    // A dry run has no answer: its values are marked as known at run time. A URL's host is
    // checked against the download grant even in a plan, so only its path is marked: Apple's
    // server sends its images from its CDN, a mirror from itself.
    const answered = (what: string) => runtimeValue(`${what}, from the answer of ${server}`);
    const from = server === APPLE_SERVER ? APPLE_CDN : server;
    return {
      AP: release.title,
      AU: `${from}/${answered("the image's path")}`,
      AT: answered("the image's AssetToken"),
      CU: `${from}/${answered("the chunklist's path")}`,
      CT: answered("the chunklist's AssetToken"),
    };
  }
  if (answer.status !== 200) {
    throw stageError(
      `Cannot get the ${release.title} recovery image: ${server} answered ${answer.status} for board-id ${release.boardId}`,
      "The server does not offer this release for that board; check gini macos versions",
      "RECOVERY_FAILED",
    );
  }
  const info = parseImageInfo(answer.text);
  const missing = ["AP", "AU", "AT", "CU", "CT"].filter((k) => !info[k]);
  if (missing.length) {
    throw stageError(
      `Cannot use the recovery server's answer: it lacks ${missing.join(", ")}`,
      "The protocol may have changed; report it with the answer from gini -v",
      "RECOVERY_FAILED",
    );
  }
  return info;
}

/** Downloads the image and its chunklist and verifies every chunk; returns the image's path. */
async function downloadVerified(
  ctx: StageContext,
  release: MacRelease,
  info: Record<string, string>,
  extraKeys: string[],
): Promise<string> {
  const image = await ctx.op<{ path: string }>("download", {
    url: info.AU!,
    cookie: `AssetToken=${info.AT}`,
    label: `Downloading the ${release.title} recovery image`,
  });
  const chunklist = await ctx.op<{ path: string }>("download", {
    url: info.CU!,
    cookie: `AssetToken=${info.CT}`,
    label: `Downloading its chunklist`,
  });
  // A dry run has no downloaded files yet: they will be in the cache under their sha256.
  const cached = (what: string) =>
    join(ctx.dirs.cache, "downloads", `sha256-${runtimeValue(`the sha256 of ${what}`)}`);
  const dmg = ctx.dryRun ? cached("the recovery image") : image.path;
  const cnkl = ctx.dryRun ? cached("its chunklist") : chunklist.path;
  await ctx.op("chunklist.verify", {
    image: dmg,
    chunklist: cnkl,
    keys: [...keys.keys, ...extraKeys],
  });
  return dmg;
}

async function prepare(ctx: StageContext, release: MacRelease, vm: string): Promise<RecoveryImage> {
  const settings = await macosSettings(ctx);
  const server = settings.recovery.server;
  const dir = join(ctx.dirs.cache, "macos", release.name);
  const raw = join(dir, "BaseSystem.img");
  if (await exists(ctx, raw)) {
    const { size } = await ctx.host.stat(raw);
    ctx.ui.info(`${release.title}: using the verified recovery image in ${raw}`);
    return { path: raw, sizeBytes: size, release: release.name, cached: true };
  }
  const cookie = await openSession(ctx, server);
  const info = await askForImage(ctx, server, cookie, release, vm);
  ctx.ui.info(`${release.title}: recovery product ${info.AP}`);
  const dmg = await downloadVerified(ctx, release, info, settings.recovery.keys);
  await ctx.op("fs.mkdir", { path: dir });
  await ctx.op("run", {
    argv: ["qemu-img", "convert", "-O", "raw", dmg, raw],
    creates: [raw],
    timeoutMs: 3_600_000,
  });
  const sizeBytes = ctx.dryRun ? null : (await ctx.host.stat(raw)).size;
  return { path: raw, sizeBytes, release: release.name, cached: false };
}

export default definePlugin({
  stages: {
    async prepare(ctx) {
      const config = ctx.get(VM_CONFIG)!;
      if (config.guest !== "macos" || !config.macos) return ctx.set(MACOS_RECOVERY, null);
      const release = findRelease(config.macos.version);
      if (!release) {
        throw stageError(
          `Cannot download macOS "${config.macos.version}": not a release Gini knows`,
          `Known: ${MAC_RELEASES.map((r) => r.name).join(", ")}`,
          "CONFIG_INVALID",
        );
      }
      ctx.set(MACOS_RECOVERY, await prepare(ctx, release, config.name));
    },
  },
});
