/**
 * The one-executor-per-node claim (issue 26, finding 5): an flock on a file in a directory only its owner (root, in
 * production) can enter. Held for the process's life, freed by the kernel when the holder dies, never inherited.
 */
import { afterAll, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { claimNode, nodeClaimFile } from "../../src/executor/node-claim.ts";
import { ConflictError } from "../../src/errors.ts";
import { eventually, removeDir, tempDir } from "../harness.ts";

const parent = tempDir("beaker-claim-");
const dir = join(parent, "claims");
afterAll(() => removeDir(parent));
const node = { engine: "/var/run/docker.sock", nodeName: "n1" };
const message = "another executor already manages node n1 on the Docker engine at /var/run/docker.sock; stop it first (systemctl stop beaker-executor)";

test("a second claim on the same engine and node is refused with today's message; another node is not", () => {
  const held = claimNode(node, dir);
  try {
    expect(() => claimNode(node, dir)).toThrow(new ConflictError(message));
    claimNode({ ...node, nodeName: "n2" }, dir).release();
  } finally {
    held.release();
  }
  claimNode(node, dir).release();
});

test("the directory is its owner's alone and the file is 0600", () => {
  const held = claimNode(node, dir);
  held.release();
  expect(statSync(dir).mode & 0o777).toBe(0o700);
  expect(statSync(nodeClaimFile(node, dir)).mode & 0o777).toBe(0o600);
});

test("held by another process: refused; once that process is killed, the kernel frees it", async () => {
  claimNode(node, dir).release();
  // Another executor: a process that takes the claim the same way, then is killed without a chance to let go.
  const script = `const { claimNode } = await import(${JSON.stringify(join(import.meta.dir, "../../src/executor/node-claim.ts"))});
claimNode(${JSON.stringify(node)}, ${JSON.stringify(dir)}); console.log("held"); setInterval(() => {}, 1000);`;
  const holder = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe" });
  try {
    const reader = holder.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("held\n");
    expect(() => claimNode(node, dir)).toThrow(ConflictError);
  } finally {
    holder.kill("SIGKILL");
    await holder.exited;
  }
  const claimed = await eventually(() => claimNode(node, dir), 5000, { what: "the claim to be free after its holder died" });
  claimed.release();
});

test("never inherited: a child the executor spawns does not hold the claim", () => {
  const held = claimNode(node, dir);
  try {
    const fds = Bun.spawnSync(["sh", "-c", "ls -l /proc/self/fd/"]).stdout.toString();
    expect(fds).not.toContain(nodeClaimFile(node, dir));
  } finally {
    held.release();
  }
});
