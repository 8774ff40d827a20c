/** Warm network namespaces (src/executor/network/netns-pool.ts) against an engine kept in memory: what is made, handed out, kept and removed. */
import { describe, expect, test } from "bun:test";
import type Dockerode from "dockerode";
import { holderLabel, holdersHelp, NetnsPool, planTend, poolSize, type HolderEngine } from "../../src/executor/network/netns-pool.ts";
import { netnsHolderLabel } from "../../src/runtime/docker/spec.ts";

interface Box {
  spec: Dockerode.ContainerCreateOptions;
  running: boolean;
}

/** Docker as far as the pool sees it: containers by ID, sessions naming their holder in a label. */
class MemoryEngine {
  boxes = new Map<string, Box>();
  sessions: Array<{ labels: Record<string, string> }> = [];
  image: string | null = "sha256:default";
  hasShell = true;
  failStart = false;
  private next = 0;

  readonly engine: HolderEngine = {
    create: async (spec) => {
      const id = `c${this.next++}`;
      this.boxes.set(id, { spec, running: false });
      return id;
    },
    start: async (id) => {
      if (this.failStart) throw new Error("no space left on device");
      this.boxes.get(id)!.running = true;
    },
    remove: async (id) => void this.boxes.delete(id),
    imageId: async () => this.image,
    imageFacts: async () => ({ passwd: "", group: "", hasShell: this.hasShell }) as never,
    listManaged: async () => this.sessions as never,
    listLabelled: async (label) =>
      [...this.boxes].filter(([, b]) => `${holderLabel}=${b.spec.Labels?.[holderLabel]}` === label).map(([id, b]) => ({ id, running: b.running })),
    isRunning: async (id) => this.boxes.get(id)?.running ?? false,
  };

  holders(): string[] {
    return [...this.boxes.keys()];
  }
}

const config = { nodeName: "gpu-07.lab", sessionNetwork: "beaker-sessions", defaultImage: "debian:bookworm" };

function pool(engine = new MemoryEngine()) {
  const logged: string[] = [];
  let now = 1000;
  const p = new NetnsPool(engine.engine, config, (line) => logged.push(line), () => now);
  return { engine, pool: p, logged, tick: (ms: number) => (now += ms) };
}

describe("warm network namespaces", () => {
  test("only a user-defined network has an embedded DNS to set up: the others get no holders", () => {
    expect(holdersHelp("beaker-sessions")).toBe(true);
    for (const network of ["bridge", "host", "none", "default", "container:abc"]) expect(holdersHelp(network)).toBe(false);
  });

  test("a tend makes the pool; each take hands out a different running holder, then none", async () => {
    const { engine, pool: p } = pool();
    await p.tend();
    expect(engine.holders()).toHaveLength(poolSize);
    const spec = engine.boxes.get(engine.holders()[0]!)!.spec;
    expect(spec).toMatchObject({
      Image: "sha256:default",
      User: "65534:65534",
      Hostname: "gpu-07",
      Labels: { [holderLabel]: "gpu-07.lab" },
      HostConfig: { NetworkMode: "beaker-sessions", CapDrop: ["ALL"], SecurityOpt: ["no-new-privileges"], ReadonlyRootfs: true, Init: true },
    });
    const taken = [await p.take("s1"), await p.take("s2"), await p.take("s3")];
    expect(taken[0]).not.toBe(taken[1]);
    expect(taken.slice(0, 2).every((id) => id !== null && engine.boxes.get(id)!.running)).toBe(true);
    expect(taken[2]).toBeNull();
  });

  test("refill makes the pool up again, in the background and one at a time", async () => {
    const { engine, pool: p } = pool();
    await p.tend();
    await p.take("s1");
    await p.take("s2");
    p.refill();
    p.refill();
    await p.close().catch(() => {});
    // close waited for the refills; then removed the idle ones (nothing names the taken two, so they went too).
    expect(engine.holders()).toEqual([]);
  });

  test("a holder whose container was never made goes at once; one whose session ended goes with it", async () => {
    const { engine, pool: p } = pool();
    await p.tend();
    const [a, b] = [(await p.take("s1"))!, (await p.take("s2"))!];
    p.settle(a, false);
    expect(engine.boxes.has(a)).toBe(false);
    p.settle(b, true);
    engine.sessions = [{ labels: { [netnsHolderLabel]: b } }];
    await p.tend();
    expect(engine.boxes.has(b)).toBe(true);
    p.ended("s2");
    expect(engine.boxes.has(b)).toBe(false);
  });

  test("a dead idle holder is never handed out: the next one is, and the dead one goes", async () => {
    const { engine, pool: p } = pool();
    await p.tend();
    const [first, second] = engine.holders();
    engine.boxes.get(first!)!.running = false;
    expect(await p.take("s1")).toBe(second!);
    expect(engine.boxes.has(first!)).toBe(false);
  });

  test("after a restart: holders no session names go, those running sessions joined stay, the pool is made again", async () => {
    const engine = new MemoryEngine();
    const before = pool(engine);
    await before.pool.tend();
    const joined = (await before.pool.take("s1"))!;
    before.pool.settle(joined, true);
    engine.sessions = [{ labels: { [netnsHolderLabel]: joined } }];
    // The old executor dies without closing; a new one tends what it finds.
    const after = pool(engine);
    await after.pool.tend();
    const left = engine.holders();
    expect(left).toContain(joined);
    expect(left).toHaveLength(1 + poolSize);
    await after.pool.close();
    expect(engine.holders()).toEqual([joined]);
  });

  test("no default image here, or one without /bin/sh: no holders, said once, and sessions make their own namespace", async () => {
    for (const setup of [(e: MemoryEngine) => (e.image = null), (e: MemoryEngine) => (e.hasShell = false)]) {
      const { engine, pool: p, logged } = pool();
      setup(engine);
      await p.tend();
      await p.tend();
      expect(engine.holders()).toEqual([]);
      expect(await p.take("s1")).toBeNull();
      expect(logged).toEqual([expect.stringContaining("no warm network namespaces: the default image debian:bookworm")]);
    }
  });

  test("a holder that cannot start is removed and the failure logged; sessions go on without one", async () => {
    const { engine, pool: p, logged } = pool();
    engine.failStart = true;
    await p.tend();
    await p.tend();
    expect(engine.holders()).toEqual([]);
    expect(logged).toEqual(["network holders: no space left on device"]);
    expect(await p.take("s1")).toBeNull();
  });
});

describe("planTend", () => {
  const holders = [
    { id: "idle", running: true },
    { id: "dead-idle", running: false },
    { id: "named", running: true },
    { id: "being-made", running: true },
    { id: "made-after-listing", running: true },
    { id: "made-before-listing", running: true },
    { id: "stray", running: true },
  ];
  const plan = planTend({
    holders,
    named: new Set(["named"]),
    idle: ["idle", "dead-idle"],
    taken: new Map([
      ["named", 50],
      ["being-made", null],
      ["made-after-listing", 120],
      ["made-before-listing", 90],
    ]),
    since: 100,
  });
  test("keeps what a session names, what a create holds, and the running idle ones", () => {
    expect(plan.idle).toEqual(["idle"]);
    expect([...plan.taken.keys()].sort()).toEqual(["being-made", "made-after-listing", "named"]);
  });
  test("removes dead idle ones, strays, and holders whose session the listing no longer shows", () => {
    expect(plan.remove.sort()).toEqual(["dead-idle", "made-before-listing", "stray"]);
  });
});
