/**
 * A requested --port the session cannot have (no network to reach it on) is a failed start (exit 125, naming the port and why), and leaves
 * nothing behind. The engine is a private one without a bridge network, in its own network
 * namespace; the machine's engine must come out of it untouched.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { busyboxImage, TestExecutor, testUser } from "../executor-harness.ts";
import { testNodeName } from "../harness.ts";
import { PrivateEngine } from "../private-engine.ts";

const engine = new PrivateEngine(["--bridge", "none"]);
let executor: TestExecutor;
const asUser = { user: testUser };

beforeAll(async () => {
  await engine.start();
  engine.loadImage(busyboxImage);
  // Sessions there get no network at all, as on a node whose admin turned it off.
  executor = new TestExecutor({ dockerSocket: engine.socket, nodeName: testNodeName(import.meta.file), extra: "sessionNetwork: none\n" });
  await executor.start();
}, 60_000);
afterAll(async () => {
  await executor?.cleanup();
  await engine.stop();
});

async function claimedGpus(): Promise<number> {
  const gpus = JSON.parse((await executor.run(["node", "gpus", "--json"])).stdout) as Array<{ claimedBy: string | null }>;
  return gpus.filter((g) => g.claimedBy !== null).length;
}

test("detached: exit 125 naming the port and why; no container left, its GPUs free for the next session", async () => {
  const created = await executor.run(["session", "create", "--detach", "--gpus", "2", "--image", busyboxImage, "--port", "8888", "--", "sleep", "300"], asUser);
  expect(created).toEqual({
    exitCode: 125,
    stdout: "",
    stderr: `beaker: port 8888 cannot be reached: the container got no network (the node's sessionNetwork is "none", or its Docker engine has no bridge); ask the node's admin, or start the session without --port\n`,
  });
  expect(engine.docker(["ps", "-aq"]).stdout).toBe("");
  expect(await claimedGpus()).toBe(0);
  expect(JSON.parse((await executor.run(["session", "list", "--json"], asUser)).stdout)).toEqual([]);
  // All eight GPUs can be had at once, so none is still held by the failed session.
  const next = await executor.run(["session", "create", "--gpus", "8", "--image", busyboxImage, "--", "sh", "-c", "echo $NVIDIA_VISIBLE_DEVICES | tr , '\\n' | wc -l"], asUser);
  expect(next).toMatchObject({ exitCode: 0, stdout: "8\n" });
}, 60_000);

test("attached, several ports, a command that ends at once: still 125 with every port named", async () => {
  const created = await executor.run(["session", "create", "--gpus", "0", "--image", busyboxImage, "--port", "8888", "--port", "9999", "--", "true"], asUser);
  expect(created.exitCode).toBe(125);
  expect(created.stderr).toStartWith("beaker: ports 8888, 9999 cannot be reached: the container got no network");
  expect(engine.docker(["ps", "-aq"]).stdout).toBe("");
}, 60_000);

test("the machine's engine is untouched: the private one stops by its pid, its namespace goes, docker0 stays", async () => {
  await executor.kill();
  await engine.stop();
  expect(Bun.spawnSync(["ip", "netns", "list"]).stdout.toString()).not.toContain(engine.netns);
  expect(existsSync(engine.dir)).toBe(false);
  expect(Bun.spawnSync(["ip", "link", "show", "docker0"]).exitCode).toBe(0);
  expect(Bun.spawnSync(["docker", "run", "--rm", busyboxImage, "true"]).exitCode).toBe(0);
}, 60_000);
