/**
 * A Mac identity for one VM: serial number, board serial (MLB), ROM and system UUID, in the
 * formats Apple uses, derived once per VM from its seed (`vm_seed.ts`; so a plan shows the identity
 * the deploy writes) and kept (see opencore:edit) so that the VM stays the same Mac across rebuilds.
 *
 * @module
 */

/** What OpenCore's PlatformInfo.Generic gets. */
export interface MacIdentity {
  model: string;
  serial: string;
  mlb: string;
  /** Six bytes, hex. */
  rom: string;
  uuid: string;
}

/** Apple's serial alphabet: digits and letters without I and O. */
export const BASE34 = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
const YEAR = "CDFGHJKLMNPQRSTVWXYZ";
const WEEK = "123456789CDFGHJKLMNPQRTVWXY";

/** Per model: its serial's model code and its logic board code (from real machines). */
const MODELS: Record<string, { code: string; board: string }> = {
  "iMacPro1,1": { code: "HX87", board: "J137" },
  "MacPro7,1": { code: "P7QM", board: "K3F7" },
};

function pick(alphabet: string, random: () => number): string {
  return alphabet[random() % alphabet.length]!;
}

/** The MLB check: weights 3 and 1 alternating over base-34 values sum to 0 mod 34. */
export function mlbChecksumOk(mlb: string): boolean {
  if (!/^[0-9A-Z]{17}$/.test(mlb)) return false;
  let sum = 0;
  for (const [i, c] of [...mlb].entries()) {
    const v = BASE34.indexOf(c);
    if (v < 0) return false;
    sum += ((i & 1) === (17 & 1) ? 3 : 1) * v;
  }
  return sum % 34 === 0;
}

/**
 * A new identity for `model`; `random` returns unsigned integers (the VM's `seededRandom`, or
 * random ones by default).
 */
export function newIdentity(
  model: string,
  random: () => number = () => crypto.getRandomValues(new Uint32Array(1))[0]!,
): MacIdentity {
  const m = MODELS[model] ?? MODELS["MacPro7,1"]!;
  const serial = `C02${pick(YEAR, random)}${pick(WEEK, random)}${pick(BASE34, random)}${
    pick(BASE34, random)
  }${pick(BASE34, random)}${m.code}`;
  const year = random() % 10;
  const week = String(1 + random() % 52).padStart(2, "0");
  let mlb = `C02${year}${week}${pick(BASE34, random)}${pick(BASE34, random)}${
    pick(BASE34, random)
  }Q${pick(BASE34, random)}${m.board}0`;
  // The last character makes the weighted sum a multiple of 34.
  let sum = 0;
  for (const [i, c] of [...mlb].entries()) {
    sum += ((i & 1) === (17 & 1) ? 3 : 1) * BASE34.indexOf(c);
  }
  mlb += BASE34[(34 - (sum % 34)) % 34];
  const bytes = (n: number) =>
    Array.from({ length: n }, () => (random() % 256).toString(16).padStart(2, "0").toUpperCase())
      .join("");
  const u = bytes(16);
  const uuid = [
    u.slice(0, 8),
    u.slice(8, 12),
    `4${u.slice(13, 16)}`,
    `${"89AB"[random() % 4]}${u.slice(17, 20)}`,
    u.slice(20, 32),
  ].join("-");
  return { model, serial, mlb, rom: bytes(6), uuid };
}

/** Whether an identity has Apple's formats. */
export function identityProblems(id: MacIdentity): string[] {
  const problems: string[] = [];
  if (!/^C02[A-Z0-9]{9}$/.test(id.serial) || [...id.serial].some((c) => !BASE34.includes(c))) {
    problems.push(`serial "${id.serial}"`);
  }
  if (!mlbChecksumOk(id.mlb)) problems.push(`MLB "${id.mlb}"`);
  if (!/^[0-9A-F]{12}$/.test(id.rom)) problems.push(`ROM "${id.rom}"`);
  if (!/^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/.test(id.uuid)) {
    problems.push(`UUID "${id.uuid}"`);
  }
  return problems;
}
