/**
 * Stand-ins for the media of a Windows installation, built with the real tools: a UDF Windows ISO
 * holding a WIM wimlib-imagex made (optionally bootable through an EFI El Torito image), and a
 * virtio-win ISO laid out like Fedora's.
 *
 * @module
 */
import { join } from "node:path";
import { sh } from "./_helpers.ts";

/** One image of the test WIM and the properties wimlib writes into its XML. */
export type TestImage = {
  name: string;
  edition: string;
  build: number;
  type?: "Client" | "Server";
  language?: string;
};

/** A WIM at `path` with one image per entry (each a capture of a tiny folder). */
export async function buildWim(dir: string, path: string, images: TestImage[]): Promise<void> {
  const tree = join(dir, "wim-tree");
  await Deno.mkdir(join(tree, "Windows/System32"), { recursive: true });
  await Deno.writeTextFile(join(tree, "Windows/System32/hello.txt"), "hello\n");
  for (const [i, image] of images.entries()) {
    const properties = [
      `WINDOWS/ARCH=9`,
      `WINDOWS/EDITIONID=${image.edition}`,
      `WINDOWS/INSTALLATIONTYPE=${image.type ?? "Client"}`,
      `WINDOWS/LANGUAGES/LANGUAGE=${image.language ?? "en-US"}`,
      `WINDOWS/LANGUAGES/DEFAULT=${image.language ?? "en-US"}`,
      `WINDOWS/VERSION/MAJOR=10`,
      `WINDOWS/VERSION/MINOR=0`,
      `WINDOWS/VERSION/BUILD=${image.build}`,
      `DISPLAYNAME=${image.name}`,
    ].flatMap((p) => ["--image-property", p]);
    await sh(
      "wimlib-imagex",
      i === 0 ? "capture" : "append",
      tree,
      path,
      image.name,
      `${image.name} (test)`,
      `--flags=${image.edition}`,
      ...properties,
    );
  }
}

/**
 * Removes every entry but README.TXT from the root directory of an ISO's ISO 9660 view (the UDF
 * view keeps them), which is how Microsoft's ISOs look to a reader without UDF.
 */
export async function hideFromIso9660(iso: string): Promise<void> {
  const file = await Deno.open(iso, { read: true, write: true });
  try {
    const read = async (offset: number, length: number) => {
      await file.seek(offset, Deno.SeekMode.Start);
      const buffer = new Uint8Array(length);
      let got = 0;
      while (got < length) got += (await file.read(buffer.subarray(got)))!;
      return buffer;
    };
    const pvd = await read(16 * 2048, 2048);
    const view = new DataView(pvd.buffer);
    const rootLba = view.getUint32(156 + 2, true);
    const rootSize = view.getUint32(156 + 10, true);
    const dir = await read(rootLba * 2048, rootSize);
    const kept = new Uint8Array(rootSize);
    let out = 0;
    for (let at = 0; at < rootSize && dir[at]! > 0;) {
      const length = dir[at]!;
      const nameLength = dir[at + 32]!;
      const name = new TextDecoder().decode(dir.subarray(at + 33, at + 33 + nameLength));
      if (name === "\0" || name === "\x01" || name.startsWith("README.TXT")) {
        kept.set(dir.subarray(at, at + length), out);
        out += length;
      }
      at += length;
    }
    await file.seek(rootLba * 2048, Deno.SeekMode.Start);
    await file.write(kept);
  } finally {
    file.close();
  }
}

/**
 * A UDF Windows ISO holding `sources/install.wim` with `images`. Without `boot` it is UDF only
 * (its ISO 9660 view holds README.TXT alone, as Microsoft's); with `boot` (a FAT image) it also
 * boots on UEFI through El Torito, its `files` (name → text) in the tree.
 */
export async function buildWindowsIso(
  dir: string,
  images: TestImage[],
  boot?: { image: string; files: Record<string, string> },
): Promise<string> {
  const tree = join(dir, "iso-tree");
  await Deno.mkdir(join(tree, "sources"), { recursive: true });
  await Deno.writeTextFile(
    join(tree, "README.TXT"),
    'This disc contains a "UDF" file system and requires an operating system that supports the ISO-13346 "UDF" file system specification.\r\n',
  );
  await buildWim(dir, join(tree, "sources/install.wim"), images);
  const iso = join(dir, "windows.iso");
  if (!boot) {
    await sh("genisoimage", "-quiet", "-udf", "-V", "CCCOMA_X64FRE_EN-US_DV9", "-o", iso, tree);
    await hideFromIso9660(iso);
    return iso;
  }
  await Deno.copyFile(boot.image, join(tree, "efiboot.img"));
  for (const [name, text] of Object.entries(boot.files)) {
    await Deno.mkdir(join(tree, name, ".."), { recursive: true });
    await Deno.writeTextFile(join(tree, name), text);
  }
  await sh(
    "genisoimage",
    "-quiet",
    "-udf",
    "-V",
    "CCCOMA_X64FRE_EN-US_DV9",
    "-e",
    "efiboot.img",
    "-no-emul-boot",
    "-o",
    iso,
    tree,
  );
  return iso;
}

/** The drivers a test virtio-win ISO carries, for each of these OS folders. */
export const DRIVERS = [
  "viostor",
  "vioscsi",
  "NetKVM",
  "vioinput",
  "viorng",
  "Balloon",
  "vioserial",
  "viogpudo",
];
export const OS_FOLDERS = ["w10", "w11", "2k22", "2k25"];

/** A virtio-win ISO laid out like Fedora's, with small stand-in files. */
export async function buildVirtioIso(dir: string): Promise<string> {
  const tree = join(dir, "virtio-tree");
  for (const driver of DRIVERS) {
    for (const os of OS_FOLDERS) {
      const folder = join(tree, driver, os, "amd64");
      await Deno.mkdir(folder, { recursive: true });
      const base = driver.toLowerCase();
      for (const ext of ["inf", "sys", "cat"]) {
        await Deno.writeTextFile(join(folder, `${base}.${ext}`), `${driver} ${os} ${ext}\n`);
      }
    }
  }
  await Deno.mkdir(join(tree, "guest-agent"), { recursive: true });
  await Deno.writeFile(
    join(tree, "guest-agent/qemu-ga-x86_64.msi"),
    new Uint8Array(70_000).fill(7),
  );
  const iso = join(dir, "virtio-win.iso");
  await sh(
    "xorriso",
    "-as",
    "mkisofs",
    "-quiet",
    "-J",
    "-R",
    "-V",
    "virtio-win-0.1.271",
    "-o",
    iso,
    tree,
  );
  return iso;
}
