/** The node link's frames (src/link/frames.ts): ids, kinds and payloads survive the trip; anything else is refused. */
import { describe, expect, test } from "bun:test";
import { closePayload, creditPayload, decodeFrame, encodeFrame, frameKinds, parseClose, parseCredit, parseJsonPayload, utf8 } from "../../src/link/frames.ts";

describe("link frames", () => {
  test.each([0, 1, 255, 256, 65_536, 0x7fffffff, 0xffffffff])("stream id %d comes back as sent", (id) => {
    const frame = decodeFrame(encodeFrame(id, "data", utf8("x")));
    expect(frame?.id).toBe(id);
  });

  test("the header is a big-endian u32 id and one kind byte, then the payload unchanged", () => {
    const frame = encodeFrame(0x01020304, "text", utf8("hi"));
    expect([...frame]).toEqual([1, 2, 3, 4, frameKinds.text, 104, 105]);
    for (const kind of Object.keys(frameKinds) as Array<keyof typeof frameKinds>) expect(decodeFrame(encodeFrame(7, kind, utf8("p")))?.kind).toBe(kind);
  });

  test("a frame read out of a larger buffer (an offset view) decodes its own bytes", () => {
    const big = new Uint8Array(64);
    big.set(encodeFrame(42, "data", new Uint8Array([9, 8, 7])), 10);
    const frame = decodeFrame(big.subarray(10, 18))!;
    expect(frame.id).toBe(42);
    expect([...frame.payload]).toEqual([9, 8, 7]);
  });

  test("too short, or an unknown kind: null, never an error", () => {
    expect(decodeFrame(new Uint8Array([0, 0, 0, 1]))).toBeNull();
    expect(decodeFrame(new Uint8Array([0, 0, 0, 1, 0]))).toBeNull();
    expect(decodeFrame(new Uint8Array([0, 0, 0, 1, 99, 1]))).toBeNull();
  });

  test("ids outside u32 are a caller's bug", () => {
    expect(() => encodeFrame(-1, "data")).toThrow();
    expect(() => encodeFrame(2 ** 32, "data")).toThrow();
  });

  test("close: code and reason, the reason cut to 123 bytes; credit: exactly a u32", () => {
    expect(parseClose(closePayload(1011, "node link lost"))).toEqual({ code: 1011, reason: "node link lost" });
    const long = parseClose(closePayload(1000, "é".repeat(100)));
    expect(utf8(long.reason).length).toBeLessThanOrEqual(123);
    expect(parseClose(new Uint8Array(0))).toEqual({ code: 1005, reason: "" });
    expect(parseCredit(creditPayload(1_048_576))).toBe(1_048_576);
    expect(parseCredit(new Uint8Array(3))).toBeNull();
    expect(parseCredit(new Uint8Array(5))).toBeNull();
  });

  test("a JSON payload must be an object", () => {
    expect(parseJsonPayload(utf8('{"a":1}'))).toEqual({ a: 1 });
    for (const bad of ["[1]", "1", "null", "{", '"x"']) expect(parseJsonPayload(utf8(bad))).toBeNull();
    expect(parseJsonPayload(new Uint8Array([0xff, 0xfe]))).toBeNull();
  });
});
