/** `session create`, `list` and `describe` run in process against a fake executor: the request, the output, the exit code. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { CreateSessionRequest, SessionDetails, SessionView } from "../../src/executor/api-types.ts";
import { eventStream, fakeExecutor, runCommand, tempHome, type ExecutorRoute } from "../command-harness.ts";

const now = new Date("2026-11-27T12:00:00Z");

function session(over: Partial<SessionView> = {}): SessionView {
  return {
    id: "0123456789ab",
    name: "ada-1",
    node: "gpu-1",
    user: "ada",
    account: null,
    uid: 1000,
    gpus: ["GPU-aaaa"],
    image: "ubuntu:24.04",
    status: "running",
    tty: true,
    requestedGpus: 1,
    ports: [],
    mounts: ["/home/ada:/home/ada"],
    createdAt: "2026-11-27T11:00:00Z",
    startedAt: "2026-11-27T11:00:05Z",
    finishedAt: null,
    queuePosition: null,
    exitCode: null,
    reason: null,
    slurmJob: null,
    gpuUtilization: [],
    gpuMemoryUsedMiB: [],
    idleSince: null,
    idleAction: null,
    idleStopsAt: null,
    keptUntil: null,
    deadline: null,
    ...over,
  };
}

let home: ReturnType<typeof tempHome>;
let executor: ReturnType<typeof fakeExecutor> | null = null;

beforeEach(() => {
  home = tempHome();
});
afterEach(() => {
  executor?.stop();
  executor = null;
  home.cleanup();
});

function withExecutor(route: ExecutorRoute) {
  executor = fakeExecutor(home.env.BEAKER_EXECUTOR_SOCKET!, route);
  return executor;
}

const run = (argv: string[]) => runCommand(argv, { env: home.env, factory: { now: () => now } });

describe("session create", () => {
  const created = (request: CreateSessionRequest) =>
    eventStream([
      { type: "ticket", sessionId: "0123456789ab", ticket: "t1" },
      { type: "created", session: session({ gpus: Array.from({ length: request.gpus ?? 1 }, (_, i) => `GPU-${i}`), image: request.image ?? "default" }) },
    ]);

  test("--detach --json: the request the flags make, and the contract's JSON on stdout", async () => {
    const ex = withExecutor((call) => (call.path === "/v1/sessions" ? created(call.body as CreateSessionRequest) : undefined));
    const r = await run(["session", "create", "--detach", "--json", "--gpus", "2", "--image", "img:1", "--name", "n1", "--port", "8888", "--env", "A=1", "--mount", "/data:/data:ro", "--", "python", "train.py"]);
    expect(r.error).toBeNull();
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ id: "0123456789ab", name: "ada-1", node: "gpu-1", gpus: ["GPU-0", "GPU-1"], image: "img:1", status: "running" });
    const request = ex.calls.find((c) => c.path === "/v1/sessions")!.body as CreateSessionRequest;
    expect(request).toMatchObject({
      gpus: 2,
      image: "img:1",
      name: "n1",
      ports: [8888],
      env: ["A=1"],
      mounts: ["/data:/data:ro"],
      command: ["python", "train.py"],
      detach: true,
      noWait: false,
      tty: false,
      slurm: null,
    });
  });

  test("without flags: the defaults (node's GPU count, the user's default_image, no lists)", async () => {
    mkdirSync(join(home.dir, ".beaker"), { recursive: true });
    writeFileSync(home.env.BEAKER_CONFIG!, "default_image: mine:latest\n");
    const ex = withExecutor((call) => (call.path === "/v1/sessions" ? created(call.body as CreateSessionRequest) : undefined));
    const r = await run(["session", "create", "--detach", "--no-wait"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("0123456789ab\n");
    expect(ex.calls[0]!.body).toMatchObject({ gpus: null, image: "mine:latest", name: null, ports: [], env: [], mounts: [], command: [], noWait: true });
  });

  test.each([
    [["--json"], 2, "--json needs --detach"],
    [["--detach", "--gpus", "65"], 2, "--gpus must be a whole number from 0 to 64"],
    [["--detach", "--gpus", "two"], 2, '--gpus must be a number, not "two"'],
    [["--detach", "--env", "1A=x"], 2, '--env "1A=x" must be KEY=VALUE'],
    [["--detach", "--cpus", "0"], 2, "--cpus must be a positive number"],
    [["--detach", "--port", "70000"], 2, "--port must be a whole number from 1 to 65535"],
    [["--detach", "--gpu-type", "H100"], 2, "--gpu-type picks among a cluster's nodes"],
  ])("refused before anything is sent: %p", async (flags, code, message) => {
    const ex = withExecutor(() => undefined);
    const r = await run(["session", "create", ...flags]);
    expect(r.code).toBe(code);
    expect(r.error?.message).toContain(message);
    expect(ex.calls).toEqual([]);
  });

  test("the executor's refusal is the command's exit code (6: no room with --no-wait)", async () => {
    withExecutor((call) => (call.path === "/v1/sessions" ? eventStream([{ type: "error", code: "conflict", message: "2 GPUs asked, 1 free" }]) : undefined));
    const r = await run(["session", "create", "--detach", "--no-wait", "--gpus", "2"]);
    expect(r.code).toBe(6);
    expect(r.error?.message).toBe("2 GPUs asked, 1 free");
  });

  test("queued: one line on stderr says where it waits; stdout keeps only the ID", async () => {
    withExecutor((call) =>
      call.path === "/v1/sessions"
        ? eventStream([{ type: "queued", sessionId: "0123456789ab", position: 2, gpus: 4, free: 1 }, { type: "created", session: session() }])
        : undefined,
    );
    const r = await run(["session", "create", "--detach", "--gpus", "4"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("Waiting for 4 GPUs: position 2 in the queue (1 free now)");
    expect(r.stdout).toBe("0123456789ab\n");
  });
});

describe("session list", () => {
  const sessions = [
    session(),
    session({ id: "ba9876543210", name: "old", status: "exited", exitCode: 143, reason: "stopped by user", finishedAt: "2026-11-27T11:30:05Z", ports: ["8888"] }),
  ];

  test("a table with a row per session", async () => {
    const ex = withExecutor((call) => (call.path.startsWith("/v1/sessions") ? sessions : undefined));
    const r = await run(["session", "list", "--all"]);
    expect(r.code).toBe(0);
    const [header, first, second] = r.stdout.trimEnd().split("\n");
    expect(header!.split(/\s{3,}/)).toEqual(["ID", "NAME", "USER", "IMAGE", "GPUS", "GPU%", "GPU MEM", "STATUS", "STARTED", "DURATION", "LEFT", "PORTS"]);
    expect(first).toMatch(/^0123456789ab\s+ada-1\s+ada\s+ubuntu:24\.04\s+1\s+-\s+-\s+running\s+.+\s+59m\s+-$/);
    expect(second).toMatch(/exited \(143, stopped by user\).*30m\s+-\s+8888$/);
    expect(ex.calls.map((c) => c.path)).toEqual(["/v1/sessions?all=1"]);
  });

  test("--json prints the executor's records as they are", async () => {
    withExecutor((call) => (call.path === "/v1/sessions" ? sessions : undefined));
    const r = await run(["session", "list", "--json"]);
    expect(JSON.parse(r.stdout)).toEqual(sessions);
  });

  test("none: a line on stderr, nothing on stdout", async () => {
    withExecutor(() => []);
    const r = await run(["session", "list"]);
    expect(r).toMatchObject({ code: 0, stdout: "", stderr: "no sessions\n" });
  });

  test("--cluster without a server: says how to name one", async () => {
    const r = await run(["session", "list", "--cluster", "lab"]);
    expect(r.code).toBe(1);
    expect(r.error?.message).toContain("no Beaker server is configured");
  });
});

describe("session describe", () => {
  const details: SessionDetails = { ...session({ ports: ["8888"] }), devices: [{ uuid: "GPU-aaaa", index: 0, name: "NVIDIA H100" }] };

  test("one session: key-value lines", async () => {
    withExecutor((call) => (call.path === "/v1/sessions" ? [details] : call.path === `/v1/sessions/${details.id}` ? details : undefined));
    const r = await run(["session", "describe"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("ID:       0123456789ab\n");
    expect(r.stdout).toContain("User:     ada (uid 1000)\n");
    expect(r.stdout).toContain("GPUs:     0  GPU-aaaa  NVIDIA H100\n");
    expect(r.stdout).toContain("Ports:    8888\n");
    expect(r.stdout).toContain("Duration: 59m\n");
  });

  test("--json by name", async () => {
    const ex = withExecutor((call) => (call.path === "/v1/sessions/ada-1" ? details : undefined));
    const r = await run(["session", "describe", "ada-1", "--json"]);
    expect(JSON.parse(r.stdout)).toEqual(details);
    expect(ex.calls.map((c) => c.path)).toEqual(["/v1/sessions/ada-1"]);
  });

  test("two running and no ID: exit 2 listing them", async () => {
    withExecutor((call) => (call.path === "/v1/sessions" ? [session(), session({ id: "ffffffffffff", name: "b" })] : undefined));
    const r = await run(["session", "describe"]);
    expect(r.code).toBe(2);
    expect(r.error?.message).toContain("multiple running sessions found, select one with an ID");
    expect(r.error?.message).toContain("ffffffffffff  b  running");
  });

  test("an unknown session: exit 5 with the executor's words", async () => {
    withExecutor(() => undefined);
    const r = await run(["session", "describe", "nope"]);
    expect(r.code).toBe(5);
    expect(r.error?.message).toBe("no route GET /v1/sessions/nope");
  });
});

describe("--user on the verbs that name a session", () => {
  const bob = session({ id: "b0b0b0b0b0b0", name: "dev", user: "bob", uid: 1001 });

  test("describe NAME --user U asks the executor for U's session of that name", async () => {
    const ex = withExecutor((call) => (call.path === "/v1/sessions/dev?user=bob" ? { ...bob, devices: [] } : undefined));
    const r = await run(["session", "describe", "dev", "--user", "bob", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).id).toBe(bob.id);
    expect(ex.calls.map((c) => c.path)).toEqual(["/v1/sessions/dev?user=bob"]);
  });

  test("stop --user U with no ID: U's only running session among everyone's, then stopped by its full ID", async () => {
    const listed = [session(), session({ id: "b0b0b0b0b0b1", name: "old", user: "bob", uid: 1001, status: "exited" }), bob];
    const ex = withExecutor((call) => {
      if (call.path === "/v1/sessions?all=1") return listed;
      if (call.path === `/v1/sessions/${bob.id}?user=bob`) return { ...bob, devices: [] };
      if (call.path === `/v1/sessions/${bob.id}/stop`) return { ...bob, status: "exited" };
      return undefined;
    });
    const r = await run(["session", "stop", "--user", "bob"]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: `stopped session dev (${bob.id})\n` });
    expect(ex.calls.map((c) => `${c.method} ${c.path}`)).toEqual(["GET /v1/sessions?all=1", `GET /v1/sessions/${bob.id}?user=bob`, `POST /v1/sessions/${bob.id}/stop`]);
  });

  test("--user U with no ID and none of U's running: exit 5", async () => {
    withExecutor((call) => (call.path === "/v1/sessions?all=1" ? [session()] : undefined));
    const r = await run(["session", "keep", "--user", "bob", "--for", "1h"]);
    expect({ code: r.code, message: r.error?.message }).toEqual({ code: 5, message: "no running sessions of bob on this node" });
  });

  test("without --user a name goes to the executor bare (the caller's own sessions)", async () => {
    const ex = withExecutor((call) => (call.path === "/v1/sessions/dev" ? { ...session({ name: "dev" }), devices: [] } : undefined));
    expect((await run(["session", "describe", "dev", "--json"])).code).toBe(0);
    expect(ex.calls.map((c) => c.path)).toEqual(["/v1/sessions/dev"]);
  });

  test("--user with a session on another node is refused: another node's sessions are reached as yourself", async () => {
    withExecutor(() => undefined);
    const r = await run(["session", "describe", "dev", "--user", "bob", "--node", "gpu-9"]);
    expect({ code: r.code, message: r.error?.message }).toEqual({ code: 2, message: "--user acts on this node's sessions only: run the command on the session's node" });
  });
});
