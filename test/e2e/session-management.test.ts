/** list, describe, attach, exec and stop through the compiled binary, against a real executor and Docker engine. */
import type { FileSink } from "bun";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { eightUuids, otherUser, TestExecutor, testUser } from "../executor-harness.ts";
import { eventually, testNodeName } from "../harness.ts";

const node = testNodeName(import.meta.file);
const executor = new TestExecutor({ nodeName: node });
beforeAll(async () => {
  executor.removeLeftovers();
  await executor.start();
});
afterAll(() => executor.cleanup());
// A failed test must not leave GPUs claimed for the next one: remove what is left and wait until the executor sees it.
afterEach(async () => {
  if (executor.containers().length === 0) return;
  executor.removeLeftovers();
  await eventually(async () => (await executor.claims()).every((c) => c === null), 30_000, { what: "all GPUs free" });
});

const asUser = { user: testUser };

async function createDetached(args: string[], options = asUser): Promise<string> {
  const r = await executor.run(["session", "create", "--detach", "--json", ...args], options);
  expect(r.stderr).toBe("");
  expect(r.exitCode).toBe(0);
  return JSON.parse(r.stdout).id as string;
}

function inspect(id: string) {
  const out = Bun.spawnSync(["docker", "inspect", `beaker-${id}`]).stdout.toString();
  return JSON.parse(out)[0] as { Config: { Labels: Record<string, string> }; Mounts: Array<{ Source: string; Destination: string }> };
}

describe("list and describe", () => {
  test("list --json and describe --json parse and match the containers; IDs by prefix or name", async () => {
    const id = await createDetached(["--name", "train", "--gpus", "2", "--", "sleep", "300"]);
    const list = JSON.parse((await executor.run(["session", "list", "--json"], asUser)).stdout);
    expect(list).toHaveLength(1);
    const [s] = list;
    const labels = inspect(id).Config.Labels;
    expect(s).toMatchObject({ id, name: "train", user: testUser, node, status: "running", requestedGpus: 2, queuePosition: null, exitCode: null, reason: null });
    expect(s.gpus.join(",")).toBe(labels["beaker.gpus"]!);
    expect(s.gpus).toEqual(eightUuids.slice(0, 2));
    expect(s.mounts).toContain(`/home/${testUser}:/home/${testUser}`);
    expect(s.uid).toBe(Number(labels["beaker.uid"]));

    const byName = JSON.parse((await executor.run(["session", "describe", "train", "--json"], asUser)).stdout);
    const byPrefix = JSON.parse((await executor.run(["session", "describe", id.slice(0, 4), "--json"], asUser)).stdout);
    const only = JSON.parse((await executor.run(["session", "describe", "--json"], asUser)).stdout);
    expect(byName.id).toBe(id);
    expect(byPrefix.id).toBe(id);
    expect(only.id).toBe(id);
    expect(byName.devices).toEqual(eightUuids.slice(0, 2).map((uuid, index) => ({ uuid, index, name: "Tesla V100S-PCIE-32GB" })));

    const table = await executor.run(["session", "list"], asUser);
    expect(table.stdout.split("\n")[0]).toMatch(/^ID\s+NAME\s+USER\s+IMAGE\s+GPUS\s+GPU%\s+GPU MEM\s+STATUS\s+STARTED\s+DURATION\s+LEFT\s+PORTS$/);
    // GPU% and GPU MEM are "-" until the first sample (every 30 s by default), then figures.
    expect(table.stdout).toMatch(new RegExp(`^${id}\\s+train\\s+${testUser}\\s+\\S+\\s+2\\s+(-|\\d+%)\\s+(-|[\\d.]+ [KMG]iB)\\s+running\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d\\s+\\d+s\\s+-`, "m"));
    const text = await executor.run(["session", "describe", "train"], asUser);
    expect(text.stdout).toMatch(/^GPUs:\s+0 {2}GPU-\S+ {2}Tesla V100S-PCIE-32GB\n\s+1 {2}GPU-/m);

    const stop = await executor.run(["session", "stop", "--timeout", "0", "train"], asUser);
    expect(stop).toMatchObject({ exitCode: 0, stderr: `stopped session train (${id})\n` });
    expect(executor.containers()).toEqual([]);
    const again = await executor.run(["session", "stop", id], asUser);
    // With --timeout 0 the TERM and the KILL come together: whichever ended it is the exit code (143 or 137).
    expect(again).toMatchObject({ exitCode: 6, stdout: "" });
    expect(again.stderr).toMatch(/^beaker: session train has already ended \(stopped by user, exit code 1(43|37)\)\n$/);
  }, 60_000);

  test("finished sessions are remembered with exit code and reason, across an executor restart", async () => {
    const r = await executor.run(["session", "create", "--gpus", "0", "--name", "batch", "--", "sh", "-c", "exit 3"], asUser);
    expect(r.exitCode).toBe(3);
    expect(JSON.parse((await executor.run(["session", "list", "--json"], asUser)).stdout)).toEqual([]);
    await executor.kill("SIGKILL");
    await executor.start();
    const all = JSON.parse((await executor.run(["session", "list", "--all", "--json"], asUser)).stdout);
    const batch = all.find((s: { name: string }) => s.name === "batch");
    expect(batch).toMatchObject({ status: "exited", exitCode: 3, reason: "exited" });
    expect(Date.parse(batch.finishedAt)).toBeGreaterThan(Date.parse(batch.startedAt));
    const described = await executor.run(["session", "describe", "batch"], asUser);
    expect(described.stdout).toMatch(/^Status:\s+exited \(3\)$/m);
    const table = await executor.run(["session", "list", "--all"], asUser);
    expect(table.stdout).toMatch(/batch\s.*exited \(3\)/);
    expect(JSON.parse((await executor.run(["session", "list", "--all", "--json"], { user: otherUser })).stdout)).toEqual([]);
  }, 60_000);
});

describe("exec and attach", () => {
  test("exec runs as the session's user with its GPUs, keeps the exit code, and picks the only session", async () => {
    const id = await createDetached(["--gpus", "2", "--", "sleep", "300"]);
    const gpus = await executor.run(["session", "exec", id, "--", "sh", "-c", "echo $NVIDIA_VISIBLE_DEVICES; id -un; echo $HOME"], asUser);
    expect(gpus).toEqual({ exitCode: 0, stdout: `${eightUuids.slice(0, 2).join(",")}\n${testUser}\n/home/${testUser}\n`, stderr: "" });
    expect((await executor.run(["session", "exec", "--", "sh", "-c", "echo oops >&2; exit 5"], asUser))).toEqual({ exitCode: 5, stdout: "", stderr: "oops\n" });
    expect((await executor.run(["session", "exec", "--", "cat"], { ...asUser, stdin: "through stdin\n" })).stdout).toBe("through stdin\n");
    const shell = await executor.run(["session", "exec"], { ...asUser, stdin: "echo in-$0\n" });
    expect(shell).toMatchObject({ exitCode: 0, stdout: "in-bash\n" });
    const missing = await executor.run(["session", "exec", "--", "no-such-program"], asUser);
    expect([126, 127]).toContain(missing.exitCode);
    expect(missing.stderr).toBe(`beaker: cannot run no-such-program in session ${testUser}-${id.slice(0, 6)}: executable file not found in $PATH\n`);
    await executor.run(["session", "stop", "--timeout", "0", id], asUser);
  }, 60_000);

  test("without a TTY, Ctrl-C (SIGINT) to exec reaches the command inside", async () => {
    const id = await createDetached(["--gpus", "0", "--", "sleep", "300"]);
    const proc = executor.spawn(["session", "exec", id, "--", "sh", "-c", 'trap "echo got-int; exit 3" INT; echo ready; while :; do sleep 0.1; done'], asUser);
    const reader = proc.stdout.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toBe("ready\n");
    // The trap is set (ready was printed after it); the executor delivers the signal once it knows the PID.
    proc.kill("SIGINT");
    let rest = "";
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      rest += new TextDecoder().decode(chunk.value);
    }
    expect(rest).toBe("got-int\n");
    expect(await proc.exited).toBe(3);
    await executor.run(["session", "stop", "--timeout", "0", id], asUser);
  }, 30_000);

  test("attach without a TTY carries stdin and output and returns the exit code; stop makes an attached CLI exit 143", async () => {
    // The session waits for a line on its stdin, which only an attached terminal can give it.
    const id = await createDetached(["--gpus", "0", "--", "sh", "-c", 'read line; echo "late $line"; exit 4']);
    expect(await executor.run(["session", "attach", id], { ...asUser, stdin: "go\n" })).toEqual({ exitCode: 4, stdout: "late go\n", stderr: "" });

    const long = await createDetached(["--gpus", "0", "--name", "long", "--", "sh", "-c", 'read line; echo "attached $line"; exec sleep 300']);
    const attached = executor.spawn(["session", "attach", "long"], { ...asUser, stdin: { pipe: true } });
    const input = attached.stdin as FileSink;
    input.write("go\n");
    input.flush();
    const reader = attached.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("attached go\n");
    expect((await executor.run(["session", "stop", "--timeout", "1", long], asUser)).exitCode).toBe(0);
    const [stderr, code] = await Promise.all([new Response(attached.stderr).text(), attached.exited]);
    reader.releaseLock();
    expect(code).toBe(143);
    expect(stderr).toBe("\nsession long was stopped by user\n");
  }, 60_000);

  test("with no ID and several sessions: the candidates and exit 2", async () => {
    const a = await createDetached(["--gpus", "0", "--", "sleep", "300"]);
    const b = await createDetached(["--gpus", "0", "--", "sleep", "300"]);
    for (const verb of ["attach", "exec", "stop", "describe"]) {
      const r = await executor.run(["session", verb], asUser);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(/^beaker: multiple running sessions found, select one with an ID\n/);
      expect(r.stderr).toContain(a);
      expect(r.stderr).toContain(b);
    }
    const none = await executor.run(["session", "attach", "nope"], asUser);
    expect(none).toEqual({ exitCode: 5, stdout: "", stderr: "beaker: no session nope of yours on this node\n" });
    for (const id of [a, b]) await executor.run(["session", "stop", "--timeout", "0", id], asUser);
  }, 60_000);
});

describe("one user never touches another's session", () => {
  test("list, describe, attach, exec and stop are refused across users", async () => {
    const id = await createDetached(["--gpus", "1", "--", "sleep", "300"]);
    const other = { user: otherUser };
    expect(JSON.parse((await executor.run(["session", "list", "--json"], other)).stdout)).toEqual([]);
    expect(JSON.parse((await executor.run(["session", "list", "--all", "--json"], other)).stdout)).toEqual([]);
    for (const verb of ["describe", "attach", "exec", "stop"]) {
      const r = await executor.run(["session", verb, id], other);
      expect(r).toEqual({ exitCode: 5, stdout: "", stderr: `beaker: no session ${id} of yours on this node\n` });
    }
    expect(await executor.run(["session", "exec", "--", "true"], other)).toEqual({ exitCode: 5, stdout: "", stderr: "beaker: you have no running sessions on this node\n" });
    // Root may act on all; the stop is recorded as the admin's.
    expect((await executor.run(["session", "exec", id, "--", "id", "-un"])).stdout).toBe(`${testUser}\n`);
    expect((await executor.run(["session", "stop", "--timeout", "0", id])).exitCode).toBe(0);
    expect(JSON.parse((await executor.run(["session", "describe", id, "--json"], asUser)).stdout).reason).toBe("stopped by admin");
  }, 60_000);
});

test("a queued session shows its place in list, and starts once stop frees the GPUs", async () => {
  const big = await createDetached(["--gpus", "8", "--", "sleep", "300"]);
  const queued = executor.spawn(["session", "create", "--gpus", "2", "--name", "waiting", "--", "sh", "-c", "echo $NVIDIA_VISIBLE_DEVICES"], asUser);
  const list = await eventually(async () => {
    const sessions = await executor.list(asUser);
    return sessions.some((s) => s.status === "queued") && sessions;
  });
  expect(list.find((s) => s.name === "waiting")).toMatchObject({ status: "queued", queuePosition: 1, requestedGpus: 2 });
  expect((await executor.run(["session", "list"], asUser)).stdout).toMatch(/waiting\s.*\s2\s+-\s+-\s+queued \(#1\)/);
  expect((await executor.run(["session", "stop", "--timeout", "0", big], asUser)).exitCode).toBe(0);
  const [out, code] = await Promise.all([new Response(queued.stdout).text(), queued.exited]);
  expect(code).toBe(0);
  expect(out.trim().split(",")).toHaveLength(2);
}, 60_000);

test("a queued request can be stopped; it never starts", async () => {
  const big = await createDetached(["--gpus", "8", "--", "sleep", "300"]);
  const queued = executor.spawn(["session", "create", "--gpus", "1", "--name", "never", "--", "true"], asUser);
  await eventually(async () => (await executor.list(asUser)).some((s) => s.name === "never" && s.status === "queued"));
  expect((await executor.run(["session", "stop", "never"], asUser)).exitCode).toBe(0);
  const [err, code] = await Promise.all([new Response(queued.stderr).text(), queued.exited]);
  expect(code).toBe(6);
  expect(err).toMatch(/beaker: session never was stopped by user before it started\n$/);
  await executor.run(["session", "stop", "--timeout", "0", big], asUser);
  expect(executor.containers()).toEqual([]);
}, 60_000);

test("idleTimeout stops a session nobody attached to, with a line in the log", async () => {
  await using idle = new TestExecutor({ extra: "idleTimeout: 1\n", nodeName: testNodeName(import.meta.file, "idle") });
  await idle.start();
  const r = await idle.run(["session", "create", "--detach", "--json", "--gpus", "0", "--", "sleep", "300"], asUser);
  const id = JSON.parse(r.stdout).id as string;
  const info = await eventually(async () => {
    const described = JSON.parse((await idle.run(["session", "describe", id, "--json"], asUser)).stdout) as { status: string };
    return described.status === "exited" && described;
  });
  expect(info).toMatchObject({ status: "exited", reason: "idle" });
  expect(idle.log()).toContain(`stopping session ${id} of ${testUser}: nobody attached for 1 s (idleTimeout)`);
}, 60_000);

test("a container removed behind the executor's back is recorded as lost, and its GPUs are freed", async () => {
  const id = await createDetached(["--gpus", "2", "--", "sleep", "300"]);
  Bun.spawnSync(["docker", "rm", "-f", `beaker-${id}`]);
  const info = await eventually(async () => {
    const described = JSON.parse((await executor.run(["session", "describe", id, "--json"], asUser)).stdout) as { status: string };
    return described.status === "exited" && described;
  });
  expect(info).toMatchObject({ status: "exited", reason: "executor lost the container" });
  expect((await executor.claims()).every((c) => c === null)).toBe(true);
}, 30_000);
