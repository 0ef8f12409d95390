import { assertEquals } from "../tests/_assert.ts";
import { ConfigError } from "./errors.ts";
import { byteProgress, createUi, type UiSink } from "./ui.ts";

function sink(): UiSink & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    out: (t) => void stdout.push(t),
    err: (t) => void stderr.push(t),
    isTerminal: false,
  };
}

Deno.test("createUi() plain renderer: messages and progress on stderr as lines, results on stdout", () => {
  const s = sink();
  const ui = createUi({ sink: s });
  ui.message({ type: "info", text: "hello", source: "p" });
  ui.message({ type: "warn", text: "careful" });
  ui.message({ type: "debug", text: "hidden" });
  ui.message({ type: "progress", phase: "start", id: "1", label: "Copying", total: 10 });
  ui.message({ type: "progress", phase: "update", id: "1", current: 5 });
  ui.message({ type: "progress", phase: "complete", id: "1" });
  ui.result({ a: 1 }, () => "result text");
  ui.failure(
    new ConfigError('Cannot use "cpu.cores": expected number', {
      hint: "Fix it",
      location: { file: "vm.toml", line: 3, column: 1 },
    }),
  );
  assertEquals(
    s.stderr.join(""),
    [
      "[p] hello",
      "warning: careful",
      "Copying…",
      "✓ Copying",
      'error: vm.toml:3:1: Cannot use "cpu.cores": expected number',
      "    hint: Fix it",
      "",
    ].join("\n"),
  );
  assertEquals(s.stdout, ["result text\n"]);
});

Deno.test("createUi() JSON renderer: one object per line on stderr, results and errors as JSON on stdout", () => {
  const s = sink();
  const ui = createUi({ sink: s, json: true });
  ui.message({ type: "info", text: "hello" });
  ui.message({ type: "progress", phase: "start", id: "1", label: "x" });
  ui.result([{ name: "a" }], () => "ignored");
  ui.failure(new ConfigError("bad", { hint: "fix" }));
  assertEquals(s.stderr.map((l) => JSON.parse(l)), [
    { type: "info", text: "hello" },
    { type: "progress", phase: "start", id: "1", label: "x" },
  ]);
  assertEquals(JSON.parse(s.stdout[0]!), [{ name: "a" }]);
  assertEquals(JSON.parse(s.stdout[1]!), {
    error: { name: "ConfigError", code: "CONFIG_INVALID", message: "bad", hint: "fix" },
  });
});

Deno.test("byteProgress() shows sizes, rate and time left", () => {
  assertEquals(
    byteProgress(64 * 1024 ** 2, 512 * 1024 ** 2, 2000),
    "64.0 MiB of 512.0 MiB, 32.0 MiB/s, 14 s left",
  );
  assertEquals(byteProgress(1024, undefined, 1000), "1.0 KiB, 1.0 KiB/s");
});
