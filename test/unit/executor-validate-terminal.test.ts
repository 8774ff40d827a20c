/**
 * The executor's smaller schemas (src/executor/validate.ts; mutation-tested): control characters, image references
 * at their edges, stop and keep bodies, a terminal's query string and the control frames on its socket.
 */
import { describe, expect, test } from "bun:test";
import { UsageError } from "../../src/errors.ts";
import { hasControlChars, isImageReference, parseControl, parseKeepRequest, parseStopRequest, parseTerminalQuery } from "../../src/executor/validate.ts";

describe("control characters: C0, DEL and C1", () => {
  test.each(["\u0000", "\u001f", "\u007f", "\u009f", "a\u001bb", "ok\n"])("%j has one", (s) => expect(hasControlChars(s)).toBe(true));
  test.each([" ", "~", "\u00a0", "ü", "plain text", ""])("%j has none", (s) => expect(hasControlChars(s)).toBe(false));
});

describe("image references at their edges", () => {
  test("512 characters at most", () => {
    expect(isImageReference("a".repeat(512))).toBe(true);
    expect(isImageReference("a".repeat(513))).toBe(false);
  });
  test("a first component with a port or a dot is a registry, whatever its case", () => {
    expect(isImageReference("Host:5000/team/image")).toBe(true);
    expect(isImageReference("My.Registry/team/image")).toBe(true);
    expect(isImageReference("localhost/team/image")).toBe(true);
    expect(isImageReference("Team/image")).toBe(false);
    expect(isImageReference("team/Image")).toBe(false);
    // The first component is what comes before the first "/", not the whole reference with its tag or digest.
    expect(isImageReference("Team/image:tag")).toBe(false);
    expect(isImageReference(`Team/image@sha256:${"a".repeat(64)}`)).toBe(false);
  });
  test("upper case in a tag or digest is not the path's", () => {
    expect(isImageReference("ubuntu:TAG")).toBe(true);
    expect(isImageReference(`team/image@sha256:${"A".repeat(64)}`)).toBe(true);
  });
});

describe("stop and keep bodies", () => {
  test("stop: an optional timeout, whole seconds from 0 to 3600", () => {
    expect(parseStopRequest({})).toEqual({ timeout: 10 });
    expect(parseStopRequest({ timeout: 0 })).toEqual({ timeout: 0 });
    expect(parseStopRequest({ timeout: 3600 })).toEqual({ timeout: 3600 });
    for (const timeout of [-1, 3601, 1.5, "5", null]) expect(() => parseStopRequest({ timeout })).toThrow(new UsageError("timeout must be a whole number from 0 to 3600"));
    expect(() => parseStopRequest({ timeout: 5, signal: "KILL" })).toThrow(new UsageError('unknown field "signal" in the request'));
    for (const body of [null, [], "x"]) expect(() => parseStopRequest(body)).toThrow(new UsageError("the request must be a JSON object"));
  });
  test("keep: seconds from 1 to a year, required", () => {
    expect(parseKeepRequest({ for: 1 })).toEqual({ seconds: 1 });
    expect(parseKeepRequest({ for: 31622400 })).toEqual({ seconds: 31622400 });
    for (const body of [{ for: 31622401 }, {}, { for: "60" }]) expect(() => parseKeepRequest(body)).toThrow(new UsageError("for must be a whole number from 1 to 31622400"));
    expect(() => parseKeepRequest(null)).toThrow(new UsageError("the request must be a JSON object"));
    expect(() => parseKeepRequest({ timeout: 5 })).toThrow(new UsageError('unknown field "timeout" in the request'));
  });
});

const query = (q: Record<string, string>) => parseTerminalQuery(new URLSearchParams(q));

describe("a terminal's query string", () => {
  test("nothing given: no size, no TERM, no command, no tty, no start", () => {
    expect(query({})).toEqual({ cols: 0, rows: 0, term: null, command: [], tty: false, start: false });
  });
  test("everything given", () => {
    expect(query({ cols: "80", rows: "10000", term: "xterm-256color", cmd: '["ls","-l"]', tty: "1", start: "1" })).toEqual({ cols: 80, rows: 10000, term: "xterm-256color", command: ["ls", "-l"], tty: true, start: true });
  });
  test("tty and start are on only for 1", () => {
    for (const v of ["0", "true", "", "yes"]) expect(query({ tty: v, start: v })).toMatchObject({ tty: false, start: false });
  });
  test("sizes: up to five digits, then at most 10000", () => {
    expect(query({ cols: "5", rows: "00007" })).toMatchObject({ cols: 5, rows: 7 });
    for (const v of ["", "-1", "1.5", "8e1", "x", "123456", " 80", "80 "]) expect(() => query({ cols: v })).toThrow(new UsageError("cols must be a whole number"));
    expect(() => query({ rows: "10001" })).toThrow(new UsageError("rows must be a whole number from 0 to 10000"));
    expect(() => query({ rows: "99999" })).toThrow(new UsageError("rows must be a whole number from 0 to 10000"));
  });
  test("term: a terminal name when given", () => {
    expect(() => query({ term: "x y" })).toThrow(new UsageError("term must be a terminal name"));
    expect(() => query({ term: "" })).toThrow(new UsageError("term must be a terminal name"));
    expect(() => query({ term: "x".repeat(65) })).toThrow(new UsageError("term is longer than 64 characters"));
  });
  test("cmd: a JSON list of strings without NUL", () => {
    expect(() => query({ cmd: "ls -l" })).toThrow(new UsageError("cmd must be a JSON list of strings"));
    expect(() => query({ cmd: '"ls"' })).toThrow(new UsageError("cmd must be a list"));
    expect(() => query({ cmd: "[1]" })).toThrow(new UsageError("cmd[0] must be a string without NUL"));
    expect(() => query({ cmd: JSON.stringify(Array(4097).fill("x")) })).toThrow(new UsageError("cmd may have at most 4096 entries"));
    expect(() => query({ cmd: JSON.stringify(["a".repeat(131073)]) })).toThrow(new UsageError("cmd is larger than 131072 bytes in all"));
    expect(query({ cmd: "[]" }).command).toEqual([]);
  });
});

describe("control frames on a terminal socket", () => {
  test("resize: whole sizes from 1 to 10000", () => {
    expect(parseControl('{"type":"resize","cols":1,"rows":10000}')).toEqual({ type: "resize", cols: 1, rows: 10000 });
    for (const [cols, rows] of [[0, 24], [80, 0], [10001, 24], [80, 10001], [1.5, 24], [80, "24"], [80, null]]) {
      expect(parseControl(JSON.stringify({ type: "resize", cols, rows }))).toBeNull();
    }
    expect(parseControl('{"type":"other","cols":80,"rows":24}')).toBeNull();
  });
  test("signal: SIG and one to ten capitals or digits", () => {
    expect(parseControl('{"type":"signal","name":"SIGAZ09"}')).toEqual({ type: "signal", name: "SIGAZ09" });
    expect(parseControl('{"type":"signal","name":"SIGABCDEFGHIJ"}')).toEqual({ type: "signal", name: "SIGABCDEFGHIJ" });
    for (const name of ["SIG", "SIGABCDEFGHIJK", "xSIGKILL", "SIGKILLx", "SIGKILL ", "sigkill", "KILL", ["SIGKILL"], 9]) {
      expect(parseControl(JSON.stringify({ type: "signal", name }))).toBeNull();
    }
    expect(parseControl('{"type":"other","name":"SIGKILL"}')).toBeNull();
  });
  test("stdin-eof", () => {
    expect(parseControl('{"type":"stdin-eof"}')).toEqual({ type: "stdin-eof" });
    expect(parseControl('{"type":"stdin-eofx"}')).toBeNull();
    expect(parseControl("{}")).toBeNull();
  });
});
