/** The real SessionManager wired to the simulated world: a fake engine, fake GPUs and users, a virtual clock. */
import { defaultExecutorConfig } from "../../src/config/executor.ts";
import type { SessionInfo } from "../../src/executor/api-types.ts";
import { drainExecutor } from "../../src/executor/drain.ts";
import { SessionManager } from "../../src/executor/sessions/manager.ts";
import { TicketBook } from "../../src/executor/claims/tickets.ts";
import { ownRef } from "../../src/executor/sessions/lookup.ts";
import type { SessionEngine } from "../../src/runtime/docker/engine.ts";
import type { Clock } from "../../src/util/clock.ts";
import type { SimEnv, SimManager } from "./driver.ts";

/** One executor incarnation's view of the fake engine: each call answers only while that incarnation lives. */
function engineView(env: SimEnv): SessionEngine {
  const { engine, owner } = env;
  const call = <T>(what: string, fn: () => T) => engine.call(owner, what, fn);
  return {
    listManaged: () =>
      call("list", () =>
        engine.existing().map((c) => ({ id: c.id, sessionId: c.sessionId, state: c.state, labels: c.labels, image: "img", created: 0, ports: [], mounts: [], exitCode: c.exitCode })),
      ),
    ensureImage: () => call("image", () => "sha256:img"),
    create: (spec) => call("create", () => engine.createNow(spec as Record<string, unknown>)),
    imageFacts: () => call("facts", () => ({ passwd: "root:x:0:0::/root:/bin/sh\n", group: "root:x:0:\n", hasEtc: true, hasBash: false, hasShell: true })),
    start: (id) => call("start", () => engine.startNow(id)),
    wait: (id) => engine.wait(owner, id),
    stop: (id) =>
      call("stop", () => {
        const c = engine.containers.get(id);
        if (c && c.state === "running") engine.exit(c, 143);
      }),
    remove: (id) =>
      call("remove", () => {
        if (engine.containers.get(id)?.state !== "removed") engine.removeNow(id);
      }),
    exists: (id) => call("inspect", () => engine.containers.get(id)?.state !== "removed" && engine.containers.has(id)),
    publishedState: () => call("inspect", () => ({ running: true, ports: {}, networks: { bridge: { NetworkID: "n" } } })),
  };
}

export function simManager(env: SimEnv): SimManager {
  const { sim, gpus, owner } = env;
  const clock: Clock = {
    now: () => sim.now,
    sleep: (ms) => sim.sleep(ms, owner),
    later: (ms, fn) => sim.after(ms, fn, owner),
  };
  const history: SessionInfo[] = [];
  let onClaim: SimManager["onClaim"];
  const manager = new SessionManager({
    config: { ...defaultExecutorConfig(), nodeName: "sim", mountPaths: [], defaultImage: "img", stateDir: env.stateDir, ...env.config },
    engine: engineView(env),
    inventory: { get: () => new Promise((resolve) => sim.after(sim.int(0, 5), () => resolve(gpus.inventory()), owner)) },
    users: {
      lookup: async (uid) => ({ name: `u${uid}`, uid, gid: uid, groups: [uid], home: "/tmp", gecos: "" }),
      groupName: async (gid) => `g${gid}`,
    },
    history: { add: (info) => void history.push(info), all: () => history },
    log: env.log,
    clock,
    onClaim: (event, effects) => onClaim?.(event, effects),
    node: { beakerBinary: null, memlock: -1, cpus: 8, memoryBytes: 64 * 1024 ** 3 },
    tickets: new TicketBook(env.ticketKey),
    places: env.disk,
  });
  return {
    create: (uid, req, emit, signal) => manager.create(uid, req, emit, signal),
    stop: (uid, ref, timeout) => manager.stop(uid, ownRef(ref), timeout),
    reconcile: () => manager.reconcile(),
    restoreQueue: () => manager.claims.restoreQueue(),
    drain: () => drainExecutor(manager, []),
    claims: () => manager.claims.byGpu(),
    tracked: () => new Set([...manager.sessions.keys(), ...manager.pending.keys()]),
    set onClaim(fn: SimManager["onClaim"]) {
      onClaim = fn;
    },
    shownTwice: (what) => {
      const ids = what === "report" ? manager.liveSessions().map((s) => s.id) : manager.list(0, true).map((s) => s.id);
      const seen = new Set<string>();
      for (const id of ids) {
        if (seen.has(id)) return `session ${id} shown twice in ${what === "report" ? "the server's report" : "session list --all"}`;
        seen.add(id);
      }
      return null;
    },
    holdsOverlap: () => {
      const seen = new Map<string, string>();
      for (const [sessionId, hold] of manager.claims.state.holds) {
        for (const uuid of hold.gpus) {
          if (seen.has(uuid)) return `GPU ${uuid} held by both ${seen.get(uuid)} and ${sessionId}`;
          seen.set(uuid, sessionId);
        }
      }
      return null;
    },
  };
}
