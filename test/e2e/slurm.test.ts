/**
 * scheduler: slurm on a real one-node Slurm (slurmctld, slurmd and munged from Debian, 8 GPUs in gres.conf), driven
 * through dist/beaker as two non-root users: sessions run in their callers' jobs with exactly those jobs' GPUs, wait
 * in Slurm's queue with Slurm's reason, end when Slurm ends the job, survive an executor kill -9, and a login node's
 * CLI gets its session through salloc and srun --pty.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eightUuids, otherUser, TestExecutor, testUser } from "../executor-harness.ts";
import { beakerBinary, eventually, removeDir, tempDir, testNodeName } from "../harness.ts";
import { slurmDir, slurmHostAlias, slurmNode, TestSlurm, writeAliasingSalloc } from "../slurm-harness.ts";
import { Tmux } from "../tmux.ts";
import type { SessionInfo, SessionView } from "../../src/executor/api-types.ts";

const slurm = new TestSlurm();
const node = testNodeName(import.meta.file);
const executor = new TestExecutor({ nodeName: node, env: slurm.env, extra: "scheduler: slurm\nslurm:\n  orphanGrace: 10\n" });
const env = slurm.env;
/** What a wait that timed out adds to its failure. */
const executorLog = () => executor.log().slice(-3000);

beforeAll(async () => {
  await slurm.start();
  await executor.start();
}, 90_000);
afterAll(async () => {
  await executor.cleanup();
  await slurm.stop();
});
afterEach(async () => {
  for (const user of [testUser, otherUser]) slurm.sh(["scancel", `--user=${user}`]);
  await eventually(() => slurm.queue().length === 0, 30_000, { what: "Slurm's queue to empty", detail: executorLog });
  // Their sessions end with their jobs: the next test starts on a node with nothing running.
  await eventually(async () => {
    const all = JSON.parse((await executor.run(["session", "list", "--all", "--json"], { env })).stdout) as SessionInfo[];
    return all.every((s) => s.status === "exited");
  }, 30_000, { what: "every session to end", detail: executorLog });
});

const as = (user: string, args: string[]) => executor.run(args, { user, env });
const sessions = async (user = testUser): Promise<SessionInfo[]> => JSON.parse((await as(user, ["session", "list", "--all", "--json"])).stdout);
const session = async (id: string) => (await sessions()).find((s) => s.id === id);
const uuidsOf = (job: string) => slurm.gpuIndexes(job).map((i) => eightUuids[i]!);

/** A CLI run in the background whose stderr can be watched while it runs. */
function background(user: string, args: string[]) {
  const proc = executor.spawn(args, { user, env });
  let stderr = "";
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) stderr += decoder.decode(chunk, { stream: true });
  })();
  const stdout = new Response(proc.stdout).text();
  return {
    proc,
    stderr: () => stderr,
    waitErr: (pattern: RegExp, timeoutMs = 30_000) => eventually(async () => pattern.exec(stderr), timeoutMs, { what: `stderr to show ${pattern}`, detail: executorLog }),
    done: async () => ({ exitCode: await proc.exited, stdout: await stdout, stderr: (await reading, stderr) }),
  };
}

test("a session gets exactly its job's GPUs; the job is the caller's; list, describe and node gpus show it; stop gives it back", async () => {
  // --time in Beaker's form: Slurm gets it as the job's time limit and alone enforces it (no deadline of Beaker's).
  const created = await as(testUser, ["session", "create", "--gpus", "3", "--time", "30m", "--detach", "--json", "--", "sleep", "1000"]);
  expect(created.stderr).toBe("");
  const { id, gpus } = JSON.parse(created.stdout) as { id: string; gpus: string[] };
  const info = (await session(id))!;
  const job = info.slurmJob!.id;
  expect(info.slurmJob).toMatchObject({ partition: "gpu" });
  expect(slurm.job(job)).toMatchObject({ JobState: "RUNNING", JobName: `beaker-${id}`, TimeLimit: "00:30:00", UserId: `${testUser}(${Bun.spawnSync(["id", "-u", testUser]).stdout.toString().trim()})` });
  expect((info as SessionView).deadline).toBeNull();
  // Inside the container, against what `scontrol show job -d` says the job was given.
  expect(gpus).toEqual(uuidsOf(job));
  const inside = await as(testUser, ["session", "exec", id, "--", "sh", "-c", "echo $NVIDIA_VISIBLE_DEVICES"]);
  expect(inside.stdout.trim()).toBe(uuidsOf(job).join(","));

  const describe = await as(testUser, ["session", "describe", id]);
  expect(describe.stdout).toMatch(new RegExp(`^Slurm: {4}${job} \\(gpu, (29|30)m left\\)$`, "m"));
  const list = await as(testUser, ["session", "list"]);
  expect(list.stdout).toMatch(/SLURM JOB/);
  const report = JSON.parse((await as(testUser, ["node", "gpus", "--json"])).stdout) as Array<{ uuid: string; claimedBy: string | null; slurmJob: { id: string } | null }>;
  expect(report.filter((g) => g.slurmJob?.id === job).map((g) => [g.uuid, g.claimedBy])).toEqual(uuidsOf(job).map((u) => [u, id]));

  expect((await as(testUser, ["session", "stop", id])).exitCode).toBe(0);
  await eventually(async () => slurm.queue(testUser).length === 0, 30_000, { what: "the job to be given back", detail: executorLog });
  expect((await session(id))!.reason).toBe("stopped by user");
}, 60_000);

test("GPUs of a plain sbatch job show as busy; a --gpus 4 session waits with Slurm's reason and estimate, and starts when that job ends", async () => {
  const blocker = slurm.sbatch(otherUser, ["--gres=gpu:6", "--time=10"]);
  await eventually(() => slurm.job(blocker)?.JobState === "RUNNING", 30_000, { what: "the blocker to run", detail: executorLog });
  const table = await as(testUser, ["node", "gpus"]);
  expect(table.stdout.match(new RegExp(`busy: Slurm job ${blocker} of ${otherUser}`, "g"))).toHaveLength(6);
  const report = JSON.parse((await as(testUser, ["node", "gpus", "--json"])).stdout) as Array<{ slurmJob: { id: string; user: string } | null }>;
  expect(report.filter((g) => g.slurmJob?.id === blocker && g.slurmJob.user === otherUser)).toHaveLength(6);

  // It outlives its output by a few seconds: Slurm shows a job's GPUs only while the job runs.
  const waiting = background(testUser, ["session", "create", "--gpus", "4", "--", "sh", "-c", "echo gpus=$NVIDIA_VISIBLE_DEVICES; sleep 5"]);
  const [, job] = await waiting.waitErr(/Waiting for Slurm job (\d+): (Resources|Priority)/);
  // The backfill scheduler works out when the blocker's time limit frees enough GPUs.
  await waiting.waitErr(/Slurm expects it to start at \d{4}-\d\d-\d\d \d\d:\d\d/);
  const queued = (await sessions()).find((s) => s.slurmJob?.id === job);
  expect(queued).toMatchObject({ status: "queued", gpus: [] });
  expect(slurm.job(job!)).toMatchObject({ JobState: "PENDING", UserId: expect.stringMatching(new RegExp(`^${testUser}\\(`)) });

  slurm.sh(["scancel", blocker]);
  const given = await eventually(() => {
    const gpus = uuidsOf(job!);
    return gpus.length > 0 && gpus;
  }, 30_000, { what: "Slurm to run the job on its GPUs", detail: executorLog });
  expect(given).toHaveLength(4);
  const result = await waiting.done();
  expect(result).toMatchObject({ exitCode: 0, stdout: `gpus=${given.join(",")}\n` });
}, 90_000);

test("while a job holds the GPUs: --no-wait exits 6 leaving nothing in Slurm's queue; stopping a request pending in Slurm withdraws its job", async () => {
  const blocker = slurm.sbatch(otherUser, ["--gres=gpu:6", "--time=10"]);
  await eventually(() => slurm.job(blocker)?.JobState === "RUNNING", 30_000, { what: "the blocker to run", detail: executorLog });

  const refused = await as(testUser, ["session", "create", "--gpus", "4", "--no-wait", "--", "true"]);
  expect(refused.exitCode).toBe(6);
  expect(refused.stderr).toMatch(/^beaker: [^\n]+\n$/);
  expect(slurm.queue(testUser)).toEqual([]);
  expect((await sessions()).filter((s) => s.status !== "exited")).toEqual([]);

  const waiting = background(testUser, ["session", "create", "--gpus", "4", "--name", "pending-one", "--", "true"]);
  const [, job] = await waiting.waitErr(/Waiting for Slurm job (\d+)/);
  expect(slurm.queue(testUser)).toEqual([job!]);
  const stopped = await as(testUser, ["session", "stop", "pending-one"]);
  expect(stopped.exitCode).toBe(0);
  const result = await waiting.done();
  expect(result.exitCode).toBe(6);
  expect(result.stderr).toEndWith("beaker: session pending-one was stopped by user before it started\n");
  await eventually(() => slurm.queue(testUser).length === 0, 30_000, { what: "the withdrawn job to leave Slurm's queue", detail: executorLog });
  expect(slurm.job(blocker)?.JobState).toBe("RUNNING");
}, 60_000);

test("--partition, --account and --qos reach Slurm: the job has them", async () => {
  const created = await as(testUser, ["session", "create", "--gpus", "1", "--partition", "debug", "--account", "lab-a", "--qos", "high", "--detach", "--json", "--", "sleep", "1000"]);
  expect(created.stderr).toBe("");
  const { id } = JSON.parse(created.stdout) as { id: string };
  const job = (await session(id))!.slurmJob!;
  expect(job.partition).toBe("debug");
  expect(slurm.job(job.id)).toMatchObject({ JobState: "RUNNING", Partition: "debug", Account: "lab-a" });
  expect(slurm.sh(["squeue", "--noheader", `--jobs=${job.id}`, "--format=%P %a"]).stdout.trim()).toBe("debug lab-a");
  // Without accounting (no slurmdbd here) Slurm keeps no QOS on the job; the submit request it logged has it.
  expect(readFileSync(join(slurmDir, "slurmctld.log"), "utf8")).toMatch(new RegExp(`Job submit request: account:lab-a .*name:beaker-${id} partition:debug qos:high `));
}, 60_000);

test("Ctrl-C while waiting in Slurm's queue leaves no job behind", async () => {
  const blocker = slurm.sbatch(otherUser, ["--gres=gpu:8"]);
  await eventually(() => slurm.job(blocker)?.JobState === "RUNNING", 30_000, { what: "the blocker to run", detail: executorLog });
  const waiting = background(testUser, ["session", "create", "--gpus", "2", "--", "true"]);
  await waiting.waitErr(/Waiting for Slurm job \d+/);
  expect(slurm.queue(testUser)).toHaveLength(1);
  waiting.proc.kill("SIGINT");
  const result = await waiting.done();
  expect(result.exitCode).toBe(130);
  await eventually(async () => slurm.queue(testUser).length === 0, 30_000, { what: "the waiting job to leave Slurm's queue", detail: executorLog });
  // The job leaves squeue when scancel returns; the executor drops its request once its own cancel has returned.
  await eventually(async () => (await sessions()).every((s) => s.status === "exited"), 30_000, { what: "the withdrawn request to leave the executor's list", detail: executorLog });
}, 60_000);

test("--slurm-job: another user's job is refused; one's own gives its GPUs and stays the owner's", async () => {
  const theirs = slurm.salloc(otherUser, ["--gres=gpu:1", "--job-name=theirs"]);
  const refused = await as(testUser, ["session", "create", "--slurm-job", theirs, "--", "true"]);
  expect(refused.exitCode).toBe(4);
  expect(refused.stderr).toBe(`beaker: Slurm job ${theirs} is not yours: it belongs to ${otherUser}\n`);

  const mine = slurm.salloc(testUser, ["--gres=gpu:2", "--job-name=mine"]);
  const used = await as(testUser, ["session", "create", "--slurm-job", mine, "--", "sh", "-c", "echo $NVIDIA_VISIBLE_DEVICES"]);
  expect(used).toEqual({ exitCode: 0, stdout: `${uuidsOf(mine).join(",")}\n`, stderr: "" });
  // Not Beaker's to give back: the job is still there for a second session.
  const again = await as(testUser, ["session", "create", "--slurm-job", mine, "--", "true"]);
  expect(again.exitCode).toBe(0);
  expect(slurm.job(mine)?.JobState).toBe("RUNNING");
  const asked = await as(testUser, ["session", "create", "--slurm-job", mine, "--gpus", "3", "--", "true"]);
  expect(asked.exitCode).toBe(6);
  expect(asked.stderr).toMatch(/has 2 GPUs on this node, but --gpus 3 was asked/);
}, 60_000);

test("Slurm ending the job stops the session with its reason: scancel by root, and --time 1 (the attached CLI says so)", async () => {
  const limited = background(testUser, ["session", "create", "--gpus", "1", "--time", "1", "--", "sleep", "1000"]);
  const detached = await as(testUser, ["session", "create", "--gpus", "1", "--detach", "--", "sleep", "1000"]);
  const id = detached.stdout.trim();
  const job = (await session(id))!.slurmJob!.id;
  slurm.sh(["scancel", job]);
  const cancelled = await eventually(async () => {
    const s = await session(id);
    return s?.status === "exited" && s;
  }, 30_000, { what: "the cancelled job's session to end", detail: executorLog });
  expect(cancelled.reason).toBe("slurm: cancelled");

  const result = await limited.done();
  expect(result.exitCode).toBe(143);
  expect(result.stderr).toMatch(/ended: Slurm ended its job \(time limit\)/);
  expect((await sessions()).filter((s) => s.reason === "slurm: time limit")).toHaveLength(1);
}, 180_000);

test("executor kill -9 and restart: a session keeps its job, one whose job ended meanwhile stops, an unused login job is cancelled", async () => {
  const start = async () => (await as(testUser, ["session", "create", "--gpus", "1", "--detach", "--", "sleep", "1000"])).stdout.trim();
  const kept = await start();
  const lost = await start();
  const [keptJob, lostJob] = [(await session(kept))!.slurmJob!.id, (await session(lost))!.slurmJob!.id];
  const orphan = slurm.salloc(testUser, ["--gres=gpu:1", "--job-name=beaker"]);

  await executor.kill("SIGKILL");
  slurm.sh(["scancel", lostJob]);
  await executor.start();

  await eventually(async () => (await session(lost))?.reason === "slurm: cancelled", 30_000, { what: "the restarted executor to stop the session whose job ended", detail: executorLog });
  expect(await session(kept)).toMatchObject({ status: "running", slurmJob: { id: keptJob } });
  expect(slurm.job(keptJob)?.JobState).toBe("RUNNING");
  await eventually(async () => !slurm.queue().includes(orphan), 60_000, { what: "the unused login job to be cancelled", detail: executorLog });
  expect(executor.log()).toMatch(new RegExp(`cancelled Slurm job ${orphan} of ${testUser}: no session has run in it`));
  expect(slurm.job(keptJob)?.JobState).toBe("RUNNING");
}, 120_000);

test("from a login node: salloc, then srun --pty onto the node; TTY, resize and exit code pass through; the job is given back", async () => {
  using tmux = new Tmux("slurm");
  tmux.start("t", ["setpriv", `--reuid=${testUser}`, `--regid=${testUser}`, "--init-groups", "env", `HOME=/home/${testUser}`, "TERM=xterm",
    "PATH=/usr/local/bin:/usr/bin:/bin", `SLURM_CONF=${env.SLURM_CONF}`, `BEAKER_EXECUTOR_SOCKET=${executor.socket}`, "bash", "--norc", "-i"]);
  tmux.line("t", `cd ~; PS1='login$ '; ${beakerBinary} session create --slurm --gpus 2 --time 5; echo beaker-exit=$?`);
  await tmux.waitFor("t", new RegExp(`Slurm job \\d+ runs on ${slurmNode}`));
  await tmux.waitFor("t", new RegExp(`${testUser}@${node}:~\\$`));
  const job = slurm.sh(["squeue", "--noheader", `--user=${testUser}`, "--name=beaker", "--format=%i"]).stdout.trim();
  tmux.line("t", "echo gpus=$NVIDIA_VISIBLE_DEVICES; stty size");
  await tmux.waitFor("t", new RegExp(`^gpus=${uuidsOf(job).join(",")}\\s*\\n30 100\\s*$`, "m"));
  tmux.resize("t", 120, 40);
  // The new size travels tmux -> CLI -> srun -> executor -> Docker; ask again until the shell inside reports it.
  await eventually(async () => {
    tmux.line("t", "clear; stty size");
    return /^40 120\s*$/m.test(await tmux.waitFor("t", /^\d+ \d+\s*$/m));
  });
  tmux.line("t", "exit 7");
  await tmux.waitFor("t", /^beaker-exit=7\s*$/m);
  expect(tmux.screen("t")).not.toMatch(/srun: error/);
  await eventually(async () => slurm.queue(testUser).length === 0, 30_000, { what: "the login job to be given back", detail: executorLog });
}, 90_000);

/**
 * Runs `check` against a second executor of this node (the file's own is stopped meanwhile: two executors on one Slurm
 * node would cancel each other's jobs) with `slurm:` settings of its own, and `squeue` failing on every call if asked.
 */
async function withExecutor(slurmSettings: string, squeueFails: boolean, check: (e: TestExecutor) => Promise<void>): Promise<void> {
  const bin = tempDir("beaker-slurm-bin-");
  mkdirSync(bin, { recursive: true });
  writeAliasingSalloc(bin);
  if (squeueFails) {
    writeFileSync(join(bin, "squeue"), "#!/bin/sh\necho 'squeue: error: Unable to contact slurm controller (connect failure)' >&2\nexit 1\n");
    chmodSync(join(bin, "squeue"), 0o755);
  }
  const extra = `scheduler: slurm\nslurm:\n  orphanGrace: 10\n${slurmSettings}`;
  const other = new TestExecutor({ nodeName: testNodeName(import.meta.file, "other"), env: { ...env, PATH: `${bin}:${process.env.PATH}` }, extra });
  await executor.kill();
  try {
    await other.start();
    await check(other);
  } finally {
    await other.cleanup();
    removeDir(bin);
    await executor.start();
  }
}

test("a slurm.node that is not the job's node in Slurm: --gpus 2 fails to start, saying both names, and its job is cancelled", async () => {
  await withExecutor(`  node: ${slurmHostAlias}\n`, false, async (other) => {
    const r = await other.run(["session", "create", "--gpus", "2", "--", "true"], { user: testUser, env });
    expect(r.stderr).toMatch(
      new RegExp(`^beaker: Slurm ran job \\d+ on ${slurmNode}, not on ${slurmHostAlias} \\(slurm\\.node in the executor's config\\), so its GPUs cannot be given: set slurm\\.node to this node's NodeName in Slurm\n$`),
    );
    expect(r.exitCode).toBe(125);
    await eventually(() => slurm.queue(testUser).length === 0, 30_000, { what: "the job to be cancelled", detail: () => other.log().slice(-2000) });
  });
}, 90_000);

test("while squeue fails on every pass, a session that ends gives its job back (cancelled by ID)", async () => {
  await withExecutor("", true, async (other) => {
    const ran = await other.run(["session", "create", "--gpus", "1", "--", "sh", "-c", "echo $NVIDIA_VISIBLE_DEVICES"], { user: testUser, env });
    expect(ran.exitCode).toBe(0);
    expect(ran.stdout.trim()).toMatch(/^GPU-/);
    await eventually(() => slurm.queue(testUser).length === 0, 30_000, { what: "the ended session's job to be cancelled", detail: () => other.log().slice(-2000) });
    const id = (await other.run(["session", "create", "--gpus", "1", "--detach", "--", "sleep", "1000"], { user: testUser, env })).stdout.trim();
    expect(slurm.queue(testUser)).toHaveLength(1);
    expect((await other.run(["session", "stop", id], { user: testUser, env })).exitCode).toBe(0);
    await eventually(() => slurm.queue(testUser).length === 0, 30_000, { what: "the stopped session's job to be cancelled", detail: () => other.log().slice(-2000) });
    expect(other.log()).toMatch(/slurm: cannot reach Slurm \(squeue --nodelist=/);
  });
}, 90_000);
