import { assert, assertEquals } from "../../tests/_assert.ts";
import { identityProblems, newIdentity } from "./_smbios.ts";
import { seededHex, seededRandom, vmSeed } from "./vm_seed.ts";

function assertNotEquals(actual: unknown, other: unknown): void {
  assert(JSON.stringify(actual) !== JSON.stringify(other), `${JSON.stringify(actual)} repeated`);
}

const MACHINE = "3d1219c7c4c5404aaa1f6d2a48adfda4";
const identity = (machine: string, data: string, name: string) =>
  newIdentity("iMacPro1,1", seededRandom(vmSeed(machine, data, name), "mac identity"));

Deno.test("a VM's derived Mac identity is the same on every run and has Apple's formats", () => {
  const a = identity(MACHINE, "/home/u/.local/share/gini", "mac");
  assertEquals(identity(MACHINE, "/home/u/.local/share/gini", "mac"), a);
  assertEquals(identityProblems(a), []);
  for (let i = 0; i < 200; i++) {
    const id = identity(MACHINE, "/data", `vm-${i}`);
    assertEquals(identityProblems(id), [], JSON.stringify(id));
  }
});

Deno.test("another VM, data directory or host gets another Mac identity", () => {
  const a = identity(MACHINE, "/data", "mac");
  for (
    const other of [
      identity(MACHINE, "/data", "mac2"),
      identity(MACHINE, "/other", "mac"),
      identity("00000000000000000000000000000001", "/data", "mac"),
    ]
  ) {
    assertNotEquals(other.serial, a.serial);
    assertNotEquals(other.mlb, a.mlb);
    assertNotEquals(other.rom, a.rom);
    assertNotEquals(other.uuid, a.uuid);
  }
});

Deno.test("seededHex() draws independent values per purpose", () => {
  const seed = vmSeed(MACHINE, "/data", "mac");
  assertEquals(seededHex(seed, "k", 64), seededHex(seed, "k", 64));
  assertNotEquals(seededHex(seed, "k", 64), seededHex(seed, "fg", 64));
  assert(/^[0-9A-F]{64}$/.test(seededHex(seed, "k", 64)));
});
