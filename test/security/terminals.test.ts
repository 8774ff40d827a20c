/**
 * Terminals an ordinary user opens on the executor (root, every local user can reach its socket) cost it a bounded
 * amount, whatever the user does with them: output nobody reads is not buffered without bound, a flood of control
 * frames makes a bounded number of Docker calls, which stop when the client leaves, and one user's terminals and
 * requests in flight are capped. Measured as that user against a real executor.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { busyboxImage, otherUser, TestExecutor, testUser } from "../executor-harness.ts";
import { eventually, testNodeName } from "../harness.ts";
import { executorPid, proofFor, raw, rssMiB, terminalSocket, uidOf } from "./harness.ts";

const node = testNodeName(import.meta.file);
// Room for the 20 stalled terminals below, and a cap small enough to reach in a test.
const maxTerminals = 24;
const executor = new TestExecutor({ nodeName: node, extra: `maxTerminalsPerUser: ${maxTerminals}\n` });
let pid = 0;
let attacker = 0;
let victim = 0;

beforeAll(async () => {
  executor.removeLeftovers();
  await executor.start();
  pid = await executorPid(executor);
  attacker = uidOf(testUser);
  victim = uidOf(otherUser);
});
afterAll(() => executor.cleanup());

/** A detached session of `user` (busybox); its id and its container. */
async function detached(user: string, command: string[]): Promise<{ id: string; container: string }> {
  const r = await executor.run(["session", "create", "--detach", "--gpus", "0", "--image", busyboxImage, ...(command.length ? ["--", ...command] : [])], { user });
  if (r.exitCode !== 0) throw new Error(`session create failed: ${r.stderr}`);
  const id = r.stdout.trim().split("\n")[0]!;
  const container = Bun.spawnSync(["docker", "ps", "-q", "--no-trunc", "--filter", `label=beaker.node=${node}`, "--filter", `label=beaker.session=${id}`]).stdout.toString().trim();
  if (!container) throw new Error(`no container for session ${id}`);
  return { id, container };
}

function removeSessions(): void {
  const ids = executor.containers();
  if (ids.length) Bun.spawnSync(["docker", "rm", "-f", ...ids]);
}

/** Host PIDs of the processes named `name` in a container. */
function processesIn(container: string, name: string): number[] {
  const out = Bun.spawnSync(["docker", "top", container, "-eo", "pid,comm"]).stdout.toString();
  return out
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[1] === name)
    .map((f) => Number(f[0]));
}

/** A process's state letter and the bytes it has written so far. */
function progress(hostPid: number): { state: string; written: number } {
  try {
    const state = /^\S+ \(.*\) (\S)/.exec(readFileSync(`/proc/${hostPid}/stat`, "utf8"))?.[1] ?? "?";
    const written = Number(/wchar:\s*(\d+)/.exec(readFileSync(`/proc/${hostPid}/io`, "utf8"))?.[1] ?? 0);
    return { state, written };
  } catch {
    return { state: "gone", written: 0 };
  }
}

/** Docker's resize events for a container since `since` (seconds): the executor's resize calls, with their sizes. */
function resizeEvents(container: string, since: number): string[] {
  const until = (Date.now() / 1000).toFixed(3);
  const out = Bun.spawnSync(["docker", "events", "--since", since.toFixed(3), "--until", until, "--filter", `container=${container}`, "--filter", "event=resize", "--format", "{{.Actor.Attributes.width}}x{{.Actor.Attributes.height}}"]);
  return out.stdout.toString().split("\n").filter(Boolean);
}

describe("6. output nobody reads is not buffered without bound", () => {
  test("20 terminals running `yes` whose clients stopped reading grow the executor by less than 200 MB", async () => {
    const { id, container } = await detached(testUser, ["sleep", "600"]);
    const before = rssMiB(pid);
    const clients = Array.from({ length: 20 }, () => executor.spawn(["session", "exec", id, "--", "yes"], { user: testUser }));
    try {
      await eventually(() => processesIn(container, "yes").length === 20 || undefined, 60_000, { what: "20 `yes` running in the session" });
      // The clients stop reading, as a terminal suspended with Ctrl-Z would.
      for (const client of clients) client.kill("SIGSTOP");
      const yes = processesIn(container, "yes");
      let last = yes.map((p) => progress(p).written);
      let peak = before;
      // Done when every `yes` waits in a write that nobody takes (the executor stopped reading), or when the executor
      // has grown past the bound (it reads on and holds what it cannot send).
      await eventually(
        () => {
          peak = Math.max(peak, rssMiB(pid));
          const now = yes.map(progress);
          const blocked = now.every((p, i) => p.state === "S" && p.written === last[i]);
          last = now.map((p) => p.written);
          return blocked || peak - before >= 200 || undefined;
        },
        90_000,
        { intervalMs: 500, what: "every `yes` to block, or the executor to grow by 200 MB" },
      );
      console.log(`executor RSS with 20 stalled terminals: ${before.toFixed(0)} MiB before, ${peak.toFixed(0)} MiB at most`);
      expect(peak - before).toBeLessThan(200);
      expect(await executorPid(executor)).toBe(pid);
    } finally {
      for (const client of clients) client.kill("SIGKILL");
      removeSessions();
    }
  }, 180_000);

  test("a client that stops reading and comes back gets every byte, and the command its exit code", async () => {
    const { id, container } = await detached(testUser, ["sleep", "600"]);
    const script = "while [ ! -e /tmp/go ]; do sleep 0.1; done; seq 1 3000000; exit 3";
    const client = executor.spawn(["session", "exec", id, "--", "sh", "-c", script], { user: testUser });
    try {
      await eventually(() => processesIn(container, "sh").length === 1 || undefined, 30_000, { what: "the command waiting in the session" });
      // The client stops reading (suspended), and only then does the output start: 20 MB of it.
      client.kill("SIGSTOP");
      Bun.spawnSync(["docker", "exec", container, "touch", "/tmp/go"]);
      const [seq] = await eventually(() => {
        const found = processesIn(container, "seq");
        return found.length === 1 ? found : undefined;
      }, 30_000, { what: "seq running in the session" });
      let last = -1;
      // The executor stopped reading for this client: seq waits in its write.
      await eventually(
        () => {
          const now = progress(seq!);
          const blocked = now.state === "S" && now.written === last;
          last = now.written;
          return blocked || undefined;
        },
        30_000,
        { intervalMs: 500, what: "seq to wait for the stopped client" },
      );
      client.kill("SIGCONT");
      const [out, code] = await Promise.all([new Response(client.stdout).text(), client.exited]);
      const lines = out.split("\n");
      expect(lines.length).toBe(3_000_001);
      expect(lines[2_999_999]).toBe("3000000");
      expect(code).toBe(3);
    } finally {
      client.kill("SIGKILL");
      removeSessions();
    }
  }, 120_000);
});

describe("7. control frames make a bounded number of Docker calls", () => {
  test("100,000 resize frames: the executor grows by less than 200 MB, answers within 3 s, and its Docker calls stop when the client leaves", async () => {
    const { id, container } = await detached(testUser, []);
    const ws = await terminalSocket(executor, attacker, `/v1/sessions/${id}/attach`);
    try {
      // The shell's answer shows the executor's side of the terminal is attached: frames now reach it directly.
      const ready = new Promise<void>((resolve) => (ws.onmessage = () => resolve()));
      ws.send(new TextEncoder().encode("echo ready\n"));
      await ready;
      const before = rssMiB(pid);
      const start = Date.now() / 1000;
      for (let i = 0; i < 100_000; i++) ws.send(JSON.stringify({ type: "resize", cols: 80 + (i % 50), rows: 24 + (i % 20) }));
      ws.send(JSON.stringify({ type: "resize", cols: 123, rows: 45 }));
      let peak = before;
      const t0 = performance.now();
      const list = await executor.run(["session", "list"], { user: testUser });
      const listMs = performance.now() - t0;
      expect(list.exitCode).toBe(0);
      // The last size asked for is the one the terminal ends at.
      await eventually(
        () => {
          peak = Math.max(peak, rssMiB(pid));
          return peak - before >= 200 || resizeEvents(container, start).includes("123x45") || undefined;
        },
        60_000,
        { intervalMs: 250, what: "the last size (123x45) to reach Docker, or the executor to grow by 200 MB" },
      );
      console.log(`100,000 resize frames: executor RSS ${before.toFixed(0)} -> ${peak.toFixed(0)} MiB at most; session list took ${listMs.toFixed(0)} ms; ${resizeEvents(container, start).length} Docker resize calls`);
      expect(peak - before).toBeLessThan(200);
      expect(listMs).toBeLessThan(3000);
      ws.close();
      const left = Date.now() / 1000;
      // After the client left: quiet within a few seconds, or clearly still at work.
      let seen = -1;
      const after = await eventually(
        () => {
          const now = resizeEvents(container, left).length;
          const settled = now === seen || now > 50;
          seen = now;
          return settled ? now + 1 : undefined;
        },
        30_000,
        { intervalMs: 1000, what: "Docker resize calls to stop after the client left" },
      );
      expect(after - 1).toBeLessThanOrEqual(1);
    } finally {
      ws.close();
      removeSessions();
    }
  }, 180_000);
});

describe("8. one user's terminals and requests in flight are capped", () => {
  test(`terminals past maxTerminalsPerUser (${maxTerminals}) are refused with a clear reason; other users still get theirs`, async () => {
    const { id } = await detached(testUser, ["sleep", "600"]);
    const theirs = await detached(otherUser, ["sleep", "600"]);
    const open: WebSocket[] = [];
    try {
      for (let i = 0; i < maxTerminals; i++) open.push(await terminalSocket(executor, attacker, `/v1/sessions/${id}/attach`));
      const refused = await executor.run(["session", "exec", id, "--", "true"], { user: testUser });
      expect(refused.exitCode).toBe(6);
      expect(refused.stderr).toBe(`beaker: you have ${maxTerminals} terminals open on this node, the most allowed (maxTerminalsPerUser): close one first\n`);
      expect((await executor.run(["session", "exec", theirs.id, "--", "true"], { user: otherUser })).exitCode).toBe(0);
      open.pop()!.close();
      await eventually(async () => (await executor.run(["session", "exec", id, "--", "true"], { user: testUser })).exitCode === 0 || undefined, 10_000, {
        what: "a terminal to be allowed again once one closed",
      });
    } finally {
      for (const ws of open) ws.close();
      removeSessions();
    }
  }, 120_000);

  test("requests a user leaves hanging (a body that never ends) are capped; the next is refused with a clear reason; other users are served", async () => {
    const hanging: Array<{ end(): void }> = [];
    try {
      for (let i = 0; i < 100; i++) {
        const socket = await Bun.connect({ unix: executor.socket, socket: { data() {} } });
        socket.write(`POST /v1/sessions/none/keep HTTP/1.1\r\nhost: beaker\r\nx-beaker-proof: ${proofFor(executor, attacker)}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"sec`);
        hanging.push(socket);
      }
      const refused = await eventually(
        async () => {
          const r = await executor.run(["session", "list"], { user: testUser });
          return r.exitCode === 6 ? r : undefined;
        },
        10_000,
        { what: "the user's next request to be refused" },
      );
      expect(refused.stderr).toMatch(/^beaker: you have \d+ requests in flight on this node, the most allowed: wait for them to finish\n$/);
      const other = await raw(executor, victim, "GET", "/v1/sessions");
      expect(other.status).toBe(200);
      for (const socket of hanging.splice(0)) socket.end();
      await eventually(async () => (await executor.run(["session", "list"], { user: testUser })).exitCode === 0 || undefined, 10_000, {
        what: "the user's requests to be served again once theirs ended",
      });
    } finally {
      for (const socket of hanging) socket.end();
    }
  }, 60_000);
});

describe("6b. a terminal whose client left at once leaves nothing open", () => {
  test("60 attaches closed right after opening: the executor's open files come back to what they were", async () => {
    const { id } = await detached(testUser, ["sleep", "600"]);
    const fds = () => readdirSync(`/proc/${pid}/fd`).length;
    // One attach first, so whatever the first terminal opens for good (Docker's connection pool) is counted before.
    (await terminalSocket(executor, attacker, `/v1/sessions/${id}/attach`)).close();
    await eventually(() => executor.run(["session", "list"], { user: testUser }).then((r) => r.exitCode === 0), 10_000, { what: "the executor to answer" });
    const before = fds();
    for (let i = 0; i < 60; i++) (await terminalSocket(executor, attacker, `/v1/sessions/${id}/attach`)).close();
    // Each close races Docker's attach; a stream that arrives after its client left must be closed too.
    await eventually(() => fds() <= before + 4, 20_000, { what: "the executor's open files to come back down", detail: () => `${fds()} open, ${before} before` });
    removeSessions();
  });
});

test("after every test: the executor is the same process", async () => {
  expect(await executorPid(executor)).toBe(pid);
});
