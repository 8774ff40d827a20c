/** How the CLI waits out an executor restart, and how it words a failed connection. */
import { describe, expect, test } from "bun:test";
import { userConfigKeys } from "../../src/config/user.ts";
import { createTestIO } from "../../src/cli/io.ts";
import { Reconnect, reconnectSeconds } from "../../src/cli/reconnect.ts";
import type { ExecutorHealth } from "../../src/executor/client.ts";
import { connectionFailure, isConnectionError } from "../../src/util/net.ts";

const up: ExecutorHealth = { version: "1", commit: "c", node: "n", pid: 2, server: null, binary: null };

/** A Reconnect on a virtual clock; `answers` says what health answers at each call (the last one repeats). */
function world(answers: Array<ExecutorHealth | null>, timeoutSeconds = 60, raw = false) {
  let now = 0;
  const io = createTestIO();
  const asked: number[] = [];
  const reconnect = new Reconnect({
    io,
    timeoutSeconds,
    raw: () => raw,
    now: () => now,
    sleep: async (ms) => void (now += ms),
    health: async () => {
      asked.push(now);
      return answers.length > 1 ? answers.shift()! : answers[0]!;
    },
  });
  return { reconnect, io, asked, now: () => now };
}

describe("waiting for the executor", () => {
  test("says so once, backs off, and is back when an executor answers that is not stopping", async () => {
    const w = world([null, null, { ...up, restarting: true }, null, up]);
    expect(await w.reconnect.wait()).toBe(true);
    expect(w.io.stderr()).toBe("executor restarting; reconnecting...\n");
    expect(w.asked).toEqual([100, 300, 700, 1500, 2500]);
  });

  test("gives up when reconnect_timeout runs out", async () => {
    const w = world([null], 5);
    expect(await w.reconnect.wait()).toBe(false);
    expect(w.now()).toBe(5000);
    // A second wait in the same outage does not say it again, nor start the clock over.
    expect(await w.reconnect.wait()).toBe(false);
    expect(w.io.stderr()).toBe("executor restarting; reconnecting...\n");
  });

  test("a later outage gets its own line and its own time; in raw mode the line has its carriage returns", async () => {
    const w = world([up], 60, true);
    await w.reconnect.wait();
    w.reconnect.recovered();
    await w.reconnect.wait();
    expect(w.io.stderr()).toBe("\r\nexecutor restarting; reconnecting...\r\n".repeat(2));
    expect(w.asked).toEqual([100, 200]);
  });

  test("stops at once when the caller gives up (Ctrl-C, the detach keys)", async () => {
    const w = world([null]);
    const abort = new AbortController();
    abort.abort();
    expect(await w.reconnect.wait(abort.signal)).toBe(false);
    expect(w.asked).toEqual([]);
  });

  test.each([
    [{}, 60],
    [{ reconnect_timeout: "5" }, 5],
    [{ reconnect_timeout: "0" }, 0],
    [{ reconnect_timeout: "soon" }, 60],
  ])("reconnect_timeout %j: %d s", (config, seconds) => {
    expect(reconnectSeconds(config)).toBe(seconds);
  });

  test.each([
    ["90", undefined],
    ["86400", undefined],
    ["86401", "must be a whole number of seconds, at most 86400"],
    ["1m", "must be a whole number of seconds, at most 86400"],
  ])("config set reconnect_timeout %s", (value, error) => {
    expect(userConfigKeys.reconnect_timeout!.validate!(value)).toBe(error);
  });
});

describe("failed connections in plain words", () => {
  const bun = (code: string, message: string) => Object.assign(new TypeError(message), { code });
  test.each([
    ["ECONNRESET", "ECONNRESET: The socket connection was closed unexpectedly. For more information, pass `verbose: true` in the second argument to fetch()", "the connection was closed before the answer was complete"],
    ["ECONNREFUSED", "ECONNREFUSED: Unable to connect. Is the computer able to access the url?", "nothing accepts connections there"],
    ["ENOENT", "ENOENT: Was there a typo in the url or port?", "there is no socket there"],
    ["ENOTFOUND", "getaddrinfo ENOTFOUND x.invalid", "the host name does not resolve"],
    ["EWHATEVER", "library words", "the connection failed (EWHATEVER)"],
  ])("%s: the library's words are not shown", (code, message, words) => {
    expect(connectionFailure(bun(code, message))).toBe(words);
  });
  test("a timeout", () => {
    expect(connectionFailure(Object.assign(new Error("The operation timed out."), { name: "TimeoutError" }))).toBe("no answer in time");
  });
  test("a connection error is told from a bug by its code", () => {
    expect(isConnectionError(bun("ECONNRESET", "x"))).toBe(true);
    expect(isConnectionError(new TypeError("undefined is not a function"))).toBe(false);
  });
});
