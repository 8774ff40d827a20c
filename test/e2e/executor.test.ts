/** The executor and `beaker session create` on the real Docker engine, run as users run them. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { busyboxImage, eightUuids, noShellImage, otherUser, TestExecutor, testUser } from "../executor-harness.ts";
import { eventually, removeDir, scopedDir, testNodeName } from "../harness.ts";

const node = testNodeName(import.meta.file);
const executor = new TestExecutor({ nodeName: node });
beforeAll(async () => {
  executor.removeLeftovers();
  await executor.start();
});
afterAll(() => executor.cleanup());

/** Waits until root's queued requests stand in the executor's queue at the given places, oldest first. */
async function queuedAt(positions: number[]) {
  return eventually(async () => {
    const queued = (await executor.list()).filter((s) => s.status === "queued");
    return JSON.stringify(queued.map((s) => s.queuePosition)) === JSON.stringify(positions) && queued;
  });
}

describe("a session as a non-root user", () => {
  test("their uid, name, home and GPUs inside; the exit code comes back; nothing is left", async () => {
    const result = await executor.run(
      ["session", "create", "--gpus", "2", "--", "sh", "-c", 'id -un; id -u; echo "gpus=$NVIDIA_VISIBLE_DEVICES"; echo "home=$HOME"; pwd; ls -ld "$HOME" | cut -d" " -f3; exit 7'],
      { user: testUser },
    );
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(7);
    const uid = Bun.spawnSync(["id", "-u", testUser]).stdout.toString().trim();
    const [name, id, gpus, home, pwd, owner] = result.stdout.trim().split("\n");
    expect([name, id, home, pwd, owner]).toEqual([testUser, uid, `home=/home/${testUser}`, `/home/${testUser}`, testUser]);
    expect(gpus).toBe(`gpus=${eightUuids.slice(0, 2).join(",")}`);
    expect(executor.containers()).toEqual([]);
  });

  test("--gpus 0 sees no GPU; stdin and stderr pass through separately", async () => {
    const result = await executor.run(["session", "create", "--gpus", "0", "--", "sh", "-c", 'echo "gpus=$NVIDIA_VISIBLE_DEVICES"; cat; echo oops >&2'], {
      user: testUser,
      stdin: "from stdin\n",
    });
    expect(result).toEqual({ exitCode: 0, stdout: "gpus=void\nfrom stdin\n", stderr: "oops\n" });
  });

  test("GPU variables cannot be set by the user", async () => {
    const result = await executor.run(["session", "create", "--env", "NVIDIA_VISIBLE_DEVICES=all", "--", "true"], { user: testUser });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/NVIDIA_VISIBLE_DEVICES is not allowed/);
  });

  test("on busybox (Alpine-like) the user exists by name; an image without a shell is refused clearly", async () => {
    const busybox = await executor.run(["session", "create", "--gpus", "0", "--image", busyboxImage, "--", "sh", "-c", "whoami; id -gn; grep -c root /etc/passwd"], {
      user: testUser,
    });
    expect(busybox).toEqual({ exitCode: 0, stdout: `${testUser}\n${testUser}\n1\n`, stderr: "" });
    const noShell = await executor.run(["session", "create", "--gpus", "0", "--image", noShellImage], { user: testUser });
    expect(noShell.exitCode).toBe(125);
    expect(noShell.stderr).toMatch(/has no shell \(\/bin\/sh\); give a command/);
    const command = await executor.run(["session", "create", "--gpus", "0", "--image", noShellImage, "--", "/app/busybox", "whoami"], { user: testUser });
    expect(command).toEqual({ exitCode: 0, stdout: `${testUser}\n`, stderr: "" });
    expect(executor.containers()).toEqual([]);
  });

  test("mounts: the caller's readable paths only, never the node's control paths", async () => {
    // Root's folder in the user's own home: a place they may mount from, but not read.
    const secret = `/home/${testUser}/secret-${process.pid}`;
    mkdirSync(secret, { mode: 0o700 });
    const denied = await executor.run(["session", "create", "--gpus", "0", "--mount", `${secret}:/s`, "--", "true"], { user: testUser });
    removeDir(secret);
    expect(denied.exitCode).toBe(2);
    expect(denied.stderr).toBe(`beaker: --mount ${secret}: no such file or directory that you (${testUser}) can read\n`);
    using elsewhere = scopedDir("beaker-elsewhere-");
    const outside = await executor.run(["session", "create", "--gpus", "0", "--mount", `${elsewhere.path}:/s`, "--", "true"], { user: testUser });
    expect(outside.exitCode).toBe(4);
    expect(outside.stderr).toBe(`beaker: --mount ${elsewhere.path}: not allowed in a session (only your home)\n`);
    const mine = `/home/${testUser}/mount-me`;
    mkdirSync(mine, { recursive: true });
    Bun.spawnSync(["chown", testUser, mine]);
    const readable = await executor.run(["session", "create", "--gpus", "0", "--mount", `${mine}:/data:ro`, "--", "sh", "-c", "touch /data/x 2>/dev/null || echo read-only; ls -d /data"], { user: testUser });
    expect(readable).toEqual({ exitCode: 0, stdout: "read-only\n/data\n", stderr: "" });
    removeDir(mine);
    const etc = await executor.run(["session", "create", "--gpus", "0", "--mount", "/etc:/host-etc", "--", "true"], { user: testUser });
    expect(etc.exitCode).toBe(4);
    expect(etc.stderr).toMatch(/not allowed/);
  });

  test("a missing image that cannot be pulled says which and why, exit 125", async () => {
    const result = await executor.run(["session", "create", "--gpus", "0", "--image", "beaker-test/does-not-exist:1", "--", "true"]);
    expect(result.exitCode).toBe(125);
    expect(result.stderr).toMatch(/^beaker: cannot pull image beaker-test\/does-not-exist:1: /);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
  });
});

describe("GPUs are exclusive and the queue is fair", () => {
  test("a request bigger than the node fails at once with exit 6 and the node's size", async () => {
    const result = await executor.run(["session", "create", "--gpus", "9", "--", "true"]);
    expect(result).toEqual({ exitCode: 6, stdout: "", stderr: "beaker: asked for 9 GPUs, but this node has 8\n" });
  });

  test("40 concurrent creates of 1..3 GPUs all complete, and no two running sessions share a GPU", async () => {
    using sharedDir = scopedDir("beaker-shared-");
    const shared = sharedDir.path;
    const started = Date.now();
    const runs = Array.from({ length: 40 }, (_, i) =>
      executor.run([
        "session",
        "create",
        "--gpus",
        String((i % 3) + 1),
        "--mount",
        `${shared}:/shared`,
        "--",
        "sh",
        "-c",
        `echo "$(date +%s%N) $NVIDIA_VISIBLE_DEVICES" > /shared/${i}.start; sleep 0.2; echo "$(date +%s%N)" > /shared/${i}.end`,
      ]),
    );
    const results = await Promise.all(runs);
    const wall = Date.now() - started;
    expect(results.flatMap((r, i) => (r.exitCode === 0 ? [] : [`#${i}: exit ${r.exitCode}: ${r.stderr}`]))).toEqual([]);
    const sessions = Array.from({ length: 40 }, (_, i) => {
      const [start, gpus] = readFileSync(join(shared, `${i}.start`), "utf8").trim().split(" ");
      return { start: Number(start), end: Number(readFileSync(join(shared, `${i}.end`), "utf8")), gpus: gpus!.split(",") };
    });
    sessions.forEach((s, i) => expect(s.gpus).toHaveLength((i % 3) + 1));
    for (const a of sessions)
      for (const b of sessions) {
        if (a === b || a.end < b.start || b.end < a.start) continue;
        expect(a.gpus.filter((g) => b.gpus.includes(g))).toEqual([]);
      }
    expect(results.some((r) => /Waiting for \d GPUs?: position \d+ in the queue/.test(r.stderr))).toBe(true);
    expect(executor.containers()).toEqual([]);
    console.log(`40 concurrent creates on 8 GPUs: ${wall} ms wall`);
  }, 180_000);

  test("--no-wait fails with exit 6 when the node is full; stop frees GPUs for a queued session", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await executor.run(["session", "create", "--detach", "--json", "--gpus", "2", "--", "sleep", "300"]);
      expect(r.exitCode).toBe(0);
      const info = JSON.parse(r.stdout);
      expect(Object.keys(info).sort()).toEqual(["gpus", "id", "image", "name", "node", "status"]);
      ids.push(info.id);
    }
    const full = await executor.run(["session", "create", "--no-wait", "--gpus", "1", "--", "true"]);
    expect(full.exitCode).toBe(6);
    expect(full.stderr).toMatch(/not enough free GPUs: 0 free, 1 asked/);

    const queued = executor.spawn(["session", "create", "--gpus", "1", "--", "sh", "-c", "echo $NVIDIA_VISIBLE_DEVICES"]);
    await queuedAt([1]);
    expect((await executor.claims()).sort()).toEqual(ids.flatMap((id) => [id, id]).sort());
    const stop = await executor.run(["session", "stop", "--timeout", "1", ids[0]!]);
    expect(stop.exitCode).toBe(0);
    const [out, err, code] = await Promise.all([new Response(queued.stdout).text(), new Response(queued.stderr).text(), queued.exited]);
    expect(err).toMatch(/^Waiting for 1 GPU: position 1 in the queue \(0 free now\)\n$/);
    expect(code).toBe(0);
    expect(eightUuids.slice(0, 2)).toContain(out.trim());
    for (const id of ids.slice(1)) expect((await executor.run(["session", "stop", "--timeout", "0", id])).exitCode).toBe(0);
    expect(executor.containers()).toEqual([]);
  }, 60_000);

  test("executor kill -9 and restart loses no claim and double-books nothing", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await executor.run(["session", "create", "--detach", "--json", "--gpus", "2", "--", "sleep", "300"], { user: testUser });
      ids.push(JSON.parse(r.stdout).id);
    }
    await executor.kill("SIGKILL");
    await executor.start();
    const gpus = JSON.parse((await executor.run(["node", "gpus", "--json"])).stdout) as Array<{ uuid: string; claimedBy: string | null }>;
    expect(gpus.filter((g) => g.claimedBy).length).toBe(6);
    expect(new Set(gpus.map((g) => g.claimedBy).filter(Boolean))).toEqual(new Set(ids));
    expect((await executor.run(["session", "create", "--no-wait", "--gpus", "3", "--", "true"])).exitCode).toBe(6);
    const two = await executor.run(["session", "create", "--no-wait", "--gpus", "2", "--", "sh", "-c", "echo $NVIDIA_VISIBLE_DEVICES"]);
    expect(two.exitCode).toBe(0);
    const claimed = gpus.filter((g) => g.claimedBy).map((g) => g.uuid);
    expect(two.stdout.trim().split(",").filter((u) => claimed.includes(u))).toEqual([]);
    expect(executor.log()).toMatch(/adopted running session/);
    for (const id of ids) expect((await executor.run(["session", "stop", "--timeout", "0", id], { user: testUser })).exitCode).toBe(0);
  }, 60_000);
});

describe("one user never touches another's session", () => {
  test("list, stop, attach and exec are refused across users; root may act on all", async () => {
    const created = await executor.run(["session", "create", "--detach", "--json", "--gpus", "1", "--", "sleep", "300"], { user: testUser });
    const id = JSON.parse(created.stdout).id as string;
    expect(JSON.parse((await executor.run(["session", "list", "--json"], { user: otherUser })).stdout)).toEqual([]);
    const stop = await executor.run(["session", "stop", id], { user: otherUser });
    expect(stop.exitCode).toBe(5);
    expect(stop.stderr).toBe(`beaker: no session ${id} of yours on this node\n`);
    for (const verb of ["attach", "exec"]) {
      expect(await executor.run(["session", verb, id], { user: otherUser, stdin: "id\n" })).toEqual({ exitCode: 5, stdout: "", stderr: `beaker: no session ${id} of yours on this node\n` });
    }
    const mine = JSON.parse((await executor.run(["session", "list", "--json"], { user: testUser })).stdout);
    expect(mine.map((s: { id: string }) => s.id)).toEqual([id]);
    const all = JSON.parse((await executor.run(["session", "list", "--all", "--json"])).stdout);
    expect(all.map((s: { id: string }) => s.id)).toContain(id);
    expect((await executor.run(["session", "stop", "--timeout", "0", id])).exitCode).toBe(0);
  }, 30_000);

  test("a request without a valid proof is refused", async () => {
    const res = await fetch("http://x/v1/sessions", { unix: executor.socket });
    expect(res.status).toBe(401);
    const forged = await fetch("http://x/v1/sessions", { unix: executor.socket, headers: { "x-beaker-proof": `${"a".repeat(32)}:${"b".repeat(64)}` } });
    expect(forged.status).toBe(401);
  });
});

test("Docker down: one line and exit 1", async () => {
  await using down = new TestExecutor({ dockerSocket: "/nonexistent/docker.sock", nodeName: testNodeName(import.meta.file, "down") });
  await down.start();
  const result = await down.run(["session", "create", "--gpus", "0", "--", "true"]);
  expect(result).toEqual({ exitCode: 1, stdout: "", stderr: "beaker: Docker is not running on this node: start it with 'systemctl start docker'\n" });
});

test("no executor: one line naming the socket and how to start it; nothing is created", async () => {
  // Configured, never started: its socket does not exist.
  await using absent = new TestExecutor({ nodeName: testNodeName(import.meta.file, "absent") });
  const before = readdirSync(absent.dir).sort();
  const result = await absent.run(["session", "list"]);
  expect(result).toEqual({ exitCode: 1, stdout: "", stderr: expect.stringMatching(/^beaker: no executor socket at .*: start it with 'systemctl start beaker-executor'/) });
  expect(result.stderr).toContain(absent.socket);
  expect(existsSync(absent.socket)).toBe(false);
  expect(readdirSync(absent.dir).sort()).toEqual(before);
});

test("--port is not published: printed with the command that reaches it, which does; with publish: host it is, on publishAddress", async () => {
  const serve = "mkdir -p /tmp/www && echo hello-from-the-session > /tmp/www/index.html && exec httpd -f -p 8888 -h /tmp/www";
  const detached = await executor.run(["session", "create", "--detach", "--name", "www", "--gpus", "0", "--image", busyboxImage, "--port", "8888", "--", "sh", "-c", serve], { user: testUser });
  expect(detached).toMatchObject({ exitCode: 0 });
  expect(detached.stderr).toContain("port 8888: reach it with 'beaker session port-forward www 8888'\n");
  const id = detached.stdout.trim().split("\n")[0]!;
  const bindings = JSON.parse(Bun.spawnSync(["docker", "inspect", "-f", "{{json .HostConfig.PortBindings}}", `beaker-${id}`]).stdout.toString());
  expect(bindings).toEqual({});
  const forward = executor.spawn(["session", "port-forward", "www", "18888:8888"], { user: testUser });
  try {
    const body = await eventually(async () => {
      const res = await fetch("http://127.0.0.1:18888/");
      return res.ok && (await res.text());
    }, 20_000, { what: "the session's server through port-forward" });
    expect(body).toBe("hello-from-the-session\n");
  } finally {
    forward.kill();
    await forward.exited;
  }
  expect((await executor.run(["session", "stop", "--timeout", "0", id], { user: testUser })).exitCode).toBe(0);

  await using published = new TestExecutor({ nodeName: testNodeName(import.meta.file, "published"), extra: "publish: host\npublishAddress: 127.0.0.1\n" });
  published.removeLeftovers();
  await published.start();
  const open = await published.run(["session", "create", "--detach", "--gpus", "0", "--image", busyboxImage, "--port", "8888", "--", "sh", "-c", serve], { user: testUser });
  expect(open).toMatchObject({ exitCode: 0 });
  const hostPort = /^port 127\.0\.0\.1:(\d+)->8888\/tcp$/m.exec(open.stderr)?.[1];
  expect(hostPort).toBeDefined();
  // Published ports belong to the namespace's maker: such a session makes its own, never a warm one.
  const [made] = published.containers();
  expect(JSON.parse(Bun.spawnSync(["docker", "inspect", "-f", "{{json .HostConfig.NetworkMode}}", made!]).stdout.toString())).toBe("beaker-sessions");
  const body = await eventually(async () => {
    const res = await fetch(`http://127.0.0.1:${hostPort}/`);
    return res.ok && (await res.text());
  }, 20_000, { what: "the published port" });
  expect(body).toBe("hello-from-the-session\n");
}, 60_000);

test("FIFO: a small request waits behind a large one even when it would fit", async () => {
  const holders: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await executor.run(["session", "create", "--detach", "--gpus", "2", "--", "sleep", "300"]);
    holders.push(r.stdout.trim());
  }
  const big = executor.spawn(["session", "create", "--gpus", "3", "--name", "big", "--", "sh", "-c", "echo $NVIDIA_VISIBLE_DEVICES"]);
  await queuedAt([1]);
  const small = executor.spawn(["session", "create", "--gpus", "1", "--name", "small", "--", "sh", "-c", "echo $NVIDIA_VISIBLE_DEVICES"]);
  await queuedAt([1, 2]);
  // stop returns once the session has ended and the queue has been served from the GPUs it freed.
  expect((await executor.run(["session", "stop", "--timeout", "0", holders[0]!])).exitCode).toBe(0);
  // Two GPUs are free: enough for the small request, not the large one at the head. Nobody may start yet.
  expect((await executor.claims()).filter((c) => c === null)).toHaveLength(2);
  const waiting = (await executor.list()).filter((s) => s.status === "queued");
  expect(waiting.map((s) => [s.name, s.queuePosition])).toEqual([
    ["big", 1],
    ["small", 2],
  ]);
  await executor.run(["session", "stop", "--timeout", "0", holders[1]!]);
  const [bigOut, smallOut] = await Promise.all([new Response(big.stdout).text(), new Response(small.stdout).text()]);
  expect(await big.exited).toBe(0);
  expect(await small.exited).toBe(0);
  // Granted in queue order from the lowest free indexes: the large request took GPUs 0-2, the small one GPU 3.
  expect(bigOut.trim()).toBe(eightUuids.slice(0, 3).join(","));
  expect(smallOut.trim()).toBe(eightUuids[3]!);
  for (const id of holders.slice(2)) await executor.run(["session", "stop", "--timeout", "0", id]);
  expect(executor.containers()).toEqual([]);
}, 60_000);

test("Docker comes back: the executor reconnects without a restart", async () => {
  using dir = scopedDir("beaker-docker-link-");
  const link = join(dir.path, "docker.sock");
  await using flaky = new TestExecutor({ dockerSocket: link, nodeName: testNodeName(import.meta.file, "flaky") });
  await flaky.start();
  const down = await flaky.run(["session", "create", "--gpus", "0", "--", "true"]);
  expect(down.exitCode).toBe(1);
  expect(down.stderr).toMatch(/Docker is not running on this node/);
  symlinkSync(process.env.DOCKER_HOST?.replace(/^unix:\/\//, "") ?? "/var/run/docker.sock", link);
  const up = await flaky.run(["session", "create", "--gpus", "1", "--", "sh", "-c", "echo $NVIDIA_VISIBLE_DEVICES"]);
  expect(up).toMatchObject({ exitCode: 0, stdout: `${eightUuids[0]}\n` });
}, 30_000);

test("sessionHome: the user's home is <sessionHome>/<user>, created 0700 and theirs", async () => {
  using homes = scopedDir("beaker-homes-");
  await using withHomes = new TestExecutor({ extra: `sessionHome: ${homes.path}\n`, nodeName: testNodeName(import.meta.file, "homes") });
  await withHomes.start();
  const r = await withHomes.run(["session", "create", "--gpus", "0", "--", "sh", "-c", 'echo $HOME; pwd; stat -c "%a %U" "$HOME"; touch ~/made-here'], { user: testUser });
  const home = join(homes.path, testUser);
  expect(r).toEqual({ exitCode: 0, stdout: `${home}\n${home}\n700 ${testUser}\n`, stderr: "" });
  const st = statSync(join(home, "made-here"));
  expect(st.uid).toBe(Number(Bun.spawnSync(["id", "-u", testUser]).stdout.toString()));
}, 30_000);
