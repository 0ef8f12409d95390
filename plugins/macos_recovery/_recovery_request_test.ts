import { assert, assertEquals } from "../../tests/_assert.ts";
import { findRelease } from "../opencore/releases.ts";
import { vmSeed } from "../opencore/vm_seed.ts";
import { parseImageInfo, recoveryBody } from "./_recovery_request.ts";

const MACHINE = "3d1219c7c4c5404aaa1f6d2a48adfda4";

Deno.test("recoveryBody() is derived from the VM's seed, and random without one", () => {
  const release = findRelease("monterey")!;
  const seed = vmSeed(MACHINE, "/data", "mac");
  const body = recoveryBody(release, seed);
  assertEquals(recoveryBody(release, seed), body);
  assert(
    new RegExp(
      `^cid=[0-9A-F]{16}\\nsn=${release.mlb}\\nbid=${release.boardId}\\nk=[0-9A-F]{64}\\nfg=[0-9A-F]{64}\\nos=${release.os}$`,
    ).test(body),
    body,
  );
  assert(recoveryBody(release, vmSeed(MACHINE, "/data", "mac2")) !== body);
  assert(recoveryBody(release, null) !== recoveryBody(release, null));
});

Deno.test("parseImageInfo() reads the answer's KEY: value lines", () => {
  assertEquals(
    parseImageInfo("AP: 041-1234\nAU: https://cdn/x.dmg\nAT: expires=1~token\n\nnot a pair\n"),
    { AP: "041-1234", AU: "https://cdn/x.dmg", AT: "expires=1~token" },
  );
});
