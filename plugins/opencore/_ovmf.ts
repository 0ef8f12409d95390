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
const HEADER = 60; // authenticated variable header
const VAR_ADDED = 0x3f;
const VAR_DELETED = 0xfd;

/** Error with where the template stopped making sense. */
function bad(why: string): Error {
  return Object.assign(new Error(`Cannot set the OVMF resolution: ${why}`), {
    hint: "Use the OVMF_VARS template of your distribution's OVMF package (firmware.vars)",
  });
}

/** A copy of `template` whose PlatformConfig asks for `width`×`height`. */
export function setOvmfResolution(template: Uint8Array, width: number, height: number): Uint8Array {
  const out = template.slice();
  const view = new DataView(out.buffer);
  if (new TextDecoder().decode(out.subarray(40, 44)) !== "_FVH") throw bad("no firmware volume");
  const fvHeader = view.getUint16(48, true);
  const guid = Array.from(
    out.subarray(fvHeader, fvHeader + 16),
    (b) => b.toString(16).padStart(2, "0"),
  ).join(" ");
  if (guid !== VARIABLE_STORE_GUID) throw bad("no authenticated variable store");
  const storeSize = view.getUint32(fvHeader + 16, true);
  const end = fvHeader + storeSize;
  let at = fvHeader + 28;
  const nameBytes = new Uint8Array((NAME.length + 1) * 2);
  [...NAME].forEach((c, i) => nameBytes[i * 2] = c.charCodeAt(0));
  while (at + HEADER <= end && view.getUint16(at, true) === 0x55aa) {
    const state = out[at + 2]!;
    const nameSize = view.getUint32(at + 36, true);
    const dataSize = view.getUint32(at + 40, true);
    const vendor = out.subarray(at + 44, at + 60);
    const name = out.subarray(at + HEADER, at + HEADER + nameSize);
    if (
      state === VAR_ADDED && vendor.every((b, i) => b === PLATFORM_CONFIG_GUID[i]) &&
      name.length === nameBytes.length && name.every((b, i) => b === nameBytes[i])
    ) {
      out[at + 2] = state & VAR_DELETED;
    }
    at += HEADER + nameSize + dataSize;
    at = (at + 3) & ~3;
  }
  const size = HEADER + nameBytes.length + 8;
  if (at + size > end) throw bad("the variable store is full");
  view.setUint16(at, 0x55aa, true);
  out[at + 2] = VAR_ADDED;
  out[at + 3] = 0;
  view.setUint32(at + 4, 0x3, true); // non-volatile, boot-service access
  // Monotonic count, time stamp and public key index stay zero.
  view.setUint32(at + 36, nameBytes.length, true);
  view.setUint32(at + 40, 8, true);
  out.set(PLATFORM_CONFIG_GUID, at + 44);
  out.set(nameBytes, at + HEADER);
  view.setUint32(at + HEADER + nameBytes.length, width, true);
  view.setUint32(at + HEADER + nameBytes.length + 4, height, true);
  return out;
}

/** The resolution a vars file asks for, or null (for tests and gini vfio-like status). */
export function ovmfResolution(vars: Uint8Array): { width: number; height: number } | null {
  const view = new DataView(vars.buffer, vars.byteOffset, vars.byteLength);
  const fvHeader = view.getUint16(48, true);
  let at = fvHeader + 28;
  let found: { width: number; height: number } | null = null;
  while (at + HEADER <= vars.byteLength && view.getUint16(at, true) === 0x55aa) {
    const nameSize = view.getUint32(at + 36, true);
    const dataSize = view.getUint32(at + 40, true);
    const vendor = vars.subarray(at + 44, at + 60);
    if (vars[at + 2] === VAR_ADDED && vendor.every((b, i) => b === PLATFORM_CONFIG_GUID[i])) {
      const data = at + HEADER + nameSize;
      found = { width: view.getUint32(data, true), height: view.getUint32(data + 4, true) };
    }
    at = (at + HEADER + nameSize + dataSize + 3) & ~3;
  }
  return found;
}
