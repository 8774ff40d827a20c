/** A session's Slurm job is given back by its ID, whatever the node-wide listing (squeue) says. */
import { expect, test } from "bun:test";
import { defaultExecutorConfig } from "../../src/config/executor.ts";
import { UnavailableError } from "../../src/errors.ts";
import type { SessionManager } from "../../src/executor/sessions/manager.ts";
import { SlurmSessions } from "../../src/executor/slurm/slurm.ts";
import type { SlurmJob } from "../../src/slurm/job.ts";
import type { SlurmRunner } from "../../src/slurm/run.ts";

const job = (id: string, name: string, state = "RUNNING"): SlurmJob => ({
  id, name, uid: 1001, user: "u1001", state, reason: null, partition: "gpu", account: null, qos: null, startTime: null, endTime: null, nodes: ["gpu-a"], gpusByNode: { "gpu-a": [0] },
});

function world(jobs: Map<string, SlurmJob>, options: { scontrolDown?: () => boolean; onNode?: () => SlurmJob[]; showJob?: (id: string) => SlurmJob | null } = {}) {
  const cancelled: string[] = [];
  const logs: string[] = [];
  const runner: SlurmRunner = {
    showJob: async (id) => {
      if (options.scontrolDown?.()) throw new UnavailableError("cannot reach Slurm (scontrol show job): Unable to contact slurm controller");
      return options.showJob ? options.showJob(id) : (jobs.get(id) ?? null);
    },
    jobsOnNode: async () => {
      if (options.onNode) return options.onNode();
      throw new UnavailableError("cannot reach Slurm (squeue --nodelist=gpu-a): Unable to contact slurm controller");
    },
    allocate: async () => {
      throw new Error("not asked for here");
    },
    cancel: async (id) => void cancelled.push(id),
  };
  const m = {
    deps: {
      log: (line: string) => logs.push(line),
      users: { lookup: async (uid: number) => ({ uid, gid: uid, name: `u${uid}`, home: "/tmp", groups: [], gecos: "" }) },
      clock: { now: () => 0, sleep: async () => {} },
      engine: { stop: async () => {} },
    },
    claims: { state: { ready: true } },
    sessions: new Map(),
    pending: new Map(),
  } as unknown as SessionManager;
  const slurm = new SlurmSessions(runner, { ...defaultExecutorConfig().slurm, node: "gpu-a" });
  return { slurm, m, cancelled, logs };
}

test("an ended session's own job is cancelled by ID while squeue fails; a job the caller named, or one already over, is not", async () => {
  const jobs = new Map([
    ["11", job("11", "beaker-aaaaaaaaaaaa")],
    ["12", job("12", "my-own-allocation")],
    ["13", job("13", "beaker-cccccccccccc", "COMPLETED")],
  ]);
  const { slurm, m, cancelled, logs } = world(jobs);
  slurm.release("aaaaaaaaaaaa", "11", 1001);
  slurm.release("bbbbbbbbbbbb", "12", 1001);
  slurm.release("cccccccccccc", "13", 1001);
  await slurm.sync(m);
  expect(cancelled).toEqual(["11"]);
  expect(logs).toContain("cancelled Slurm job 11 of u1001: its session aaaaaaaaaaaa is over");
  // Given back once: the next pass does not cancel it again.
  await slurm.sync(m);
  expect(cancelled).toEqual(["11"]);
});

test("while Slurm does not answer at all, the job is tried again on every pass until it is cancelled", async () => {
  let down = true;
  const { slurm, m, cancelled } = world(new Map([["21", job("21", "beaker-dddddddddddd")]]), { scontrolDown: () => down });
  slurm.release("dddddddddddd", "21", 1001);
  await slurm.sync(m);
  await slurm.sync(m);
  expect(cancelled).toEqual([]);
  down = false;
  await slurm.sync(m);
  expect(cancelled).toEqual(["21"]);
});

test("a job seen COMPLETING is asked again until Slurm says why it ended: the session's reason is that, not 'completing'", async () => {
  const answers = [job("31", "beaker-eeeeeeeeeeee", "COMPLETING"), job("31", "beaker-eeeeeeeeeeee", "COMPLETING"), job("31", "beaker-eeeeeeeeeeee", "CANCELLED")];
  let asked = 0;
  const { slurm, m } = world(new Map(), { onNode: () => [], showJob: () => answers[Math.min(asked++, answers.length - 1)]! });
  const session = { info: { id: "eeeeeeeeeeee", user: "u1001", status: "running", slurmJob: { id: "31", partition: null, endsAt: null } }, stopReason: null as string | null, startGate: { open() {} }, exited: Promise.resolve() };
  (m.sessions as Map<string, unknown>).set(session.info.id, session);
  await slurm.sync(m);
  expect(asked).toBe(3);
  expect(session.stopReason).toBe("slurm: cancelled");
});

test("a job that stays COMPLETING is waited for a bounded while, then the session stops with what is known", async () => {
  let asked = 0;
  const { slurm, m } = world(new Map(), { onNode: () => [], showJob: () => (asked++, job("32", "beaker-ffffffffffff", "COMPLETING")) });
  const session = { info: { id: "ffffffffffff", user: "u1001", status: "running", slurmJob: { id: "32", partition: null, endsAt: null } }, stopReason: null as string | null, startGate: { open() {} }, exited: Promise.resolve() };
  (m.sessions as Map<string, unknown>).set(session.info.id, session);
  await slurm.sync(m);
  expect(asked).toBe(21);
  expect(session.stopReason).toBe("slurm: completing");
});
