import { describe, expect, test } from "bun:test";
import { ConfigError, ConflictError } from "../../src/errors.ts";
import { defaultExecutorConfig, parseExecutorConfig } from "../../src/config/executor.ts";
import { OutputFlow, stalledClose, TerminalControls, type ControlActions } from "../../src/executor/terminals/terminal-flow.ts";
import { PerUserCap, requestCap, terminalCap } from "../../src/executor/terminals/user-caps.ts";
import { eventually } from "../harness.ts";

/** A WebSocket whose client takes nothing until told to, and a stream that records pauses. */
function fakeTerminal(limits = { bufferedBytes: 100, stalledMs: 30 }) {
  const state = { buffered: 0, closed: null as null | { code: number; reason: string }, paused: 0, resumed: 0 };
  const sink = {
    sendBinary: (data: Uint8Array) => ((state.buffered += data.length), -1),
    getBufferedAmount: () => state.buffered,
    close: (code: number, reason: string) => void (state.closed = { code, reason }),
  };
  const source = { pause: () => state.paused++, resume: () => state.resumed++ };
  return { state, flow: new OutputFlow(sink, source, limits) };
}

describe("OutputFlow: Docker's stream waits for the client", () => {
  test("under the limit nothing pauses; past it the stream pauses once, however much more comes", () => {
    const { state, flow } = fakeTerminal();
    flow.send(new Uint8Array(100));
    expect(state.paused).toBe(0);
    flow.send(new Uint8Array(1));
    flow.send(new Uint8Array(50));
    expect(state.paused).toBe(1);
    flow.end();
  });

  test("a drain while still over the limit does not resume; one under it does", () => {
    const { state, flow } = fakeTerminal();
    flow.send(new Uint8Array(150));
    flow.drained();
    expect(state.resumed).toBe(0);
    state.buffered = 100;
    flow.drained();
    expect(state.resumed).toBe(1);
    flow.drained();
    expect(state.resumed).toBe(1);
    flow.end();
  });

  test("a client that takes nothing is closed with the reason; one that came back in time, or left, is not", async () => {
    const stalled = fakeTerminal();
    const back = fakeTerminal();
    const left = fakeTerminal();
    for (const t of [stalled, back, left]) t.flow.send(new Uint8Array(150));
    back.state.buffered = 0;
    back.flow.drained();
    left.flow.end();
    await eventually(() => stalled.state.closed, 5000, { what: "the stalled terminal to be closed" });
    expect(stalled.state.closed).toEqual(stalledClose);
    expect(stalledClose.reason).toBe("output not read for 60 s: terminal closed");
    expect(back.state.closed).toBeNull();
    expect(left.state.closed).toBeNull();
    back.flow.end();
  });
});

/** Actions that take a millisecond (a Docker call), counting how many run at once. */
function recordedActions() {
  const calls: string[] = [];
  let running = 0;
  let most = 0;
  const call = async (what: string) => {
    calls.push(what);
    most = Math.max(most, ++running);
    await Bun.sleep(1); // the call's own latency (a Docker call), not a wait for anything
    running--;
  };
  const actions: ControlActions = { resize: (c, r) => call(`${c}x${r}`), signal: (name) => call(name) };
  return { actions, calls, most: () => most };
}

const fast = { callGapMs: 0, queuedSignals: 8 };

/** Sends a marker size and waits for it: whatever the line held before it has run by then (signals go first). */
async function settle(controls: TerminalControls, calls: string[], marker: number): Promise<void> {
  controls.resize(marker, marker);
  await eventually(() => calls.at(-1) === `${marker}x${marker}` || undefined, 2000, { what: `the marker ${marker}x${marker}` });
}

describe("TerminalControls: one Docker call at a time, the last size wins", () => {
  test("1,000 resizes while one is in flight: one more call, with the last size", async () => {
    const { actions, calls, most } = recordedActions();
    const controls = new TerminalControls(actions, fast);
    controls.start();
    controls.resize(80, 24);
    for (let i = 0; i < 1000; i++) controls.resize(100 + (i % 7), 30);
    controls.resize(123, 45);
    expect(calls).toEqual(["80x24"]);
    await eventually(() => calls.length === 2 || undefined, 2000, { what: "the second resize" });
    await settle(controls, calls, 7);
    expect(calls).toEqual(["80x24", "123x45", "7x7"]);
    expect(most()).toBe(1);
    controls.end();
  });

  test("nothing runs before start(); a size already set by resizeNow is not sent again", async () => {
    const { actions, calls } = recordedActions();
    const controls = new TerminalControls(actions, fast);
    controls.resize(80, 24);
    controls.signal("SIGINT");
    expect(calls).toEqual([]);
    await controls.resizeNow(80, 24);
    controls.start();
    await settle(controls, calls, 7);
    expect(calls).toEqual(["80x24", "SIGINT", "7x7"]);
    controls.end();
  });

  test("signals wait in a short line: 1,000 make at most 1 + 8 calls, in order", async () => {
    const { actions, calls, most } = recordedActions();
    const controls = new TerminalControls(actions, fast);
    controls.start();
    for (let i = 0; i < 1000; i++) controls.signal(i % 2 ? "SIGINT" : "SIGTERM");
    await settle(controls, calls, 7);
    expect(calls.length).toBe(10);
    expect(calls.slice(0, 3)).toEqual(["SIGTERM", "SIGINT", "SIGTERM"]);
    expect(most()).toBe(1);
    controls.end();
  });

  test("end(): what was waiting is dropped and nothing more is called", async () => {
    const { actions, calls } = recordedActions();
    const controls = new TerminalControls(actions, fast);
    controls.start();
    controls.resize(80, 24);
    controls.resize(81, 25);
    controls.signal("SIGINT");
    controls.end();
    controls.resize(82, 26);
    controls.signal("SIGTERM");
    // A later terminal's calls show the first one's line has had every chance to run.
    const other = recordedActions();
    const later = new TerminalControls(other.actions, fast);
    later.start();
    later.resize(1, 1);
    await settle(later, other.calls, 2);
    await settle(later, other.calls, 3);
    expect(calls).toEqual(["80x24"]);
    later.end();
  });
});

describe("PerUserCap: per-user places, root not counted", () => {
  test("up to the limit, then a ConflictError that says what to do; a place given back (once) can be taken again", () => {
    const cap = terminalCap(2);
    const a = cap.take(1001);
    cap.take(1001);
    expect(() => cap.take(1001)).toThrow(new ConflictError("you have 2 terminals open on this node, the most allowed (maxTerminalsPerUser): close one first"));
    expect(cap.take(1002)).toBeFunction();
    a();
    a();
    expect(cap.count(1001)).toBe(1);
    cap.take(1001);
    expect(() => cap.take(1001)).toThrow(ConflictError);
  });

  test("root takes no place", () => {
    const cap = new PerUserCap(1, () => "full");
    for (let i = 0; i < 10; i++) cap.take(0);
    expect(cap.count(0)).toBe(0);
  });

  test("requests in flight: the refusal names the count", () => {
    const cap = requestCap(1);
    cap.take(5);
    expect(() => cap.take(5)).toThrow("you have 1 requests in flight on this node, the most allowed: wait for them to finish");
  });
});

test("executor config maxTerminalsPerUser: 64 by default, a whole number from 1", () => {
  expect(defaultExecutorConfig().maxTerminalsPerUser).toBe(64);
  expect(parseExecutorConfig({ maxTerminalsPerUser: 3 }, "config.yml").maxTerminalsPerUser).toBe(3);
  expect(() => parseExecutorConfig({ maxTerminalsPerUser: 0 }, "config.yml")).toThrow(new ConfigError("config.yml: maxTerminalsPerUser must be a whole number, 1 or more"));
});
