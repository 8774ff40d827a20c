/**
 * Warm network namespaces on a real engine, through dist/beaker: the executor keeps two holders on the isolated
 * session network; a session without ports joins one (and so starts without Docker setting up a network), a session
 * with ports joins one too (nothing is published: executor/terminals/port-relay.ts); holders go with their sessions and with the
 * executor.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { busyboxImage, managedContainers, netnsHolders, TestExecutor, testUser } from "../executor-harness.ts";
import { eventually, testNodeName } from "../harness.ts";

const node = testNodeName(import.meta.file);
const executor = new TestExecutor({ nodeName: node });
beforeAll(async () => {
  executor.removeLeftovers();
  await executor.start();
});
afterAll(() => executor.cleanup());

function inspect(id: string): { Id: string; State: { Running: boolean }; Config: { Hostname: string; User: string }; HostConfig: { NetworkMode: string } } {
  return JSON.parse(Bun.spawnSync(["docker", "inspect", id]).stdout.toString())[0];
}

/** The node's holders once there are `count`, all running (full IDs). */
const holdersWhen = (count: number) =>
  eventually(
    () => {
      const ids = netnsHolders(node).map((id) => inspect(id));
      return ids.length === count && ids.every((h) => h.State.Running) && ids.map((h) => h.Id);
    },
    30_000,
    { what: `${count} running network holders`, detail: () => `holders: ${netnsHolders(node).join(", ")}` },
  );

const stop = async (ref: string) => expect(await executor.run(["session", "stop", ref, "--timeout", "0"], { user: testUser })).toMatchObject({ exitCode: 0 });

test("two warm holders on the session network, as nobody with no capabilities, with the node's hostname", async () => {
  const ids = await holdersWhen(2);
  for (const id of ids) {
    const holder = inspect(id);
    expect(holder.HostConfig.NetworkMode).toBe("beaker-sessions");
    expect(holder.Config.User).toBe("65534:65534");
    expect(holder.Config.Hostname).toBe(node.split(".")[0]!.slice(0, 63));
  }
});

test("a session without ports joins a warm namespace: its hostname, its own network; the pool is made up again, and the holder goes with the session", async () => {
  const warm = await holdersWhen(2);
  const made = await executor.run(["session", "create", "--detach", "--gpus", "0", "--name", "warm", "--", "sleep", "300"], { user: testUser });
  expect(made).toMatchObject({ exitCode: 0 });
  try {
    const [session] = managedContainers(node);
    const mode = inspect(session!).HostConfig.NetworkMode;
    expect(mode).toStartWith("container:");
    const joined = mode.slice("container:".length);
    expect(warm).toContain(joined);
    const seen = await executor.run(["session", "exec", "warm", "--", "sh", "-c", "hostname; test -e /sys/class/net/eth0 && echo has-eth0; id -un"], { user: testUser });
    expect(seen).toMatchObject({ exitCode: 0, stdout: `${node.split(".")[0]}\nhas-eth0\n${testUser}\n` });
    // Two idle ones again, besides the one the session joined.
    const now = await holdersWhen(3);
    expect(now).toContain(joined);
    await stop("warm");
    const after = await holdersWhen(2);
    expect(after).not.toContain(joined);
  } finally {
    if (executor.containers().length) await stop("warm");
  }
}, 60_000);

test("a session with --port joins a warm namespace too (nothing is published), and its port is reached through the executor", async () => {
  await holdersWhen(2);
  const serve = "mkdir -p /tmp/w && echo warm > /tmp/w/index.html && exec httpd -f -p 8888 -h /tmp/w";
  const made = await executor.run(["session", "create", "--detach", "--name", "warmweb", "--gpus", "0", "--image", busyboxImage, "--port", "8888", "--", "sh", "-c", serve], { user: testUser });
  expect(made).toMatchObject({ exitCode: 0 });
  const forward = executor.spawn(["session", "port-forward", "warmweb", "18889:8888"], { user: testUser });
  try {
    const [session] = managedContainers(node);
    expect(inspect(session!).HostConfig.NetworkMode).toStartWith("container:");
    const body = await eventually(async () => {
      const res = await fetch("http://127.0.0.1:18889/");
      return res.ok && (await res.text());
    }, 20_000, { what: "the session's server through port-forward" });
    expect(body).toBe("warm\n");
  } finally {
    forward.kill();
    await forward.exited;
    await stop(made.stdout.split("\n")[0]!.trim());
  }
}, 60_000);

test("the executor stopping removes the holders no session joined; one a running session joined stays for the next executor", async () => {
  await holdersWhen(2);
  const made = await executor.run(["session", "create", "--detach", "--gpus", "0", "--name", "stays", "--", "sleep", "300"], { user: testUser });
  expect(made).toMatchObject({ exitCode: 0 });
  const [session] = managedContainers(node);
  const joined = inspect(session!).HostConfig.NetworkMode.slice("container:".length);
  await holdersWhen(3);
  await executor.kill("SIGTERM");
  expect(netnsHolders(node).map((id) => inspect(id).Id)).toEqual([joined]);
  // The next executor adopts the session, keeps its holder, and makes the pool again; the session still runs there.
  await executor.start();
  expect(await holdersWhen(3)).toContain(joined);
  const seen = await executor.run(["session", "exec", "stays", "--", "hostname"], { user: testUser });
  expect(seen).toMatchObject({ exitCode: 0, stdout: `${node.split(".")[0]}\n` });
  await stop("stays");
  expect(await holdersWhen(2)).not.toContain(joined);
}, 90_000);
