/**
 * OVMF variables with a screen resolution: OVMF reads its `PlatformConfig` variable
 * (vendor GUID 7235c51c-0c80-4cab-87ac-3b084a6304b1: horizontal and vertical resolution as
 * two little-endian UINT32) at boot. This appends that variable to a copy of the host's
 * OVMF_VARS template's authenticated variable store (marking an older one deleted), which is
 * what OSX-KVM's OVMF_VARS-WxH.fd files hold.
 *
 * @module
 */

const VARIABLE_STORE_GUID = "78 2c f3 aa 7b 94 9a 43 a1 80 2e 14 4e c3 77 92"; // authenticated
const PLATFORM_CONFIG_GUID = [
  0x1c,
  0xc5,
  0x35,
  0x72,
  0x80,
  0x0c,
  0xab,
  0x4c,
  0x87,
  0xac,
  0x3b,
  0x08,
  0x4a,
  0x63,
  0x04,
  0xb1,
];
const NAME = "PlatformConfig";
/** The name as UTF-16LE with its terminating NUL, as the store keeps it. */
const NAME_BYTES = new Uint8Array((NAME.length + 1) * 2);
[...NAME].forEach((c, i) => NAME_BYTES[i * 2] = c.charCodeAt(0));
const HEADER = 60; // authenticated variable header
const VAR_ADDED = 0x3f;
const VAR_DELETED = 0xfd;

/** Error with where the template stopped making sense. */
function bad(why: string): Error {
  return Object.assign(new Error(`Cannot set the OVMF resolution: ${why}`), {
    hint: "Use the OVMF_VARS template of your distribution's OVMF package (firmware.vars)",
  });
}

interface Variable {
  /** Offset of its header. */
  at: number;
  state: number;
  platformConfig: boolean;
  /** Offset of its data. */
  data: number;
}

/** The variables of an authenticated store, and where free space starts. */
function variables(vars: Uint8Array): { list: Variable[]; free: number; end: number } {
  const view = new DataView(vars.buffer, vars.byteOffset, vars.byteLength);
  if (new TextDecoder().decode(vars.subarray(40, 44)) !== "_FVH") throw bad("no firmware volume");
  const fvHeader = view.getUint16(48, true);
  const guid = Array.from(
    vars.subarray(fvHeader, fvHeader + 16),
    (b) => b.toString(16).padStart(2, "0"),
  ).join(" ");
  if (guid !== VARIABLE_STORE_GUID) throw bad("no authenticated variable store");
  const end = fvHeader + view.getUint32(fvHeader + 16, true);
  const list: Variable[] = [];
  let at = fvHeader + 28;
  while (at + HEADER <= end && view.getUint16(at, true) === 0x55aa) {
    const nameSize = view.getUint32(at + 36, true);
    const dataSize = view.getUint32(at + 40, true);
    const name = vars.subarray(at + HEADER, at + HEADER + nameSize);
    list.push({
      at,
      state: vars[at + 2]!,
      platformConfig: vars.subarray(at + 44, at + 60).every((b, i) =>
        b === PLATFORM_CONFIG_GUID[i]
      ) &&
        name.length === NAME_BYTES.length && name.every((b, i) => b === NAME_BYTES[i]),
      data: at + HEADER + nameSize,
    });
    at = (at + HEADER + nameSize + dataSize + 3) & ~3;
  }
  return { list, free: at, end };
}

/** A copy of `template` whose PlatformConfig asks for `width`×`height`. */
export function setOvmfResolution(template: Uint8Array, width: number, height: number): Uint8Array {
  const out = template.slice();
  const view = new DataView(out.buffer);
  const { list, free: at, end } = variables(out);
  for (const v of list) {
    if (v.state === VAR_ADDED && v.platformConfig) out[v.at + 2] = v.state & VAR_DELETED;
  }
  const size = HEADER + NAME_BYTES.length + 8;
  if (at + size > end) throw bad("the variable store is full");
  view.setUint16(at, 0x55aa, true);
  out[at + 2] = VAR_ADDED;
  out[at + 3] = 0;
  view.setUint32(at + 4, 0x3, true); // non-volatile, boot-service access
  // Monotonic count, time stamp and public key index stay zero.
  view.setUint32(at + 36, NAME_BYTES.length, true);
  view.setUint32(at + 40, 8, true);
  out.set(PLATFORM_CONFIG_GUID, at + 44);
  out.set(NAME_BYTES, at + HEADER);
  view.setUint32(at + HEADER + NAME_BYTES.length, width, true);
  view.setUint32(at + HEADER + NAME_BYTES.length + 4, height, true);
  return out;
}

/** The resolution a vars file asks for, or null. */
export function ovmfResolution(vars: Uint8Array): { width: number; height: number } | null {
  const view = new DataView(vars.buffer, vars.byteOffset, vars.byteLength);
  const found = variables(vars).list.filter((v) => v.state === VAR_ADDED && v.platformConfig).at(
    -1,
  );
  return found
    ? { width: view.getUint32(found.data, true), height: view.getUint32(found.data + 4, true) }
    : null;
}
