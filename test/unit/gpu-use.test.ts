/**
 * The GPU-use monitor on the real SessionManager and claim state machine, in virtual time: a fake nvidia-smi answer per
 * sample, sessions put in place as reconcile would adopt them, stops carried out by a fake engine. Also measures the
 * memory its history structures take for 64 sessions sampled every second.
 */
import { describe, expect, test } from "bun:test";
import { defaultExecutorConfig, type ExecutorConfig } from "../../src/config/executor.ts";
import { defaultGpuIdlePolicy, type GpuIdlePolicy } from "../../src/config/gpu-use.ts";
import type { CreateEvent, SessionInfo } from "../../src/executor/api-types.ts";
import { GpuHistory } from "../../src/executor/gpu/gpu-history.ts";
import { GpuUseMonitor } from "../../src/executor/gpu/gpu-use.ts";
import { ServerLink, steadyFigure } from "../../src/executor/server-link.ts";
import { gate, type LiveSession } from "../../src/executor/sessions/types.ts";
import { SessionManager } from "../../src/executor/sessions/manager.ts";
import { TicketBook } from "../../src/executor/claims/tickets.ts";
import type { Gpu, Inventory } from "../../src/gpu/types.ts";
import type { SessionEngine } from "../../src/runtime/docker/engine.ts";
import { Trace } from "../../src/util/trace.ts";
import { ownRef } from "../../src/executor/sessions/lookup.ts";

const start = Date.parse("2030-01-07T09:00:00Z");

function fakeNode(options: { gpus: number; config?: Partial<ExecutorConfig>; groups?: Record<number, string[]> }) {
  let now = start;
  const uuids = Array.from({ length: options.gpus }, (_, i) => `GPU-${String(i).padStart(4, "0")}`);
  /** Each GPU's utilization in the next sample (null: nvidia-smi gave none); `failing` makes the whole call fail. */
  const util = new Map(uuids.map((u) => [u, 0 as number | null]));
  let failing = false;
  const logs: string[] = [];
  const notices: Array<[string, string]> = [];
  const stopped: Array<[string, string | null]> = [];
  const sessions = new Map<string, LiveSession>();
  const inventory = (): Inventory => ({
    gpus: uuids.map(
      (uuid, index): Gpu => ({
        index,
        uuid,
        name: "Fake GPU",
        busId: null,
        memoryTotalMiB: 40960,
        memoryUsedMiB: 1024,
        utilization: util.get(uuid) ?? null,
        migMode: null,
        migDevices: [],
        processes: [],
        healthy: true,
        error: null,
      }),
    ),
    driverVersion: null,
    cudaVersion: null,
    source: "xml",
    error: failing ? "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver" : null,
    note: null,
  });
  const engine = {
    stop: async (id: string) => {
      const session = sessions.get(id)!;
      stopped.push([session.info.id, session.stopReason]);
      Object.assign(session.info, { status: "exited", reason: session.stopReason });
      manager.sessions.delete(session.info.id);
      manager.claims.dispatch({ type: "ended", sessionId: session.info.id });
      (session as unknown as { end(): void }).end();
    },
  } as unknown as SessionEngine;
  const config: ExecutorConfig = { ...defaultExecutorConfig(), nodeName: "fake", gpuSampleInterval: 1, ...options.config };
  const manager = new SessionManager({
    config,
    engine,
    inventory: { get: async () => inventory() },
    users: {
      lookup: async (uid) => ({ name: `u${uid}`, uid, gid: uid, groups: [uid + 1000], home: "/tmp", gecos: "" }),
      groupName: async (gid) => options.groups?.[gid - 1000]?.[0] ?? `g${gid}`,
    },
    history: { add: () => {}, all: () => [] },
    log: (line) => logs.push(line),
    clock: { now: () => now, sleep: async () => {}, later: () => {} },
    node: { beakerBinary: null, memlock: -1, cpus: 8, memoryBytes: 64 * 2 ** 30 },
    tickets: new TicketBook(new Uint8Array(32)),
    places: { load: () => [], save: () => {} },
  });
  const monitor = new GpuUseMonitor(manager, { sample: async () => (failing ? { ...inventory(), gpus: [] } : inventory()), notify: (s, message) => notices.push([s.info.id, message]) });
  manager.gpuUse = monitor;
  manager.claims.dispatch({ type: "inventory", total: uuids.length, usable: uuids, error: null });

  /** A running session, as reconcile adopts one: its container is in the listing, its claim confirmed. */
  function run(id: string, gpus: string[], over: { uid?: number; timeLimit?: number } = {}): LiveSession {
    const uid = over.uid ?? 1001;
    const info: SessionInfo = {
      id,
      name: id,
      node: "fake",
      user: `u${uid}`,
      account: null,
      uid,
      gpus,
      image: "img",
      status: "running",
      tty: true,
      requestedGpus: gpus.length,
      ports: [],
      mounts: [],
      createdAt: new Date(now).toISOString(),
      startedAt: new Date(now).toISOString(),
      finishedAt: null,
      queuePosition: null,
      exitCode: null,
      reason: null,
      slurmJob: null,
    };
    let end!: () => void;
    const exited = new Promise<{ code: number; reason: "exited" }>((resolve) => (end = () => resolve({ code: 143, reason: "exited" })));
    const session = { info, containerId: id, exited, stopReason: null, requestedPorts: [], timeLimit: over.timeLimit ?? null, startGate: gate(), terminals: 1, lastAttached: now, releaseMounts: async () => {}, end, trace: new Trace() } as LiveSession;
    sessions.set(id, session);
    manager.sessions.set(id, session);
    const containers = [...manager.sessions.values()].map((s) => ({ sessionId: s.info.id, uid: s.info.uid, gpus: s.info.gpus, running: true }));
    manager.claims.dispatch({ type: "listing", since: manager.claims.state.epoch, containers });
    return session;
  }

  /** Runs samples one interval apart for `seconds` of virtual time. */
  async function advance(seconds: number): Promise<void> {
    for (let i = 0; i < seconds / config.gpuSampleInterval; i++) {
      now += config.gpuSampleInterval * 1000;
      await monitor.tick();
      await Promise.resolve();
    }
  }

  return {
    uuids,
    util,
    manager,
    monitor,
    logs,
    notices,
    stopped,
    run,
    advance,
    setFailing: (f: boolean) => (failing = f),
    jump: (ms: number) => (now += ms),
    now: () => now,
  };
}

const idle = (over: Partial<GpuIdlePolicy> = {}): GpuIdlePolicy => ({ ...defaultGpuIdlePolicy, after: 6, ...over });

describe("idle reclaim in virtual time", () => {
  test("an idle session is warned on its terminals, then stopped with reason idle GPUs; a busy one is not", async () => {
    const node = fakeNode({ gpus: 2, config: { gpuIdle: idle() } });
    node.util.set(node.uuids[1]!, 90);
    node.run("idle1", [node.uuids[0]!]);
    node.run("busy1", [node.uuids[1]!]);
    await node.advance(1);
    expect(node.notices).toEqual([["idle1", expect.stringContaining("its GPUs have been idle (under 5%) for 0s: this session stops at")]]);
    expect(node.manager.list(0, true).find((s) => s.id === "idle1")).toMatchObject({ idleAction: "stop", idleSince: new Date(start + 1000).toISOString(), idleStopsAt: new Date(start + 7000).toISOString() });
    await node.advance(5);
    expect(node.stopped).toEqual([]);
    await node.advance(1);
    expect(node.stopped).toEqual([["idle1", "idle GPUs"]]);
    expect(node.notices.at(-1)).toEqual(["idle1", "stopping this session: its GPUs have been idle (under 5%) for 6s"]);
    await node.advance(30);
    expect(node.stopped).toEqual([["idle1", "idle GPUs"]]);
    const busy = node.manager.list(0, true).find((s) => s.id === "busy1")!;
    expect(busy).toMatchObject({ idleSince: null, gpuUtilization: [{ uuid: node.uuids[1], last: 90, mean5m: 90, mean1h: 90 }] });
    expect(busy.gpuMemoryUsedMiB).toEqual([{ uuid: node.uuids[1]!, last: 1024, mean5m: 1024, mean1h: 1024, totalMiB: 40960 }]);
  });

  test("a session whose GPU goes busy again is no longer idle, and its stop clock starts over", async () => {
    const node = fakeNode({ gpus: 1, config: { gpuIdle: idle() } });
    node.run("s", [node.uuids[0]!]);
    await node.advance(5);
    node.util.set(node.uuids[0]!, 80);
    await node.advance(3);
    expect(node.manager.list(0, true)[0]).toMatchObject({ idleSince: null, idleStopsAt: null });
    node.util.set(node.uuids[0]!, 0);
    await node.advance(6);
    expect(node.stopped).toEqual([]);
    await node.advance(1);
    expect(node.stopped).toEqual([["s", "idle GPUs"]]);
  });

  test("a failed sample is logged, never counts as idle, and a clock jump is not idle time", async () => {
    const node = fakeNode({ gpus: 1, config: { gpuIdle: idle() } });
    node.run("s", [node.uuids[0]!]);
    await node.advance(5);
    node.setFailing(true);
    await node.advance(2);
    expect(node.logs.filter((l) => l.startsWith("GPU sample failed"))).toHaveLength(1);
    node.setFailing(false);
    await node.advance(5);
    expect(node.stopped).toEqual([]);
    node.jump(3600_000);
    await node.advance(5);
    expect(node.stopped).toEqual([]);
    await node.advance(2);
    expect(node.stopped).toEqual([["s", "idle GPUs"]]);
  });

  test("keep --for defers the stop once per idle run; the second is refused", async () => {
    const node = fakeNode({ gpus: 1, config: { gpuIdle: idle() } });
    node.run("s", [node.uuids[0]!], { uid: 1001 });
    await node.advance(3);
    node.monitor.keep(1001, ownRef("s"), 20);
    expect(() => node.monitor.keep(1001, ownRef("s"), 20)).toThrow("was already kept once while its GPUs have been idle");
    expect(() => node.monitor.keep(1002, ownRef("s"), 20)).toThrow("no session s of yours on this node");
    await node.advance(19);
    expect(node.stopped).toEqual([]);
    await node.advance(1);
    expect(node.stopped).toEqual([["s", "idle GPUs"]]);
  });

  test("onlyWhenQueued: an idle session stops only while a request waits, the longest idle first, and the request gets its GPUs", async () => {
    const node = fakeNode({ gpus: 2, config: { gpuIdle: idle({ onlyWhenQueued: true }) } });
    node.run("older", [node.uuids[0]!]);
    await node.advance(2);
    node.run("newer", [node.uuids[1]!]);
    await node.advance(20);
    expect(node.stopped).toEqual([]);
    expect(node.manager.list(0, true).map((s) => s.idleAction)).toEqual(["stop-when-queued", "stop-when-queued"]);
    const events: CreateEvent[] = [];
    const granted = node.manager.claims.claim("waiting", { uid: 1002, count: 1, noWait: false }, (e) => events.push(e), new AbortController().signal);
    expect(events[0]).toMatchObject({ type: "queued", position: 1, freeBy: null });
    await node.advance(1);
    expect(node.stopped).toEqual([["older", "idle GPUs"]]);
    expect(await granted).toEqual([node.uuids[0]!]);
  });

  test("maxDuration and --time stop with reason time limit, warned before; the queue then says when GPUs are free", async () => {
    const node = fakeNode({ gpus: 2, config: { maxDuration: 3600 } });
    node.run("long", [node.uuids[0]!]);
    node.run("short", [node.uuids[1]!], { timeLimit: 1200 });
    expect(node.manager.list(0, true).map((s) => s.deadline)).toEqual([new Date(start + 3600_000).toISOString(), new Date(start + 1200_000).toISOString()]);
    const events: CreateEvent[] = [];
    const granted = node.manager.claims.claim("waiting", { uid: 1002, count: 2, noWait: false }, (e) => events.push(e), new AbortController().signal);
    // Both GPUs are certain to be free once the later limit has passed (plus a sample and a stop).
    const freeBy = Date.parse((events[0] as { freeBy: string }).freeBy);
    expect(freeBy).toBeGreaterThanOrEqual(start + 3600_000);
    expect(freeBy).toBeLessThanOrEqual(start + 3600_000 + 60_000);
    await node.advance(1200 - 15 * 60);
    expect(node.notices).toEqual([["short", expect.stringContaining("this session reaches its time limit at")]]);
    await node.advance(15 * 60);
    expect(node.stopped).toEqual([["short", "time limit"]]);
    await node.advance(2400);
    expect(node.stopped).toEqual([
      ["short", "time limit"],
      ["long", "time limit"],
    ]);
    expect(await granted).toEqual(node.uuids);
    expect(Date.now()).toBeLessThan(freeBy);
  });

  test("an exempt user (by group) is never stopped for idle GPUs", async () => {
    const node = fakeNode({ gpus: 1, config: { gpuIdle: idle({ exempt: ["gpu-admins"] }) }, groups: { 1001: ["gpu-admins"] } });
    node.run("s", [node.uuids[0]!], { uid: 1001 });
    await node.advance(60);
    expect(node.stopped).toEqual([]);
    expect(node.notices).toEqual([]);
    expect(node.manager.list(0, true)[0]).toMatchObject({ idleAction: null, idleSince: new Date(start + 1000).toISOString() });
  });
});

describe("what the server is told", () => {
  test("figures are steady: rounded to a step, kept while within a step of the last one reported", () => {
    expect(steadyFigure(undefined, 93, 10)).toBe(90);
    expect(steadyFigure(90, 97, 10)).toBe(90);
    expect(steadyFigure(90, 100, 10)).toBe(100);
    expect(steadyFigure(90, 81, 10)).toBe(90);
    expect(steadyFigure(90, 79, 10)).toBe(80);
    expect(steadyFigure(90, null, 10)).toBeNull();
    expect(steadyFigure(null, 4, 10)).toBe(0);
  });

  test("a report is byte for byte the last one while use jitters, and changes when it really changes", async () => {
    const node = fakeNode({ gpus: 2, config: { gpuIdle: idle({ after: 3600 }) } });
    node.run("s", [node.uuids[0]!]);
    const link = new ServerLink({ serverUrl: "http://127.0.0.1:9", tokenFile: "/nonexistent", nodeName: "fake", cluster: null, intervalMs: 5000 }, { sessions: node.manager, use: node.monitor }, () => {});
    node.util.set(node.uuids[0]!, 93);
    await node.advance(30);
    const first = JSON.stringify(await link.report());
    for (const u of [97, 88, 95, 91]) {
      node.util.set(node.uuids[0]!, u);
      await node.advance(5);
      expect(JSON.stringify(await link.report())).toBe(first);
    }
    node.util.set(node.uuids[0]!, 20);
    await node.advance(600);
    const later = await link.report();
    expect(later.gpus[0]).toMatchObject({ utilization: 20, memoryUsedMiB: 1024 });
    expect(later.sessions[0]).toMatchObject({ id: "s", utilization: [20], idleSince: null, deadline: null });
  });
});

describe("memory", () => {
  // Counted in samples, never timed: the monitor runs ten minutes of virtual time; the rings alone (what the monitor
  // keeps per sample) run the 25 hours, so the test does a fixed amount of work however loaded the machine is.
  const slot = 8 + 64 * (1 + 4);
  const heap = () => {
    Bun.gc(true);
    return process.memoryUsage().heapUsed;
  };
  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;

  test("64 sessions sampled every second: the monitor's history grows by doubling, to at most twice the samples held", async () => {
    const node = fakeNode({ gpus: 64, config: { gpuIdle: idle({ after: 2 * 86400 }) } });
    node.uuids.forEach((uuid, i) => {
      node.util.set(uuid, i % 2 === 0 ? 0 : 50);
      node.run(`s${i}`, [uuid]);
    });
    await node.advance(60);
    const historyAt1m = node.monitor.historyBytes();
    await node.advance(540);
    const historyAt10m = node.monitor.historyBytes();
    expect(historyAt1m).toBeLessThanOrEqual(2 * 61 * slot);
    expect(historyAt10m).toBeLessThanOrEqual(2 * 601 * slot);
    expect(historyAt10m).toBeGreaterThanOrEqual(600 * slot);
    expect(node.manager.list(0, true)).toHaveLength(64);
  });

  test("64 GPUs: the rings stop at 24 h of samples and do not grow after (at one a second: 27 MiB)", () => {
    const uuids = Array.from({ length: 64 }, (_, i) => `GPU-${i}`);
    // The bound is samples, not time: a sample a minute fills the same rings in 1,441 samples instead of 86,401.
    expect(new GpuHistory(uuids, 1000).capacity).toBe(24 * 3600 + 1);
    const history = new GpuHistory(uuids, 60_000);
    const values = new Map(uuids.map((u, i) => [u, { utilization: i % 2 ? 50 : 0, memoryUsedMiB: 1024 }]));
    let at = start;
    const record = (samples: number) => {
      for (let i = 0; i < samples; i++) history.record((at += 60_000), values);
    };
    const bound = (24 * 60 + 1) * slot;
    record(1024);
    expect(history.bytes()).toBe(1024 * slot);
    record(24 * 60 + 1 - 1024);
    expect(history.bytes()).toBe(bound);
    const heapAt24h = heap();
    record(60);
    expect(history.bytes()).toBe(bound);
    const heapAt25h = heap();
    expect(history.means("GPU-1", at, 0).utilization).toEqual({ last: 50, mean5m: 50, mean1h: 50 });
    const perSecond = (24 * 3600 + 1) * slot;
    console.log(`GPU history, 64 GPUs: rings ${kib(bound)} from 24 h on at a sample a minute, ${(perSecond / 2 ** 20).toFixed(1)} MiB at one a second; JS heap ${kib(heapAt25h - heapAt24h)} from 24 to 25 h`);
  });
});
