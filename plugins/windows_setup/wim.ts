/**
 * The images of a Windows Imaging (WIM or ESD) file, read from its XML metadata: the 208-byte
 * header names where the XML resource is (offset, size), and that resource is UTF-16LE XML with an
 * `<IMAGE INDEX="n">` element per image (name, edition, languages, build). Only the header and the
 * XML are read, never the image data, so a 5 GiB install.wim costs two small reads.
 *
 * @example
 * ```ts
 * const images = await readWimImages("/cache/install.wim");
 * images.map((i) => `${i.index} ${i.name}`); // ["1 Windows 11 Home", "6 Windows 11 Pro"]
 * ```
 *
 * @module
 */
import { XMLParser } from "fast-xml-parser";

/** One image of a WIM: what `gini windows editions` lists and `edition` chooses from. */
export type WimImage = {
  index: number;
  name: string;
  description: string;
  /** `WINDOWS/EDITIONID` (or `FLAGS`): "Professional", "Core", "ServerStandard"… */
  edition: string | null;
  /** "Client" or "Server" (Server Core: "Server Core"). */
  installationType: string | null;
  languages: string[];
  defaultLanguage: string | null;
  /** `WINDOWS/VERSION`: 10.0.22631 is Windows 11 23H2. */
  major: number | null;
  build: number | null;
  /** `WINDOWS/ARCH`: 9 is x64, 12 arm64, 0 x86. */
  arch: number | null;
};

/** The WIM header's size and the offset of the XML resource header in it. */
const HEADER_BYTES = 208;
const XML_RESHDR = 72;
/** A resource flag: the resource is compressed (never set for the XML of a WIM Setup reads). */
const RESHDR_COMPRESSED = 0x04;
/** The XML of a Windows image is a few KiB an image; more than this is not a WIM's. */
const XML_LIMIT = 16 * 1024 * 1024;

/** A file that is not a WIM Gini can read, and why. */
export class WimFormatError extends Error {}

/** Where the XML resource of a WIM is, from its header. */
export function wimXmlLocation(header: Uint8Array): { offset: number; size: number } {
  if (header.length < HEADER_BYTES) throw new WimFormatError("it is shorter than a WIM header");
  const magic = new TextDecoder().decode(header.subarray(0, 8));
  if (magic !== "MSWIM\0\0\0" && magic !== "WLPWM\0\0\0") {
    throw new WimFormatError("it does not start with the WIM signature MSWIM");
  }
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  // RESHDR_DISK_SHORT: a 7-byte size and a flags byte, an 8-byte offset, an 8-byte original size.
  const sizeLow = view.getUint32(XML_RESHDR, true);
  const sizeHigh = view.getUint16(XML_RESHDR + 4, true) + view.getUint8(XML_RESHDR + 6) * 65536;
  const flags = view.getUint8(XML_RESHDR + 7);
  const size = sizeHigh * 2 ** 32 + sizeLow;
  const offset = Number(view.getBigUint64(XML_RESHDR + 8, true));
  if (flags & RESHDR_COMPRESSED) throw new WimFormatError("its XML metadata is compressed");
  if (size === 0 || size > XML_LIMIT) {
    throw new WimFormatError(`its XML metadata has an implausible size (${size} bytes)`);
  }
  return { offset, size };
}

const asArray = <T>(v: T | T[] | undefined): T[] =>
  v === undefined ? [] : Array.isArray(v) ? v : [v];
const text = (v: unknown): string | null =>
  v === undefined || v === null || typeof v === "object" ? null : String(v);
const num = (v: unknown): number | null => {
  const t = text(v);
  if (t === null) return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : null;
};

/** The images listed by a WIM's XML metadata (already decoded from UTF-16LE). */
export function parseWimXml(xml: string): WimImage[] {
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: "@",
    parseTagValue: false,
    isArray: (name) => name === "IMAGE" || name === "LANGUAGE",
  });
  let doc: { WIM?: { IMAGE?: Record<string, unknown>[] } };
  try {
    doc = parser.parse(xml.replace(/^\uFEFF/, ""));
  } catch (error) {
    throw new WimFormatError(
      `its XML metadata does not parse: ${error instanceof Error ? error.message : error}`,
    );
  }
  if (!doc.WIM) throw new WimFormatError("its XML metadata has no <WIM> element");
  return asArray(doc.WIM.IMAGE).map((image) => {
    const windows = (image.WINDOWS ?? {}) as Record<string, unknown>;
    const languages = (windows.LANGUAGES ?? {}) as Record<string, unknown>;
    const version = (windows.VERSION ?? {}) as Record<string, unknown>;
    const index = num(image["@INDEX"]);
    if (index === null) throw new WimFormatError("an <IMAGE> of its XML has no INDEX");
    return {
      index,
      name: text(image.NAME) ?? text(image.DISPLAYNAME) ?? `Image ${index}`,
      description: text(image.DESCRIPTION) ?? "",
      edition: text(windows.EDITIONID) ?? text(image.FLAGS),
      installationType: text(windows.INSTALLATIONTYPE),
      languages: asArray(languages.LANGUAGE).map((l) => text(l)).filter((l) => l !== null),
      defaultLanguage: text(languages.DEFAULT),
      major: num(version.MAJOR),
      build: num(version.BUILD),
      arch: num(windows.ARCH),
    };
  });
}

/** Reads the images of the WIM or ESD file at `path` (its header and XML only). */
export async function readWimImages(path: string): Promise<WimImage[]> {
  using file = await Deno.open(path, { read: true });
  const readAt = async (offset: number, length: number) => {
    await file.seek(offset, Deno.SeekMode.Start);
    const buffer = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const n = await file.read(buffer.subarray(got));
      if (n === null) throw new WimFormatError("it ends before its XML metadata");
      got += n;
    }
    return buffer;
  };
  const where = wimXmlLocation(await readAt(0, HEADER_BYTES));
  const xml = new TextDecoder("utf-16le").decode(await readAt(where.offset, where.size));
  return parseWimXml(xml);
}
