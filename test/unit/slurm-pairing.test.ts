/** scheduler: slurm decided without Slurm: pairing jobs with sessions, GPUs assigned by a job, and the requests' checks. */
import { describe, expect, test } from "bun:test";
import { defaultExecutorConfig } from "../../src/config/executor.ts";
import { UsageError } from "../../src/errors.ts";
import { buildCreateRequest, slurmRequest } from "../../src/executor/create-request.ts";
import { loginFlowWanted } from "../../src/cli/commands/session/slurm-create.ts";
import { slurmTime } from "../../src/slurm/allocation.ts";
import { initialClaims, step, type ClaimState } from "../../src/executor/claims/claims.ts";
import { prepareSession } from "../../src/executor/sessions/prepare.ts";
import { planPairing, type PairingInput } from "../../src/executor/slurm/slurm-pairing.ts";
import { parseCreateRequest } from "../../src/executor/validate.ts";
import { buildContainerSpec } from "../../src/runtime/docker/spec.ts";
import type { SlurmJob } from "../../src/slurm/job.ts";

const job = (id: string, name: string, over: Partial<SlurmJob> = {}): SlurmJob => ({
  id,
  name,
  uid: 1000,
  user: "ada",
  state: "RUNNING",
  reason: null,
  partition: "gpu",
  account: null,
  qos: null,
  startTime: null,
  endTime: null,
  nodes: ["n1"],
  gpusByNode: { n1: [0] },
  ...over,
});

const input = (over: Partial<PairingInput>): PairingInput => ({ node: "n1", live: [], pending: [], jobs: [], orphanSince: new Map(), now: 100_000, graceMs: 60_000, ...over });
const sid = "0123456789ab";

describe("pairing sessions with Slurm's jobs", () => {
  test("a session whose job still runs here stays; its job's current record comes with it", () => {
    const plan = planPairing(input({ live: [{ sessionId: sid, job: "7", status: "running" }], jobs: [job("7", `beaker-${sid}`)] }));
    expect(plan).toMatchObject({ ended: [], cancel: [], current: [{ sessionId: sid, job: { id: "7" } }] });
  });

  test("a session whose job Slurm no longer lists here is to be stopped (after Slurm confirms)", () => {
    const plan = planPairing(input({ live: [{ sessionId: sid, job: "7", status: "running" }], jobs: [job("7", "x", { nodes: ["n2"] }), job("8", "y", { state: "COMPLETING" })] }));
    expect(plan.ended).toEqual([{ sessionId: sid, job: "7" }]);
  });

  test("a session already stopping is left alone", () => {
    expect(planPairing(input({ live: [{ sessionId: sid, job: "7", status: "stopping" }] })).ended).toEqual([]);
  });

  test("an executor's job whose session is over is cancelled at once, as its owner", () => {
    const plan = planPairing(input({ jobs: [job("7", `beaker-${sid}`, { uid: 1001 })] }));
    expect(plan.cancel).toEqual([{ job: "7", uid: 1001, why: `its session ${sid} is over` }]);
  });

  test("a request still waiting keeps its job, even before salloc has told it the id", () => {
    expect(planPairing(input({ pending: [{ sessionId: sid, job: null }], jobs: [job("7", `beaker-${sid}`)] })).cancel).toEqual([]);
  });

  test("a login node's job with no session is cancelled only after the grace period", () => {
    const first = planPairing(input({ jobs: [job("9", "beaker")] }));
    expect(first.cancel).toEqual([]);
    expect([...first.orphanSince]).toEqual([["9", 100_000]]);
    const later = planPairing(input({ jobs: [job("9", "beaker")], orphanSince: first.orphanSince, now: 160_000 }));
    expect(later.cancel).toEqual([{ job: "9", uid: 1000, why: "no session has run in it for 60 s" }]);
    // A session started in it meanwhile: paired, and its clock forgotten.
    const used = planPairing(input({ jobs: [job("9", "beaker")], orphanSince: first.orphanSince, now: 160_000, live: [{ sessionId: sid, job: "9", status: "running" }] }));
    expect(used).toMatchObject({ cancel: [], orphanSince: new Map() });
  });

  test("anyone's other jobs are never cancelled", () => {
    const plan = planPairing(input({ jobs: [job("3", "train"), job("4", "beaker-mine"), job("5", "wrap", { uid: 1002 })], now: 10 ** 9 }));
    expect(plan.cancel).toEqual([]);
  });
});

describe("the claim state machine under Slurm", () => {
  const readyState = (): ClaimState => {
    let s = step(initialClaims(), { type: "inventory", total: 4, usable: ["G0", "G1", "G2", "G3"], error: null }).state;
    return step(s, { type: "listing", since: s.epoch, containers: [] }).state;
  };

  test("the job's GPUs are held as the session's; the same GPU for another session is refused", () => {
    const a = step(readyState(), { type: "assigned", sessionId: "a", uid: 1000, gpus: ["G1", "G2"] });
    expect(a.effects).toEqual([]);
    expect(a.state.holds.get("a")).toMatchObject({ gpus: ["G1", "G2"], stage: "reserved" });
    const b = step(a.state, { type: "assigned", sessionId: "b", uid: 1001, gpus: ["G2", "G3"] });
    expect(b.effects).toEqual([{ type: "refuse", sessionId: "b", reason: "busy", message: "Slurm gave this job GPU G2, which session a still holds" }]);
    expect(b.state.holds.has("b")).toBe(false);
    // Ended: the GPUs are free for the next job's session.
    const c = step(step(b.state, { type: "ended", sessionId: "a" }).state, { type: "assigned", sessionId: "b", uid: 1001, gpus: ["G2", "G3"] });
    expect(c.state.holds.get("b")?.gpus).toEqual(["G2", "G3"]);
  });
});

describe("Slurm in create requests", () => {
  const body = { gpus: 1, image: null, name: null, cpus: null, memory: null, sharedMemory: null, ports: [], env: [], mounts: [], workdir: null, command: [], cwd: "/home/ada", tty: false, term: null, noWait: false, detach: false };
  const slurm = { job: null, partition: "gpu", account: null, qos: null };

  test("the executor takes a Slurm part, or none (an older CLI), and checks its shape", () => {
    expect(parseCreateRequest({ ...body, slurm }).slurm).toEqual(slurm);
    expect(parseCreateRequest(body).slurm).toBeUndefined();
    expect(() => parseCreateRequest({ ...body, slurm: { ...slurm, job: "12; rm" } })).toThrow(new UsageError("slurm.job must be a Slurm job ID (a number)"));
    expect(() => parseCreateRequest({ ...body, slurm: { ...slurm, extra: 1 } })).toThrow(new UsageError('slurm has an unknown field "extra"'));
    expect(() => parseCreateRequest({ ...body, slurm: { job: null } })).toThrow(new UsageError('slurm has no "partition"'));
  });

  test("flags -> the Slurm part; none given: null", () => {
    expect(slurmRequest({})).toBeNull();
    expect(slurmRequest({ partition: "gpu" })).toEqual({ job: null, partition: "gpu", account: null, qos: null });
    expect(() => slurmRequest({ qos: "a b" })).toThrow(new UsageError('--qos "a b" must be a Slurm QOS name'));
  });

  test("--time is one flag: Slurm's forms and Beaker's read the same, in seconds; Slurm gets whole minutes", () => {
    const ctx = { cwd: "/home/ada", tty: false, term: null, defaultImage: null };
    // What the frame gives a command with no other flags: the lists empty, --no-wait not given.
    const none = { port: [], env: [], mount: [], wait: true };
    const limit = (time: string) => buildCreateRequest({ ...none, time }, [], ctx).timeLimit;
    expect([limit("1"), limit("4:00:00"), limit("2-00:00:00"), limit("4h"), limit("90s")]).toEqual([60, 14400, 172800, 14400, 90]);
    expect(() => limit("soon")).toThrow(UsageError);
    expect(buildCreateRequest({ ...none, partition: "gpu", time: "4h" }, [], ctx).slurm).toEqual({ job: null, partition: "gpu", account: null, qos: null });
    expect([slurmTime(60), slurmTime(90), slurmTime(14400), slurmTime(1)]).toEqual(["1", "2", "240", "1"]);
  });

  test("under Slurm, --time is the new job's limit (Slurm ends it), and in a job of the caller's the session's own", () => {
    const user = { name: "ada", uid: 1000, gid: 1000, groups: [1000], home: "/tmp", gecos: "" };
    const node = { beakerBinary: null, memlock: -1, cpus: 8, memoryBytes: 2 ** 34, nameTaken: () => false };
    const config = { ...defaultExecutorConfig(), mountPaths: [], scheduler: "slurm" as const };
    const req = { ...body, timeLimit: 600 };
    expect(prepareSession(config, node, user, req).timeLimit).toBeNull();
    expect(prepareSession(config, node, user, { ...req, slurm: { ...slurm, partition: null, job: "7" } }).timeLimit).toBe(600);
    expect(prepareSession({ ...config, scheduler: "native" }, node, user, req).timeLimit).toBe(600);
    expect(() => prepareSession({ ...config, maxDuration: 300 }, node, user, req)).toThrow(/--time 10m is longer than a session may run on this node \(5m\)/);
  });

  test.each([
    ["--slurm: always", { slurm: true }, { executor: true, siteScheduler: null }, true],
    ["no executor here, the site schedules with Slurm", {}, { executor: false, siteScheduler: "slurm" }, true],
    ["an executor here: the node's own", {}, { executor: true, siteScheduler: "slurm" }, false],
    ["no executor, native site", {}, { executor: false, siteScheduler: "native" }, false],
    ["--slurm-job: on the node, to its executor", { slurmJob: "7" }, { executor: false, siteScheduler: "slurm" }, false],
    ["--cluster: the server picks", { cluster: "lab" }, { executor: false, siteScheduler: "slurm" }, false],
  ] as const)("login flow (salloc + srun): %s", (_, flags, here, wanted) => {
    expect(loginFlowWanted({ ...flags }, { ...here })).toBe(wanted);
  });

  test("--slurm with a node or a job is a usage error", () => {
    expect(() => loginFlowWanted({ slurm: true, node: "n1" }, { executor: false, siteScheduler: null })).toThrow(UsageError);
    expect(() => loginFlowWanted({ slurm: true, slurmJob: "7" }, { executor: false, siteScheduler: null })).toThrow(UsageError);
  });

  test("a native node refuses Slurm's flags; --slurm-job with new-job flags is refused", () => {
    const user = { name: "ada", uid: 1000, gid: 1000, groups: [1000], home: "/tmp", gecos: "" };
    const node = { beakerBinary: null, memlock: -1, cpus: 8, memoryBytes: 2 ** 34, nameTaken: () => false };
    const native = { ...defaultExecutorConfig(), mountPaths: [] };
    const req = { ...body, slurm };
    expect(() => prepareSession(native, node, user, req)).toThrow(/this node's scheduler is Beaker's own/);
    const slurmNode = { ...native, scheduler: "slurm" as const };
    expect(() => prepareSession(slurmNode, node, user, { ...req, slurm: { ...slurm, job: "7" } })).toThrow(/with --slurm-job the job exists already/);
    expect(prepareSession(slurmNode, node, user, req).user.name).toBe("ada");
  });

  test("the container carries its job's id as a label", () => {
    const user = { name: "ada", uid: 1000, gid: 1000, groups: [1000], home: "/home/ada", gecos: "" };
    const spec = buildContainerSpec({
      sessionId: sid, name: "s", node: "n1", user, image: "i", command: null, gpus: ["G0"], env: [], cpus: null, memoryBytes: null, shmBytes: null, ports: [], mounts: [], shownMounts: [],
      accountFiles: null, pidsLimit: 0, network: "none", publishAddress: "127.0.0.1", workdir: "/home/ada", tty: false, term: null, account: null, memlock: -1, beakerBinary: null, slurmJob: "7",
    });
    expect(spec.Labels?.["beaker.slurm.job"]).toBe("7");
  });
});
