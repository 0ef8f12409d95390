import { assert, assertEquals } from "../tests/_assert.ts";
import {
  arr,
  check,
  json,
  lit,
  num,
  obj,
  oneOf,
  opt,
  rec,
  str,
  tagged,
  withDefault,
  zodLike,
} from "./shape.ts";
import { parseKernelMessage, parseWorkerMessage, PROTOCOL_VERSION } from "./protocol.ts";

const Msg = tagged([
  obj({ type: lit("a"), n: num({ int: true, min: 0 }), note: opt(str({ max: 3 })) }),
  obj({ type: oneOf(["b", "c"]), list: withDefault(arr(str()), () => []), data: rec(json) }),
]);

Deno.test("a shape returns a copy with only the declared keys", () => {
  const given = { type: "a", n: 2, extra: { evil: true } };
  const result = check(Msg, given);
  assertEquals(result, { ok: true, value: { type: "a", n: 2 } });
  if (result.ok) assertEquals(Object.hasOwn(result.value, "extra"), false);
});

Deno.test("a shape names the path and the reason of a refusal", () => {
  assertEquals(check(Msg, { type: "a", n: 1.5 }), {
    ok: false,
    path: ["n"],
    message: "expected an integer",
  });
  assertEquals(check(Msg, { type: "a", n: -1 }).ok, false);
  assertEquals(check(Msg, { type: "a" }), { ok: false, path: ["n"], message: "required" });
  assertEquals(check(Msg, { type: "a", n: 1, note: "long" }), {
    ok: false,
    path: ["note"],
    message: "expected at most 3 characters",
  });
  assertEquals(check(Msg, { type: "z" }), {
    ok: false,
    path: ["type"],
    message: 'expected one of "a", "b", "c"',
  });
  assertEquals(check(Msg, { type: "b", data: { x: [1, { y: () => 1 }] } }), {
    ok: false,
    path: ["data", "x", 1, "y"],
    message: "expected JSON, got function",
  });
  assertEquals(check(Msg, { type: "c", data: { x: NaN } }).ok, false);
  assertEquals(check(Msg, [1]).ok, false);
});

Deno.test("a default fills an absent key", () => {
  assertEquals(check(Msg, { type: "c", data: {} }), {
    ok: true,
    value: { type: "c", list: [], data: {} },
  });
});

Deno.test("protocol messages are checked by type, unknown keys dropped", () => {
  const ready = parseWorkerMessage({
    type: "ready",
    v: PROTOCOL_VERSION,
    stages: ["s"],
    events: [],
    hooks: ["pre-stage"],
    preflight: false,
    sneaky: 1,
  });
  assertEquals(ready, {
    ok: true,
    message: {
      type: "ready",
      v: PROTOCOL_VERSION,
      stages: ["s"],
      events: [],
      hooks: ["pre-stage"],
      preflight: false,
      renders: [],
    },
  });
  const wrongVersion = parseWorkerMessage({ type: "ready", v: PROTOCOL_VERSION + 1 });
  assertEquals(wrongVersion.ok, false);
  assertEquals(parseWorkerMessage({ type: "op", req: 1, call: 1, op: { kind: "x" } }), {
    ok: false,
    reason: 'the message does not match the protocol at "op.args": required',
  });
  assertEquals(
    parseKernelMessage({
      type: "init",
      v: PROTOCOL_VERSION,
      plugin: "p",
      dryRun: true,
      hostRoot: "/",
      dirs: { config: "c", data: "d", state: "s", cache: "k" },
      module: "file:///etc/passwd",
    }).ok,
    false,
  );
});

Deno.test("a strict object refuses unknown keys; strings and arrays keep their limits", () => {
  const Strict = obj({
    name: str({ min: 1, pattern: /^[a-z]+$/, what: "expected lowercase letters" }),
    tags: opt(arr(str(), { min: 1, max: 2 })),
  }, { strict: true });
  assertEquals(check(Strict, { name: "ok", extra: 1 }), {
    ok: false,
    path: ["extra"],
    message: "unrecognized key",
  });
  assertEquals(check(Strict, { name: "" }).ok, false);
  assertEquals(check(Strict, { name: "Bad" }), {
    ok: false,
    path: ["name"],
    message: "expected lowercase letters",
  });
  assertEquals(check(Strict, { name: "ok", tags: [] }).ok, false);
  assertEquals(check(Strict, { name: "ok", tags: ["a", "b", "c"] }).ok, false);
  assertEquals(check(Strict, { name: "ok", tags: ["a"] }), {
    ok: true,
    value: { name: "ok", tags: ["a"] },
  });
  assertEquals(zodLike(Strict).safeParse({ name: 1 }), {
    success: false,
    error: { issues: [{ path: ["name"], message: "expected a string, got number" }] },
  });
  assertEquals(zodLike(Strict).safeParse({ name: "ok" }), { success: true, data: { name: "ok" } });
});

Deno.test("only plain data passes: no bytes, no unsafe integers, no prototype through a key", () => {
  // A Uint8Array is no object of JSON (zod refused it; read as one it is a key per byte).
  assertEquals(check(rec(json), new Uint8Array(4)).ok, false);
  assertEquals(check(json, { data: new Uint8Array(4) }).ok, false);
  assertEquals(check(json, new Map()).ok, false);
  assertEquals(check(json, Object.create(null)).ok, true);
  assertEquals(
    parseWorkerMessage({ type: "done", call: 1, ok: true, writes: new Uint8Array(8) }),
    { ok: false, reason: "the message holds binary data, which no message carries" },
  );
  assertEquals(check(num({ int: true }), 2 ** 53).ok, false);
  assertEquals(check(num({ int: true }), 2 ** 53 - 1).ok, true);
  // A "__proto__" key (possible in data read back from the journal) stays a key of the copy.
  const evil = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}');
  const copy = check(rec(json), evil);
  assert(copy.ok);
  assertEquals(Object.getPrototypeOf(copy.value), Object.prototype);
  assertEquals((copy.value as Record<string, unknown>).polluted, undefined);
  assertEquals(Object.keys(copy.value), ["__proto__", "a"]);
});
