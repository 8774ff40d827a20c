/**
 * GPU use on the real engine: a fake nvidia-smi plays a utilization script per GPU, sampled every second; idle sessions
 * are warned on their attached terminal (tmux) and stopped, `keep` defers once, time limits stop, an exempt user is
 * never stopped, and with onlyWhenQueued an idle session makes room only for a request that waits.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { SessionView } from "../../src/executor/api-types.ts";
import { beakerBinary, eventually, setUtilization } from "../harness.ts";
import { eightUuids, otherUser, TestExecutor, testUser } from "../executor-harness.ts";

/** Every GPU busy at 90%, with 20 GiB in use. */
const busy = () => Array<string>(8).fill("90/20480");

/** Polls `check` until it returns something, or fails with what it saw last. */
const until = <T>(what: string, check: () => Promise<T | null | undefined | false>, timeoutMs = 20_000) =>
  eventually(check, timeoutMs, { what, intervalMs: 200 }) as Promise<T>;

async function sessions(executor: TestExecutor, user?: string): Promise<SessionView[]> {
  const result = await executor.run(["session", "list", "--all", "--json"], user ? { user } : {});
  expect(result.exitCode).toBe(0);
  return JSON.parse(result.stdout);
}

const session = async (executor: TestExecutor, name: string, user?: string) => (await sessions(executor, user)).find((s) => s.name === name);

async function detached(executor: TestExecutor, name: string, args: string[], user = testUser): Promise<SessionView> {
  const created = await executor.run(["session", "create", "--detach", "--json", "--name", name, ...args, "--", "sleep", "600"], { user });
  expect(created).toMatchObject({ exitCode: 0 });
  return (await session(executor, name, user))!;
}

const gpuIndex = (s: SessionView) => eightUuids.indexOf(s.gpus[0]!);

describe("idle GPUs and time limits (stop after 6 s idle, one user exempt)", () => {
  const executor = new TestExecutor({
    nodeName: "gpu-use-a",
    utilization: [busy().join(" ")],
    extra: `gpuSampleInterval: 1s\ngpuIdle: {threshold: 5, after: 6s, exempt: [${otherUser}]}\nmaxDuration: 1h\n`,
  });
  const tmuxSocket = `beaker-gpu-use-${process.pid}`;
  const tmux = (...args: string[]) => Bun.spawnSync(["tmux", "-L", tmuxSocket, ...args], { stdout: "pipe", stderr: "pipe" }).stdout.toString();
  const screen = () => tmux("capture-pane", "-p", "-J", "-t", "t");
  const shows = (pattern: RegExp) => until(`the terminal to show ${pattern}`, async () => pattern.test(screen()) && screen());

  beforeAll(async () => {
    await executor.start();
  });
  afterAll(async () => {
    tmux("kill-server");
    await executor.cleanup();
  });

  test("an idle session is warned on its terminal and stopped (idle GPUs); busy, busy-again and exempt ones are not", async () => {
    const shell = `cd ~ && BEAKER_EXECUTOR_SOCKET=${executor.socket} ${beakerBinary} session create --gpus 1 --name idler; echo "beaker-exit=$?"; sleep 600`;
    tmux("new-session", "-d", "-s", "t", "-x", "200", "-y", "40", "setpriv", `--reuid=${testUser}`, `--regid=${testUser}`, "--init-groups", "env", `HOME=/home/${testUser}`, "TERM=xterm", "bash", "-c", shell);
    await shows(new RegExp(`${testUser}@gpu-use-a:~\\$`));
    const working = await detached(executor, "working", ["--gpus", "1"]);
    const flip = await detached(executor, "flip", ["--gpus", "1"]);
    const exempt = await detached(executor, "exempt", ["--gpus", "1"], otherUser);
    const idler = (await session(executor, "idler", testUser))!;
    const util = busy();
    for (const s of [idler, flip, exempt]) util[gpuIndex(s)] = "0/1024";
    setUtilization(executor.smiDir, [util.join(" ")]);

    // flip goes idle with the others, then busy again before its 6 s are up.
    await until("flip to be idle", async () => (await session(executor, "flip"))?.idleSince);
    util[gpuIndex(flip)] = "80/20480";
    setUtilization(executor.smiDir, [util.join(" ")]);
    await until("flip to be busy again", async () => (await session(executor, "flip"))?.idleSince === null);

    await shows(/beaker: its GPUs have been idle \(under 5%\) for \d+s: this session stops at \d\d:\d\d \(in \d+s\) unless they get busy; 'beaker session keep idler --for 2h' keeps it once/);
    const listed = await executor.run(["session", "list"], { user: testUser });
    expect(listed.stdout.split("\n")[0]).toMatch(/GPUS\s+GPU%\s+GPU MEM\s+STATUS\s+STARTED\s+DURATION\s+LEFT\s+PORTS/);
    expect(listed.stdout).toMatch(/idler .*running, idle \d+s, stops in \d+s/);
    expect(listed.stdout).toMatch(/working .* 90% .*20 GiB\s+running\s/);

    const stopped = await until("idler to be stopped", async () => {
      const s = await session(executor, "idler", testUser);
      return s?.status === "exited" && s;
    });
    expect(stopped.reason).toBe("idle GPUs");
    await shows(/session idler was stopped: its GPUs were idle[\s\S]*beaker-exit=143/);
    expect((await executor.run(["session", "list", "--all"], { user: testUser })).stdout).toMatch(/idler .*exited \(\d+, idle GPUs\)/);

    const now = await sessions(executor);
    const byName = (name: string) => now.find((s) => s.name === name)!;
    expect(byName("working")).toMatchObject({ status: "running", idleSince: null, gpuUtilization: [{ uuid: working.gpus[0], last: 90, mean5m: 90 }] });
    expect(byName("flip")).toMatchObject({ status: "running", idleSince: null });
    expect(byName("exempt")).toMatchObject({ status: "running", idleAction: null });
    expect(byName("exempt").idleSince).not.toBeNull();
    expect(Date.parse(byName("exempt").idleSince!)).toBeLessThan(Date.parse(stopped.finishedAt!) - 5000);

    const gpus = JSON.parse((await executor.run(["node", "gpus", "--json"])).stdout);
    expect(gpus[gpuIndex(working)]).toMatchObject({ utilization: 90, memoryUsedMiB: expect.any(Number) });
    expect(gpus[gpuIndex(exempt)]).toMatchObject({ utilization: 0 });
    const describe = await executor.run(["session", "describe", "working"], { user: testUser });
    expect(describe.stdout).toMatch(/^GPU use: {2}\d {2}90% now, 90% over 5m, 90% over 1h {2}20 GiB of 31.7 GiB$/m);
    expect(describe.stdout).toMatch(/^Limit: {4}stops at \d{4}-\d\d-\d\d \d\d:\d\d \(\d+m left\)$/m);
  }, 90_000);

  test("keep --for defers the stop once; --time stops with reason time limit", async () => {
    const kept = await detached(executor, "kept", ["--gpus", "1"]);
    const timed = await detached(executor, "timed", ["--gpus", "0", "--time", "4s"]);
    expect(Date.parse(timed.deadline!) - Date.parse(timed.startedAt!)).toBe(4000);
    const util = busy();
    util[gpuIndex(kept)] = "0/1024";
    setUtilization(executor.smiDir, [util.join(" ")]);
    await until("kept to be idle", async () => (await session(executor, "kept"))?.idleSince);
    const first = await executor.run(["session", "keep", "kept", "--for", "12s", "--json"], { user: testUser });
    expect(first.exitCode).toBe(0);
    const keptUntil = JSON.parse(first.stdout).keptUntil as string;
    expect(keptUntil).not.toBeNull();
    const second = await executor.run(["session", "keep", "kept", "--for", "1h"], { user: testUser });
    expect(second).toMatchObject({ exitCode: 6, stderr: expect.stringContaining("was already kept once while its GPUs have been idle") });
    const other = await executor.run(["session", "keep", "kept", "--for", "1h"], { user: otherUser });
    expect(other).toMatchObject({ exitCode: 5 });

    const timedOut = await until("timed to reach its time limit", async () => {
      const s = await session(executor, "timed", testUser);
      return s?.status === "exited" && s;
    });
    expect(timedOut.reason).toBe("time limit");
    const ended = await until("kept to be stopped after its keep", async () => {
      const s = await session(executor, "kept", testUser);
      return s?.status === "exited" && s;
    }, 30_000);
    expect(ended.reason).toBe("idle GPUs");
    expect(Date.parse(ended.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(keptUntil));
  }, 90_000);
});

describe("onlyWhenQueued and maxDuration", () => {
  const executor = new TestExecutor({
    nodeName: "gpu-use-b",
    utilization: [busy().join(" ")],
    extra: "gpuSampleInterval: 1s\ngpuIdle: {after: 6s, onlyWhenQueued: true}\nmaxDuration: 40s\n",
  });
  beforeAll(async () => {
    await executor.start();
  });
  afterAll(async () => {
    await executor.cleanup();
  });

  test("an idle session stops only when a request waits, which then gets its GPUs; maxDuration stops with time limit", async () => {
    const tooLong = await executor.run(["session", "create", "--detach", "--time", "1h", "--", "true"], { user: testUser });
    expect(tooLong).toMatchObject({ exitCode: 2, stderr: expect.stringContaining("--time 1h00m is longer than a session may run on this node (40s)") });

    const holder = await detached(executor, "holder", ["--gpus", "4"]);
    await detached(executor, "worker", ["--gpus", "4"]);
    const util = busy();
    for (const uuid of holder.gpus) util[eightUuids.indexOf(uuid)] = "0/1024";
    setUtilization(executor.smiDir, [util.join(" ")]);
    // Past its idle limit by a few samples, and still running: nothing waits for GPUs.
    const due = await until("holder to be idle", async () => (await session(executor, "holder"))?.idleStopsAt);
    await until("holder to be past its idle limit", async () => Date.now() > Date.parse(due) + 3000);
    expect(await session(executor, "holder")).toMatchObject({ status: "running", idleAction: "stop-when-queued" });
    expect((await executor.run(["session", "list"], { user: testUser })).stdout).toMatch(/holder .*running, idle \d+s, stops when GPUs are wanted/);

    const waiting = await executor.run(["session", "create", "--detach", "--json", "--gpus", "2", "--name", "waiter", "--", "sleep", "600"], { user: otherUser });
    expect(waiting.exitCode).toBe(0);
    expect(waiting.stderr).toMatch(/Waiting for 2 GPUs: position 1 in the queue \(0 free now\); 2 GPUs free by \d\d:\d\d at the latest/);
    const got = JSON.parse(waiting.stdout).gpus as string[];
    expect(got.every((g) => holder.gpus.includes(g))).toBe(true);
    expect(await session(executor, "holder", testUser)).toMatchObject({ status: "exited", reason: "idle GPUs" });

    const worker = await until("worker to reach maxDuration", async () => {
      const s = await session(executor, "worker", testUser);
      return s?.status === "exited" && s;
    }, 60_000);
    expect(worker.reason).toBe("time limit");
  }, 120_000);
});
