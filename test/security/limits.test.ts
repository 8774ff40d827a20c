/**
 * Issue 26, findings 5 and 8, as an ordinary local user against a real executor and server: nobody but root can hold
 * the node's one-executor claim; a user's sessions are capped; a session's memory defaults to at most half the node;
 * a burst of bad tokens at the server is answered 429 while a good token keeps working.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { totalmem } from "node:os";
import { join } from "node:path";
import { busyboxImage, otherUser, TestExecutor, testUser } from "../executor-harness.ts";
import { beakerBinary, eventually, removeDir, testNodeName, within } from "../harness.ts";
import { TestServer } from "../server-harness.ts";
import { asUser } from "./harness.ts";

const node = testNodeName(import.meta.file);
const executor = new TestExecutor({ nodeName: node, extra: "maxSessionsPerUser: 2\n" });
const dockerSocket = process.env.DOCKER_HOST?.replace(/^unix:\/\//, "") ?? "/var/run/docker.sock";

beforeAll(() => executor.removeLeftovers());
afterAll(() => executor.cleanup());

/** What anyone can compute from the node's name (the health endpoint says it) and the engine's socket path. */
function claimKey(nodeName: string): string {
  return createHash("sha256").update(`${realpathSync(dockerSocket)}\n${nodeName}`).digest("hex").slice(0, 32);
}

describe("5. the one-executor-per-node claim", () => {
  test("another user holding the claim's old socket name, or trying its file, cannot stop an executor from starting", async () => {
    const claimNode = testNodeName(import.meta.file, "claim");
    const key = claimKey(claimNode);
    // The attacker binds the abstract socket that used to be the claim, and keeps it (with the Bun inside dist/beaker,
    // which every user may run).
    const squat = `Bun.listen({ unix: "\\0beaker-executor-${key}", socket: { data() {} } }); console.log("held"); setTimeout(() => {}, 120000);`;
    const squatter = Bun.spawn(["setpriv", `--reuid=${testUser}`, `--regid=${testUser}`, "--init-groups", beakerBinary, "-e", squat], {
      env: { PATH: "/usr/bin:/bin", BUN_BE_BUN: "1" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const first = new TestExecutor({ nodeName: claimNode });
    try {
      expect(new TextDecoder().decode((await squatter.stdout.getReader().read()).value).trim()).toBe("held");
      // The name really is held: root cannot bind it either.
      expect(() => Bun.listen({ unix: `\0beaker-executor-${key}`, socket: { data() {} } })).toThrow();
      // The claim's file is out of the attacker's reach: it can neither create nor lock it.
      const file = `/run/beaker/claims/executor-${key}.lock`;
      const tried = asUser(testUser, `flock -n ${file} true`);
      expect(tried.exitCode).not.toBe(0);
      expect(tried.stderr).toContain("Permission denied");
      await first.start();
      const dir = statSync("/run/beaker/claims");
      expect([dir.uid, dir.mode & 0o777]).toEqual([0, 0o700]);
      expect(existsSync(file)).toBe(true);
      // A second executor for the same engine and node still refuses, with the same line and exit code as before.
      const second = new TestExecutor({ nodeName: claimNode });
      try {
        const proc = Bun.spawn([beakerBinary, "executor", "run", "--config", join(second.dir, "config.yml")], { stdout: "pipe", stderr: "pipe" });
        const code = await within(proc.exited, 30_000, "the second executor");
        expect(code).toBe(6);
        expect(await new Response(proc.stderr).text()).toContain(`another executor already manages node ${claimNode}`);
      } finally {
        removeDir(second.dir);
      }
    } finally {
      squatter.kill("SIGKILL");
      await first.cleanup();
    }
  }, 90_000);
});

describe("8. per-user caps", () => {
  beforeAll(() => executor.start());

  test("a session over maxSessionsPerUser is refused with one line and exit 6; another user is not affected", async () => {
    const create = (user: string) => executor.run(["session", "create", "--gpus", "0", "--detach", "--image", busyboxImage, "--", "sleep", "600"], { user });
    for (let i = 0; i < 2; i++) expect((await create(testUser)).exitCode).toBe(0);
    const third = await create(testUser);
    expect(third.exitCode).toBe(6);
    expect(third.stderr.trim().split("\n")).toHaveLength(1);
    expect(third.stderr).toContain("the most one user may have is 2");
    const other = await create(otherUser);
    expect(other.exitCode).toBe(0);
    expect((await executor.list({ user: testUser })).filter((s) => s.status === "running")).toHaveLength(2);
    executor.removeLeftovers();
  }, 90_000);

  test("a session's memory defaults to at most half the node, and its /dev/shm to no more than that", async () => {
    await eventually(async () => (await executor.list({ user: testUser })).every((s) => s.status === "exited") || undefined, 30_000, { what: "the earlier sessions to end" });
    const r = await executor.run(["session", "create", "--gpus", "0", "--detach", "--image", busyboxImage, "--", "sleep", "600"], { user: testUser });
    expect(r.exitCode).toBe(0);
    const id = r.stdout.trim().split("\n")[0]!;
    const inspect = Bun.spawnSync(["docker", "inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.ShmSize}}", `beaker-${id}`]).stdout.toString().trim();
    const [memory, shm] = inspect.split(" ").map(Number) as [number, number];
    expect(memory).toBeGreaterThan(0);
    expect(memory).toBeLessThanOrEqual(totalmem() / 2);
    expect(shm).toBeLessThanOrEqual(memory);
    executor.removeLeftovers();
  }, 60_000);
});

describe("8. failed token attempts at the server", () => {
  const server = new TestServer();
  afterAll(() => server.cleanup());

  test("a burst of bad tokens gets 429 with Retry-After and a log line, while a good token still works", async () => {
    await server.start();
    const good = await server.createUser("ada");
    expect((await server.api("/whoami", good)).status).toBe(200);
    const answers: Array<{ status: number; retryAfter: string | null }> = [];
    for (let i = 0; i < 30; i++) {
      const res = await server.api("/whoami", `bkr_${i.toString(16).padStart(10, "0")}_${"B".repeat(43)}`);
      answers.push({ status: res.status, retryAfter: res.headers.get("retry-after") });
    }
    const limited = answers.filter((a) => a.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(answers.every((a) => a.status === 401 || a.status === 429)).toBe(true);
    expect(Number(limited[0]!.retryAfter)).toBeGreaterThan(0);
    expect(readFileSync(join(server.dir, "log"), "utf8")).toContain("too many failed token attempts from 127.0.0.1");
    expect((await server.api("/whoami", good)).status).toBe(200);
  }, 60_000);
});
