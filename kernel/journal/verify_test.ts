import { assert, assertEquals } from "../../tests/_assert.ts";
import { join } from "node:path";
import { Journal, type JournalRecord } from "./journal.ts";
import { verifyJournal } from "./verify.ts";

Deno.test("verifyJournal() hashes a 512 MiB disk image as a stream, without holding it in memory", async () => {
  const root = await Deno.makeTempDir({ prefix: "gini-verify-" });
  try {
    const image = join(root, "disk.img");
    const file = await Deno.open(image, { write: true, create: true });
    await file.truncate(512 * 1024 ** 2);
    file.close();
    const journal = await Journal.begin(join(root, "state"), "up");
    const recorded = "0".repeat(64);
    await journal.append({
      type: "intent",
      seq: 1,
      stage: "deploy:disks",
      plugin: "deploy",
      kind: "fs.write",
      args: { path: image },
      description: `Create file "${image}"`,
      inverse: [],
    });
    await journal.append(
      {
        type: "done",
        seq: 1,
        ok: true,
        result: { path: image, sha256: recorded },
      } as JournalRecord,
    );
    await journal.append({ type: "commit" });
    journal.close();

    const before = Deno.memoryUsage().rss;
    const report = await verifyJournal(join(root, "state"));
    const grown = Deno.memoryUsage().rss - before;
    const sha256sum = new TextDecoder().decode(
      (await new Deno.Command("sha256sum", { args: [image], stdout: "piped" }).output()).stdout,
    ).split(" ")[0];
    assertEquals(report.checked, 1);
    assertEquals(report.changed.map((c) => [c.path, c.expected, c.actual]), [
      [image, recorded, sha256sum],
    ]);
    assert(grown < 128 * 1024 ** 2, `RSS grew by ${(grown / 1024 ** 2).toFixed(0)} MiB`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
