/**
 * Fake upstreams for the macOS tests, on 127.0.0.1: a release server with zips laid out like
 * OpenCorePkg's and the kexts' releases (placeholder binaries, except BOOTx64.efi: a real GRUB
 * EFI program that prints a marker on the serial console), and a recovery server speaking
 * Apple's recovery protocol with chunklists signed by a key the test makes.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { zipSync } from "fflate";
import { sh } from "./_helpers.ts";
import { MAC_RELEASES } from "../plugins/opencore/releases.ts";

export const BOOT_MARKER = "GINI-OPENCORE-ESP-BOOTED";
const enc = new TextEncoder();
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** A standalone GRUB for x86_64 EFI that prints the marker (cached outside the repository). */
export async function grubEfi(): Promise<Uint8Array> {
  const dir = join(Deno.env.get("HOME") ?? "/tmp", ".cache/gini-test/grub-efi");
  const out = join(dir, "BOOTX64.EFI");
  try {
    return await Deno.readFile(out);
  } catch { /* build it */ }
  await Deno.mkdir(dir, { recursive: true });
  const cfg = join(dir, "grub.cfg");
  await Deno.writeTextFile(
    cfg,
    `serial --unit=0 --speed=115200\nterminal_output serial console\necho ${BOOT_MARKER}\nsleep 600\n`,
  );
  await sh(
    "grub-mkstandalone",
    "-O",
    "x86_64-efi",
    "--modules=serial terminal echo sleep",
    "--locales=",
    "--fonts=",
    "--themes=",
    "-o",
    out,
    `boot/grub/grub.cfg=${cfg}`,
  );
  return await Deno.readFile(out);
}

const plistStub = (name: string) =>
  enc.encode(
    `<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict><key>CFBundleIdentifier</key><string>as.vit9696.${name}</string></dict></plist>\n`,
  );

/** Zips shaped like the real releases. */
export async function releaseZips(): Promise<Record<string, Uint8Array>> {
  const placeholder = (what: string) => enc.encode(`placeholder for ${what}\n`);
  const oc: Record<string, Uint8Array> = {
    "X64/EFI/BOOT/BOOTx64.efi": await grubEfi(),
    "X64/EFI/OC/OpenCore.efi": placeholder("OpenCore.efi"),
    "Docs/Sample.plist": enc.encode("<plist/>\n"),
    "Utilities/macrecovery/macrecovery.py": placeholder("macrecovery.py"),
  };
  for (const d of ["OpenRuntime", "OpenHfsPlus", "OpenCanopy", "ResetNvramEntry"]) {
    oc[`X64/EFI/OC/Drivers/${d}.efi`] = placeholder(`${d}.efi`);
  }
  oc["X64/EFI/OC/Tools/OpenShell.efi"] = placeholder("OpenShell.efi");
  const kext = (prefix: string, name: string) => ({
    [`${prefix}${name}.kext/Contents/Info.plist`]: plistStub(name),
    [`${prefix}${name}.kext/Contents/MacOS/${name}`]: placeholder(name),
  });
  // A fixed time in the zip headers: the same zips every call, whatever second it is (the
  // catalogue pins their sha256, and a test may build them twice).
  const zip = (files: Record<string, Uint8Array>) =>
    zipSync(files, { mtime: new Date("2024-01-01T00:00:00Z") });
  return {
    OpenCorePkg: zip(oc),
    Lilu: zip(kext("", "Lilu")),
    VirtualSMC: zip({ ...kext("Kexts/", "VirtualSMC"), ...kext("Kexts/", "SMCProcessor") }),
    WhateverGreen: zip(kext("", "WhateverGreen")),
  };
}

/** Serves the zips; returns the catalogue pointing at them. */
export function releaseServer(zips: Record<string, Uint8Array>) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const name = new URL(req.url).pathname.replace(/^\/releases\/|\.zip$/g, "");
    const zip = zips[name];
    return zip
      ? new Response(zip as Uint8Array<ArrayBuffer>)
      : new Response("no such release", { status: 404 });
  });
  const url = (name: string) => `http://127.0.0.1:${server.addr.port}/releases/${name}.zip`;
  const catalogue = {
    opencore: {
      version: "1.0.7",
      url: url("OpenCorePkg"),
      sha256: sha(zips.OpenCorePkg!),
      files: {
        "X64/EFI/BOOT/BOOTx64.efi": "EFI/BOOT/BOOTx64.efi",
        "X64/EFI/OC/OpenCore.efi": "EFI/OC/OpenCore.efi",
        "X64/EFI/OC/Drivers/OpenRuntime.efi": "EFI/OC/Drivers/OpenRuntime.efi",
        "X64/EFI/OC/Drivers/OpenHfsPlus.efi": "EFI/OC/Drivers/OpenHfsPlus.efi",
        "X64/EFI/OC/Drivers/OpenCanopy.efi": "EFI/OC/Drivers/OpenCanopy.efi",
        "X64/EFI/OC/Drivers/ResetNvramEntry.efi": "EFI/OC/Drivers/ResetNvramEntry.efi",
        "X64/EFI/OC/Tools/OpenShell.efi": "EFI/OC/Tools/OpenShell.efi",
      },
    },
    kexts: [
      { name: "Lilu", version: "1.7.2", bundles: { "Lilu.kext": "Lilu.kext" } },
      {
        name: "VirtualSMC",
        version: "1.3.7",
        bundles: { "Kexts/VirtualSMC.kext": "VirtualSMC.kext" },
      },
      {
        name: "WhateverGreen",
        version: "1.7.0",
        bundles: { "WhateverGreen.kext": "WhateverGreen.kext" },
      },
    ].map((k) => ({
      ...k,
      url: url(k.name),
      sha256: sha(zips[k.name]!),
      contents: Object.fromEntries(
        Object.keys(k.bundles).map((from) => [from, [
          "Contents/Info.plist",
          `Contents/MacOS/${from.split("/").at(-1)!.replace(/\.kext$/, "")}`,
        ]]),
      ),
    })),
  };
  return { server, catalogue };
}

/** An RSA-2048 key for chunklists, with its modulus as hex. */
export async function chunklistKey(): Promise<{ key: CryptoKeyPair; modulus: string }> {
  const key = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  ) as CryptoKeyPair;
  const jwk = await crypto.subtle.exportKey("jwk", key.publicKey);
  const n = atob(jwk.n!.replaceAll("-", "+").replaceAll("_", "/"));
  const modulus = Array.from(n, (c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("");
  return { key, modulus };
}

/** A CNKL chunklist of `image` in chunks of `chunk` bytes, signed with `key`. */
export async function makeChunklist(
  image: Uint8Array,
  chunk: number,
  key: CryptoKeyPair,
): Promise<Uint8Array> {
  const count = Math.ceil(image.byteLength / chunk);
  const body = new Uint8Array(0x24 + 0x24 * count);
  const view = new DataView(body.buffer);
  body.set(enc.encode("CNKL"), 0);
  view.setUint32(4, 0x24, true);
  body[8] = 1;
  body[9] = 1;
  body[10] = 1;
  view.setBigUint64(12, BigInt(count), true);
  view.setBigUint64(20, 0x24n, true);
  view.setBigUint64(28, BigInt(0x24 + 0x24 * count), true);
  for (let i = 0; i < count; i++) {
    const part = image.subarray(i * chunk, (i + 1) * chunk);
    view.setUint32(0x24 + i * 0x24, part.byteLength, true);
    body.set(createHash("sha256").update(part).digest(), 0x24 + i * 0x24 + 4);
  }
  const signature = new Uint8Array(
    await crypto.subtle.sign("RSASSA-PKCS1-v1_5", key.privateKey, body),
  ).reverse(); // stored little-endian
  const out = new Uint8Array(body.byteLength + 256);
  out.set(body);
  out.set(signature, body.byteLength);
  return out;
}

/** What the recovery server does wrong, for one test. */
export interface RecoveryFaults {
  /** Serve an image with one byte changed in its second chunk. */
  corruptChunk?: boolean;
  /** Sign the chunklist with this key instead. */
  wrongKey?: CryptoKeyPair;
  /** Cut the first image response after 1 MiB. */
  cutFirst?: boolean;
}

/** Apple's recovery protocol, for one image, on 127.0.0.1. */
export async function recoveryServer(
  image: Uint8Array,
  key: CryptoKeyPair,
  boards: string[],
  faults: RecoveryFaults = {},
) {
  const served = faults.corruptChunk ? image.slice() : image;
  if (faults.corruptChunk) served[1024 * 1024 + 7]! ^= 0xff;
  const chunklist = await makeChunklist(image, 1024 * 1024, faults.wrongKey ?? key);
  const log: { path: string; range: string | null; cookie: string | null }[] = [];
  let imageRequests = 0;
  const server: Deno.HttpServer<Deno.NetAddr> = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
  }, async (req) => {
    const url = new URL(req.url);
    const cookie = req.headers.get("cookie");
    log.push({ path: url.pathname, range: req.headers.get("range"), cookie });
    if (url.pathname === "/" && req.method === "GET") {
      return new Response("", { headers: { "set-cookie": "session=fake-session-42; Path=/" } });
    }
    if (url.pathname === "/InstallationPayload/RecoveryImage" && req.method === "POST") {
      if (cookie !== "session=fake-session-42") return new Response("no session", { status: 403 });
      const form = Object.fromEntries(
        (await req.text()).split("\n").map((l) => l.split("=") as [string, string]),
      );
      if (!boards.includes(form.bid ?? "") || !form.cid || !form.k || !form.fg) {
        return new Response("unknown board", { status: 404 });
      }
      const base = `http://127.0.0.1:${server.addr.port}/content/${form.bid}`;
      return new Response(
        [
          `AP: 041-${form.bid}`,
          `AU: ${base}/BaseSystem.dmg`,
          "AH: 0000",
          "AT: image-token",
          `CU: ${base}/BaseSystem.chunklist`,
          "CH: 0000",
          "CT: chunklist-token",
          "",
        ].join("\n"),
      );
    }
    if (url.pathname.endsWith("/BaseSystem.chunklist")) {
      if (cookie !== "AssetToken=chunklist-token") return new Response("", { status: 403 });
      return new Response(chunklist as Uint8Array<ArrayBuffer>);
    }
    if (url.pathname.endsWith("/BaseSystem.dmg")) {
      if (cookie !== "AssetToken=image-token") return new Response("", { status: 403 });
      imageRequests++;
      const range = req.headers.get("range")?.match(/^bytes=(\d+)-$/);
      const start = range ? Number(range[1]) : 0;
      const body = served.subarray(start);
      if (faults.cutFirst && imageRequests === 1) {
        // The connection breaks once the first MiB has been handed to the server (and had time
        // to reach the client), however slow the machine is.
        let sent = false;
        const stream = new ReadableStream<Uint8Array>({
          async pull(controller) {
            if (!sent) {
              sent = true;
              controller.enqueue(body.subarray(0, 1024 * 1024));
              return;
            }
            await new Promise((r) => setTimeout(r, 200));
            controller.error(new Error("cut"));
          },
        }, { highWaterMark: 0 });
        return new Response(stream, { headers: { "content-length": String(body.byteLength) } });
      }
      return new Response(body as Uint8Array<ArrayBuffer>, {
        status: range ? 206 : 200,
        headers: range
          ? { "content-range": `bytes ${start}-${served.byteLength - 1}/${served.byteLength}` }
          : {},
      });
    }
    return new Response("not found", { status: 404 });
  });
  return { server, log, base: `http://127.0.0.1:${server.addr.port}` };
}

/** A deterministic 3 MiB + 123 B "recovery image" (its last chunk is short). */
export function recoveryImage(): Uint8Array {
  const image = new Uint8Array(3 * 1024 * 1024 + 123);
  for (let i = 0; i < image.length; i++) image[i] = (i * 2654435761) >>> 24;
  return image;
}

let shared:
  | Promise<{ key: Awaited<ReturnType<typeof chunklistKey>>; zips: Record<string, Uint8Array> }>
  | undefined;

/**
 * A home whose opencore.json and macos.toml point at fresh fakes, with the macOS VM files
 * mac.toml and mac2.toml. The signing key and the zips are made once per process.
 */
export async function macHome(
  faults: RecoveryFaults = {},
  options: {
    version?: string;
    catalogue?: (c: ReturnType<typeof releaseServer>["catalogue"]) => void;
  } = {},
) {
  const home = await Deno.makeTempDir({ prefix: "gini-macos-" });
  const { key, zips } = await (shared ??= (async () => ({
    key: await chunklistKey(),
    zips: await releaseZips(),
  }))());
  const releases = releaseServer(zips);
  options.catalogue?.(releases.catalogue);
  const recovery = await recoveryServer(recoveryImage(), key.key, [
    MAC_RELEASES.find((r) => r.name === "monterey")!.boardId,
  ], faults);
  const config = join(home, ".config/gini");
  await Deno.mkdir(config, { recursive: true });
  await Deno.writeTextFile(join(config, "opencore.json"), JSON.stringify(releases.catalogue));
  await Deno.writeTextFile(
    join(config, "macos.toml"),
    `[recovery]\nserver = "${recovery.base}"\nkeys = ["${key.modulus}"]\n`,
  );
  const vm = (name: string) =>
    `name = "${name}"\nguest = "macos"\naccel = "tcg"\n[cpu]\ncores = 2\n[memory]\nsize = "1G"\n[[disks]]\nname = "macos"\nsize = "1G"\n[macos]\nversion = "${
      options.version ?? "monterey"
    }"\nresolution = "1280x800"\n`;
  await Deno.writeTextFile(join(home, "mac.toml"), vm("mac"));
  await Deno.writeTextFile(join(home, "mac2.toml"), vm("mac2"));
  const close = async () => {
    await releases.server.shutdown();
    await recovery.server.shutdown();
  };
  return { home, recovery, close, vmDir: join(home, ".local/share/gini/vms/mac") };
}
