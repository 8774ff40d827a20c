/** `BEAKER_TRACE=1` and `beaker executor run --trace`: where one session create spends its time. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { managedContainers, TestExecutor, testUser } from "../executor-harness.ts";
import { testNodeName } from "../harness.ts";

const node = testNodeName(import.meta.file);
const executor = new TestExecutor({ nodeName: node, args: ["--trace"] });
beforeAll(() => executor.start());
afterAll(() => executor.cleanup());

/** The timeline's lines as "source phase", in the order printed (by time). */
function timeline(stderr: string): { phases: string[] } {
  const lines = stderr.split("\n").map((l) => /^\s*[\d.]+\s+\+[\d.]+\s+(\S+)\s+(.+)$/.exec(l));
  return { phases: lines.filter((m) => m !== null).map((m) => `${m[1]} ${m[2]}`) };
}

test("BEAKER_TRACE=1: one timeline of the CLI's and the executor's phases on stderr; the session's own output is untouched", async () => {
  const result = await executor.run(["session", "create", "--gpus", "0", "--", "sh", "-c", "echo hi"], { user: testUser, env: { BEAKER_TRACE: "1" } });
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toBe("hi\n");
  expect(result.stderr).toStartWith("beaker trace: ms since the CLI started, +ms since the line before\n");
  const { phases } = timeline(result.stderr);
  const at = (phase: string) => {
    expect(phases).toContain(phase);
    return phases.indexOf(phase);
  };
  // What causes what comes in that order on one clock, across the two processes.
  const chains = [
    ["cli main", "cli config read", "cli proof written", "executor request received", "executor request parsed", "executor claim", "executor image check"],
    ["executor image check", "executor user files", "executor create", "cli created event", "cli terminal requested", "executor terminal open"],
    ["cli terminal requested", "cli terminal open", "cli first output", "cli exit message"],
    ["executor terminal open", "executor attach", "executor start", "cli started message", "cli exit message"],
    ["executor start", "executor wait", "executor remove", "cli exit message", "cli exit"],
  ];
  for (const chain of chains) {
    const positions = chain.map(at);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
  }
  expect(managedContainers(node)).toEqual([]);
});

test("--debug prints the timeline too; without either, nothing; the executor logs each create with --trace", async () => {
  const debug = await executor.run(["session", "create", "--gpus", "0", "--debug", "--", "true"], { user: testUser });
  expect(debug.exitCode).toBe(0);
  expect(timeline(debug.stderr).phases).toContain("executor create");
  const quiet = await executor.run(["session", "create", "--gpus", "0", "--", "true"], { user: testUser });
  expect(quiet).toEqual({ exitCode: 0, stdout: "", stderr: "" });
  const log = executor.log();
  expect(log).toMatch(/trace [0-9a-f]{12} create: request received \+0\.0, caller checked \+\d+\.\d, .*, create \+\d+\.\d/);
  expect(log).toMatch(/trace [0-9a-f]{12} run: terminal open \+\d+\.\d, attach \+\d+\.\d, start \+\d+\.\d, wait \+\d+\.\d, remove \+\d+\.\d/);
});
