import { assertEquals } from "../tests/_assert.ts";
import { paintText, stripControls } from "./paint.ts";

Deno.test("stripControls() keeps colours, newlines and tabs, and drops every other escape", async (t) => {
  const cases: [string, string, string][] = [
    ["colours", paintText(true, "ok", "ok"), "\x1b[32mok\x1b[0m"],
    ["cursor up and erase", "plan\x1b[200A\x1b[Jfake", "planfake"],
    ["the clipboard (OSC 52)", "x\x1b]52;c;Y3VybCB8IHNo\x07y", "xy"],
    ["a window title ended by ST", "x\x1b]0;title\x1b\\y", "xy"],
    ["C1 CSI and bell", "a\x9b2Jb\x07c", "a2Jbc"],
    ["newlines and tabs", "a\tb\nc", "a\tb\nc"],
  ];
  for (const [name, input, expected] of cases) {
    await t.step(name, () => assertEquals(stripControls(input), expected));
  }
});
