/** `session stop` in process against a fake executor: the grace period it asks for, and what it refuses. */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { fakeExecutor, runCommand, tempHome } from "../command-harness.ts";

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

const running = { id: "0123456789ab", name: "ada-1", status: "running", reason: null, exitCode: null };

/** An executor with one running session; returns the body of each stop request it got. */
function withSession() {
  const stops: unknown[] = [];
  executor = fakeExecutor(home.env.BEAKER_EXECUTOR_SOCKET!, (call) => {
    if (call.method === "GET" && call.path === "/v1/sessions/ada-1") return running;
    if (call.method === "POST" && call.path === "/v1/sessions/0123456789ab/stop") {
      stops.push(call.body);
      return { ...running, status: "exited" };
    }
    return undefined;
  });
  return stops;
}

test("without --timeout the session gets 10 seconds between SIGTERM and SIGKILL", async () => {
  const stops = withSession();
  const r = await runCommand(["session", "stop", "ada-1"], { env: home.env });
  expect(r.code).toBe(0);
  expect(stops).toEqual([{ timeout: 10 }]);
  expect(r.stderr).toContain("stopped session ada-1 (0123456789ab)");
});

test("--timeout is passed on, from 0 to 240; anything else is a usage error and nothing is stopped", async () => {
  const stops = withSession();
  expect((await runCommand(["session", "stop", "ada-1", "--timeout", "0"], { env: home.env })).code).toBe(0);
  expect((await runCommand(["session", "stop", "ada-1", "--timeout", "240"], { env: home.env })).code).toBe(0);
  for (const bad of ["241", "-1", "1.5"]) {
    const r = await runCommand(["session", "stop", "ada-1", "--timeout", bad], { env: home.env });
    expect(r.code).toBe(2);
    expect(`${r.stderr}${r.error?.message ?? ""}`).toContain(bad === "-1" ? "unknown flag -1" : "--timeout must be a whole number of seconds from 0 to 240");
  }
  expect(stops).toEqual([{ timeout: 0 }, { timeout: 240 }]);
});
