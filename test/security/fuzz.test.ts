/**
 * The fuzzer: two ordinary users (beaker-test-user as A, beaker-test-other as B) drive the executor's API and terminal
 * frames at random for a fixed number of seeded steps (fuzz-gen.ts). After every step: the executor is the same
 * process, its memory and open files are bounded, the other user's sessions, containers and home sentinel are exactly
 * what their own steps left, no answer shows a user the other's session IDs, a request naming the other's session is
 * answered as one naming no session at all, and a plain create is never refused for what the other user holds.
 * The suite runs seed 1, so a run is the same steps every time; `BEAKER_FUZZ_SEED=N` replays or explores another
 * (`random` picks one; the seed is printed), `BEAKER_FUZZ_STEPS=N` sets its length (default 2,000),
 * `BEAKER_FUZZ_VERBOSE=1` prints every step.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { otherUser, TestExecutor, testUser } from "../executor-harness.ts";
import { removeDir, testNodeName } from "../harness.ts";
import { otherOf, Planner, type Planned, type Step, type Who } from "./fuzz-gen.ts";
import { footprint, plantSentinel, sameState, sentinelOf, settled, settledState, statesOf, type UserState } from "./fuzz-oracle.ts";
import { runStep, type Answer } from "./fuzz-run.ts";
import { createBody } from "./fuzz-values.ts";
import { executorPid, uidOf } from "./harness.ts";

const seedFlag = process.env.BEAKER_FUZZ_SEED ?? "1";
const seed = seedFlag === "random" ? Math.floor(Math.random() * 2 ** 31) : Number(seedFlag);
const steps = Number(process.env.BEAKER_FUZZ_STEPS ?? 2000);
/** `BEAKER_FUZZ_VERBOSE=1`: print every step as it is taken, not only the last 40 on a failure. */
const verbose = process.env.BEAKER_FUZZ_VERBOSE === "1";
/** The executor's bounds over a whole run: well above its idle size (about 60 MiB), far below a leak's. */
const maxRssMiB = 400;
const maxFds = 128;

const executor = new TestExecutor({ nodeName: testNodeName(import.meta.file) });
const users: Record<Who, { name: string; uid: number; home: string }> = {
  a: { name: testUser, uid: uidOf(testUser), home: `/home/${testUser}` },
  b: { name: otherUser, uid: uidOf(otherUser), home: `/home/${otherUser}` },
};

beforeAll(async () => {
  executor.removeLeftovers();
  await executor.start();
  plantSentinel(users.a.home, users.a.uid, users.b.home);
  plantSentinel(users.b.home, users.b.uid, users.a.home);
});
afterAll(async () => {
  await executor.cleanup();
  for (const u of Object.values(users)) removeDir(sentinelOf(u.home));
});

function describeStep(step: Step): string {
  if (step.kind === "create") {
    // An object body is shown by what it changes of a plain create (busybox, --gpus 0, sleep).
    const base = createBody();
    const shown = typeof step.body === "string" ? step.body : JSON.stringify(Object.fromEntries(Object.entries(step.body).filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(base[k]))));
    return `create ${clip(shown, 300)}${step.hangUpMs === undefined ? "" : ` hang up ${step.hangUpMs} ms`}`;
  }
  const probe = step.probe ? ` {ref}=${step.probe.ref} (${step.probe.how}; twin ${step.probe.twin})` : "";
  if (step.kind === "terminal") return `ws ${clip(step.path)} ${step.frames.length} frames${step.waitForEnd ? ", to its end" : ""}${probe}`;
  const extra = `${step.proof && step.proof !== "own" ? ` proof ${step.proof}` : ""}${step.hangUpMs === undefined ? "" : ` hang up ${step.hangUpMs} ms`}`;
  return `${step.method} ${clip(step.path)}${step.body === undefined ? "" : ` ${clip(step.body)}`}${extra}${probe}`;
}

function clip(text: string, n = 120): string {
  return JSON.stringify(text.length > n ? `${text.slice(0, n)}...` : text).slice(1, -1);
}

/** What one step broke, or null: the checks that need only its answers. */
function stepFinding(planned: Planned, answer: Answer, twin: Answer | null, theirIds: string[]): string | null {
  const { step } = planned;
  if (twin && twin.text !== answer.text) return `naming the other user's session was answered differently from naming none:\n  theirs: ${answer.text}\n  none:   ${twin.text}`;
  if (step.kind === "create" && step.mustStart && !answer.created) return `a plain create was refused: ${answer.text}`;
  if (/^5\d\d /.test(answer.text) || /^error error /.test(answer.text)) return `an untyped (internal) error: ${answer.text}`;
  const leaked = theirIds.find((id) => answer.shown.includes(id) || twin?.shown.includes(id));
  return leaked ? `the answer shows the other user's session ${leaked}` : null;
}

function stateDiff(before: UserState, after: UserState): string {
  const lines = (label: string, a: string[], b: string[]) => [...a.filter((x) => !b.includes(x)).map((x) => `  - ${label} ${x}`), ...b.filter((x) => !a.includes(x)).map((x) => `  + ${label} ${x}`)];
  return [...lines("session", before.sessions, after.sessions), ...lines("container", before.containers, after.containers), ...(before.home === after.home ? [] : ["  home sentinel tree changed"])].join("\n");
}

test(`fuzz: ${steps} seeded steps as two users (seed ${seed})`, async () => {
  console.log(`fuzz seed ${seed} (replay: BEAKER_FUZZ_SEED=${seed} BEAKER_FUZZ_STEPS=${steps})`);
  const pid = await executorPid(executor);
  const planner = new Planner(seed, steps);
  const state = { a: await settledState(executor, users.a), b: await settledState(executor, users.b) };
  const log: string[] = [];
  const counts = { created: 0, probes: 0, terminals: 0 };
  let peak = footprint(pid);
  const started = performance.now();
  /** Per action: how many steps, and their milliseconds (the rest of the run is checks). */
  const spent = new Map<string, [number, number]>();
  for (let i = 0; i < steps; i++) {
    const planned = planner.next({ sessions: { a: state.a.known, b: state.b.known }, homes: { a: users.a.home, b: users.b.home } });
    const { who, step } = planned;
    const other = otherOf(who);
    const fail = (why: string): never => {
      throw new Error(`fuzz seed ${seed}, step ${planned.n}: ${why}\nreplay: BEAKER_FUZZ_SEED=${seed} BEAKER_FUZZ_STEPS=${steps}\nlast steps:\n${log.slice(-40).join("\n")}`);
    };
    const t0 = performance.now();
    const answer = await runStep(executor, users[who].uid, step, step.kind !== "create" ? step.probe?.ref : undefined);
    const twin = step.kind !== "create" && step.probe ? await runStep(executor, users[who].uid, step, step.probe.twin) : null;
    const [n, ms] = spent.get(planned.action) ?? [0, 0];
    spent.set(planned.action, [n + 1, ms + performance.now() - t0]);
    log.push(`#${planned.n} ${who.toUpperCase()} ${planned.action}: ${describeStep(step)} -> ${answer.text}`);
    if (verbose) console.log(log.at(-1));
    if (answer.created) counts.created++;
    if (twin) counts.probes++;
    if (step.kind === "terminal") counts.terminals++;
    const health = await executorPid(executor).catch((err: Error) => `no answer: ${err.message}`);
    if (health !== pid) fail(`the executor is not the same process: health says ${health}, it was ${pid}`);
    const now = footprint(pid);
    peak = { rssMiB: Math.max(peak.rssMiB, now.rssMiB), fds: Math.max(peak.fds, now.fds) };
    if (now.rssMiB > maxRssMiB || now.fds > maxFds) fail(`the executor grew past its bounds: ${now.rssMiB.toFixed(0)} MiB resident (at most ${maxRssMiB}), ${now.fds} open files (at most ${maxFds})`);
    const [mine, theirs] = await statesOf(executor, [users[who], users[other]]);
    const foreign = [...mine!.sessions.filter((s) => !s.includes(` uid=${users[who].uid} `)), ...theirs!.sessions.filter((s) => !s.includes(` uid=${users[other].uid} `))];
    if (foreign.length > 0) fail(`a user's own list shows another user's session:\n  ${foreign.join("\n  ")}`);
    if (!sameState(state[other], theirs!)) fail(`${users[who].name}'s step changed ${users[other].name}'s sessions, containers or files:\n${stateDiff(state[other], theirs!)}`);
    const finding = stepFinding(planned, answer, twin, state[other].known.map((s) => s.id));
    if (finding) fail(finding);
    state[who] = settled(mine!) ? mine! : await settledState(executor, users[who]).catch((err: Error) => fail(err.message));
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `fuzz seed ${seed}: ${steps} steps in ${seconds.toFixed(1)} s; ${counts.created} sessions created, ${counts.probes} requests naming the other's session, ${counts.terminals} terminals; executor peak ${peak.rssMiB.toFixed(0)} MiB, ${peak.fds} open files`,
  );
  console.log(`steps and seconds per action (the rest is checks): ${[...spent].map(([k, [n, ms]]) => `${k} ${n} ${(ms / 1000).toFixed(1)} s`).join("; ")}`);
  expect(await executorPid(executor)).toBe(pid);
}, 600_000);
