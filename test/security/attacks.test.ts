/**
 * The attack suite: what an unprivileged local user tried against the executor (which runs as root and whose socket
 * every local user can reach), one test per finding. Two ordinary accounts, only `beaker` commands and raw requests on
 * the socket. Every attack must fail, the host's account files must be untouched, and the executor must be the same
 * process at the end.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { busyboxImage, idleHolders, otherUser, TestExecutor, testUser } from "../executor-harness.ts";
import { beakerBinary, eventually, removeDir, tempDir, testNodeName } from "../harness.ts";
import { asUser, executorPid, raw, rssMiB, terminalSocket, uidOf } from "./harness.ts";

const node = testNodeName(import.meta.file);
const executor = new TestExecutor({ nodeName: node });
const hostFiles = ["/etc/passwd", "/etc/group", "/etc/shadow"];
const digest = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
const before = Object.fromEntries(hostFiles.map((f) => [f, digest(f)]));
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

/** A detached session of `user` running `command`; its id. */
async function detached(user: string, args: string[]): Promise<string> {
  const r = await executor.run(["session", "create", "--detach", ...args], { user });
  if (r.exitCode !== 0) throw new Error(`session create failed: ${r.stderr}`);
  return r.stdout.trim().split("\n")[0]!;
}

async function stopAll(): Promise<void> {
  const ids = Bun.spawnSync(["docker", "ps", "-aq", "--filter", `label=beaker.node=${node}`]).stdout.toString().trim();
  if (ids) Bun.spawnSync(["docker", "rm", "-f", ...ids.split("\n")]);
  await eventually(async () => {
    const all = (await (await raw(executor, 0, "GET", "/v1/sessions?all=1")).json()) as Array<{ status: string }>;
    return all.every((s) => s.status === "exited") || undefined;
  }, 20_000, { what: "every session to end" });
}

/** Starts a loop, as the attacker, that keeps swapping `dir/d` between a real directory and a symlink to /etc. */
function startSwapper(dir: string): { stop(): void } {
  asUser(testUser, `mkdir -p ${dir}/d && echo REAL > ${dir}/d/marker`);
  const proc = Bun.spawn(
    ["setpriv", `--reuid=${testUser}`, `--regid=${testUser}`, "--init-groups", "sh", "-c", `cd ${dir}; while :; do mv -T d real 2>/dev/null; ln -sfn /etc l; mv -T l d 2>/dev/null; mv -T d l 2>/dev/null; mv -T real d 2>/dev/null; done`],
    { stdout: "ignore", stderr: "ignore" },
  );
  return { stop: () => proc.kill("SIGKILL") };
}

/** `--mount d:/data`, printing the first line of /data/passwd when /data is the host's /etc, else the marker. */
const swapProbe = (dir: string) => ["--mount", `${dir}/d:/data`, "--", "sh", "-c", "head -1 /data/passwd 2>/dev/null; cat /data/marker 2>/dev/null"];

describe("1. --mount binds exactly the directory that was checked", () => {
  test("a directory swapped for a symlink to /etc never mounts /etc: 200 tries in a tight loop", async () => {
    const dir = `/home/${testUser}/swap-${randomBytes(4).toString("hex")}`;
    const swapper = startSwapper(dir);
    const outcomes = { mountedReal: 0, refused: 0, breached: [] as string[] };
    try {
      const one = async () => {
        const r = await executor.run(["session", "create", "--gpus", "0", ...swapProbe(dir)], { user: testUser });
        if (r.stdout.includes("root:")) outcomes.breached.push(r.stdout);
        else if (r.exitCode === 0 && r.stdout.trim() === "REAL") outcomes.mountedReal++;
        else outcomes.refused++;
      };
      for (let round = 0; round < 25; round++) await Promise.all(Array.from({ length: 8 }, one));
    } finally {
      swapper.stop();
      removeDir(dir);
    }
    console.log(`mount swap, 200 tries: ${outcomes.mountedReal} mounted the checked directory, ${outcomes.refused} refused, ${outcomes.breached.length} mounted /etc`);
    expect(outcomes.breached).toEqual([]);
    expect(outcomes.mountedReal + outcomes.refused).toBe(200);
    expect(outcomes.mountedReal).toBeGreaterThan(0);
  }, 300_000);

  test("while the request waits in the queue, the swap still mounts nothing but what was checked", async () => {
    const dir = `/home/${testUser}/swapq-${randomBytes(4).toString("hex")}`;
    const holder = await detached(otherUser, ["--gpus", "8", "--", "sleep", "600"]);
    const swapper = startSwapper(dir);
    try {
      // Each request is either refused at once (the check saw the symlink, or no directory) or waits in the queue. How
      // many pass the check depends on how the swapper and the executor are scheduled (under load most are refused):
      // requests go in batches of 8 until some wait, at most 200.
      let finished = 0;
      const runs: Array<ReturnType<typeof executor.run>> = [];
      let seen = "";
      let queued = 0;
      for (let batch = 0; batch < 25 && queued < 2; batch++) {
        for (let i = 0; i < 8; i++) runs.push(executor.run(["session", "create", "--gpus", "1", ...swapProbe(dir)], { user: testUser }).finally(() => finished++));
        const settled = await eventually(async () => {
          const mine = (await (await raw(executor, attacker, "GET", "/v1/sessions")).json()) as Array<{ status: string }>;
          const waiting = mine.filter((s) => s.status === "queued").length;
          seen = `${finished} of ${runs.length} finished; statuses: ${mine.map((s) => s.status).join(" ") || "none"}`;
          return waiting + finished === runs.length ? { waiting } : undefined;
        }, 120_000, { what: "every request queued behind the holder or refused", detail: () => `${seen}\n${executor.log().slice(-2000)}` });
        queued = settled.waiting;
      }
      expect({ queued: queued > 0, seen }).toEqual({ queued: true, seen });
      await executor.run(["session", "stop", holder], { user: otherUser });
      const results = await Promise.all(runs);
      expect(results.filter((r) => r.stdout.includes("root:"))).toEqual([]);
    } finally {
      swapper.stop();
      removeDir(dir);
      await stopAll();
    }
  }, 300_000);
});

describe("2. mount targets over system paths are refused", () => {
  test.each(["/etc", "/etc/ssh", "/usr", "/usr/local/bin/beaker", "/bin", "/sbin", "/lib", "/lib64", "/proc", "/sys", "/dev", "/run"])("--mount DIR:%s", async (target) => {
    const dir = `/home/${testUser}/t-${randomBytes(4).toString("hex")}`;
    asUser(testUser, `mkdir -p ${dir} && printf 'root::0:0::/root:/bin/sh\\n' > ${dir}/passwd`);
    try {
      const r = await executor.run(["session", "create", "--gpus", "0", "--mount", `${dir}:${target}`, "--", "true"], { user: testUser });
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain(target);
    } finally {
      removeDir(dir);
    }
  });
});

describe("2b. image facts are never read or written through a user's mount", () => {
  test("a passwd of one user's making never becomes another user's, and is never written as root", async () => {
    // An image of its own (its facts are not cached yet): a copy of busybox with a label.
    const image = `beaker-test/sec-facts:${randomBytes(4).toString("hex")}`;
    const made = Bun.spawnSync(["docker", "create", busyboxImage, "true"]).stdout.toString().trim();
    Bun.spawnSync(["docker", "commit", "--change", `LABEL beaker.test=${image}`, made, image]);
    Bun.spawnSync(["docker", "rm", made]);
    const dir = `/home/${testUser}/facts-${randomBytes(4).toString("hex")}`;
    asUser(testUser, `mkdir -p ${dir} && printf 'evil:x:0:0::/root:/bin/sh\\n' > ${dir}/passwd && echo 'evil:x:0:' > ${dir}/group`);
    try {
      await executor.run(["session", "create", "--gpus", "0", "--image", image, "--mount", `${dir}:/etc`, "--", "true"], { user: testUser });
      const victimView = await executor.run(["session", "create", "--gpus", "0", "--image", image, "--", "sh", "-c", "grep -c '^evil:' /etc/passwd; id -un"], { user: otherUser });
      expect(victimView.stdout).toBe(`0\n${otherUser}\n`);
      expect(readFileSync(join(dir, "passwd"), "utf8")).toBe("evil:x:0:0::/root:/bin/sh\n");
      expect(statSync(join(dir, "passwd")).uid).toBe(attacker);
    } finally {
      removeDir(dir);
      Bun.spawnSync(["docker", "rmi", image]);
    }
  });
});

describe("3. no input ends the daemon", () => {
  test("a null frame, then 5,000 random frames on one's own attach", async () => {
    const id = await detached(testUser, ["--gpus", "0", "--image", busyboxImage, "--", "sh", "-c", "while :; do echo tick; sleep 0.2; done"]);
    const ws = await terminalSocket(executor, attacker, `/v1/sessions/${id}/attach`);
    // Once output flows, the executor's side of the terminal is attached: frames now reach its handler directly.
    await new Promise<void>((resolve) => (ws.onmessage = () => resolve()));
    ws.send("null");
    await eventually(async () => (await executorPid(executor).catch(() => 0)) === pid || undefined, 10_000, { what: "the executor answering after the null frame" });
    const shapes: unknown[] = [null, 1, "x", [], {}, { type: null }, { type: "resize" }, { type: "resize", cols: "a", rows: {} }, { type: "resize", cols: 1e12, rows: -5 }, { type: "signal" }, { type: "signal", name: 5 }, { type: "stdin-eof", x: [1] }, { type: { toString: 1 } }];
    for (let i = 0; i < 5000; i++) {
      const r = Math.random();
      if (r < 0.4) ws.send(JSON.stringify(shapes[i % shapes.length]));
      else if (r < 0.7) ws.send(randomBytes(1 + (i % 64)).toString("latin1"));
      else ws.send(randomBytes(1 + (i % 64)));
    }
    ws.close();
    await eventually(async () => (await executorPid(executor).catch(() => 0)) === pid || undefined, 10_000, { what: "the executor answering" });
    await stopAll();
  }, 120_000);

  test("5,000 random request bodies and paths", async () => {
    const base = { gpus: 999, image: null, name: null, cpus: null, memory: null, sharedMemory: null, ports: [], env: [], mounts: [], workdir: null, command: ["true"], cwd: "/tmp", tty: false, term: null, noWait: true, detach: true };
    const junk = [null, -1, 1.5, "x", "", [], {}, [null], { a: 1 }, true, "\u0000", "a".repeat(5000), 1e300];
    const keys = Object.keys(base);
    const paths = ["/v1/sessions", "/v1/sessions/x/stop", "/v1/sessions/%00", "/v1/gpus", "/v1/../etc", "/v1/sessions/x", "/v1/sessions/x/keep"];
    for (let i = 0; i < 5000; i++) {
      const body: Record<string, unknown> = { ...base, [keys[i % keys.length]!]: junk[(i * 7) % junk.length] };
      const text = i % 5 === 0 ? randomBytes(32).toString("latin1") : i % 5 === 1 ? JSON.stringify(junk[i % junk.length]) : JSON.stringify(body);
      const get = i % 3 === 0;
      const res = await raw(executor, attacker, get ? "GET" : "POST", paths[i % paths.length]!, get ? undefined : text);
      await res.arrayBuffer();
      expect(res.status).toBeLessThan(500);
    }
    expect(await executorPid(executor)).toBe(pid);
  }, 300_000);
});

describe("4. a proof planted from a shared directory does not make one user another", () => {
  test("another user's group-writable file moved into proofs/ is refused", async () => {
    const shared = tempDir("beaker-shared-");
    chmodSync(shared, 0o777);
    const id = await detached(otherUser, ["--gpus", "0", "--image", busyboxImage, "--", "sleep", "600"]);
    try {
      const name = randomBytes(16).toString("hex");
      const secret = randomBytes(32).toString("hex");
      expect(asUser(otherUser, `umask 0; : > ${shared}/f; chmod 666 ${shared}/f`).exitCode).toBe(0);
      expect(asUser(testUser, `printf %s ${secret} > ${shared}/f && mv ${shared}/f ${executor.dir}/run/proofs/${name}`).exitCode).toBe(0);
      const res = await fetch("http://beaker/v1/sessions", { unix: executor.socket, headers: { "x-beaker-proof": `${name}:${secret}` } });
      const text = await res.text();
      expect(text).not.toContain(id);
      expect(res.status).toBe(401);
    } finally {
      removeDir(shared);
      await stopAll();
    }
  });
});

describe("4b. queued requests are tied to their caller, and limited per user", () => {
  test("requests whose caller hung up leave the queue", async () => {
    const holder = await detached(otherUser, ["--gpus", "8", "--", "sleep", "600"]);
    try {
      // Hang up at different moments: before, while and after the executor prepares the request.
      const body = JSON.stringify({ gpus: 1, image: null, name: null, cpus: null, memory: null, sharedMemory: null, ports: [], env: [], mounts: [], workdir: null, command: ["true"], cwd: "/tmp", tty: false, term: null, noWait: false, detach: true });
      await Promise.all(
        [1, 3, 5, 8, 12, 16, 20, 30, 45, 60].map(async (ms) => {
          await raw(executor, attacker, "POST", "/v1/sessions", body, AbortSignal.timeout(ms)).catch(() => null);
        }),
      );
      await eventually(async () => {
        const mine = (await (await raw(executor, attacker, "GET", "/v1/sessions")).json()) as unknown[];
        return mine.length === 0 || undefined;
      }, 10_000, { what: "the abandoned requests to leave the queue" });
      await executor.run(["session", "stop", holder], { user: otherUser });
    } finally {
      await stopAll();
    }
  }, 60_000);

  test("1,000 queued requests from one user: a few wait, the rest are refused, others still get in", async () => {
    const holder = await detached(otherUser, ["--gpus", "8", "--", "sleep", "600"]);
    const abort = new AbortController();
    // The readers of queued requests are kept: a response nobody holds may be collected, which hangs up its request
    // and frees its place (as it should), and the second wave would find room.
    const held: unknown[] = [];
    try {
      const body = JSON.stringify({ gpus: 1, image: null, name: null, cpus: null, memory: null, sharedMemory: null, ports: [], env: [], mounts: [], workdir: null, command: ["true"], cwd: "/tmp", tty: false, term: null, noWait: false, detach: true });
      const first = async (): Promise<string> => {
        const res = await raw(executor, attacker, "POST", "/v1/sessions", body, abort.signal).catch(() => null);
        if (!res) return "dropped";
        if (res.status !== 200) return `status ${res.status}`;
        const reader = res.body!.getReader();
        held.push(reader);
        let text = "";
        while (!/"type":"(queued|error|created)"/.test(text)) {
          const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
          if (done) break;
          text += new TextDecoder().decode(value);
        }
        return /"type":"queued"/.test(text) ? "queued" : /"type":"error"/.test(text) ? "refused" : "other";
      };
      const outcomes = await Promise.all(Array.from({ length: 1000 }, first));
      const queued = outcomes.filter((o) => o === "queued").length;
      expect(queued).toBeGreaterThan(0);
      expect(queued).toBeLessThanOrEqual(16);
      // Every request not queued is refused: by the per-user limit, or already at its proof (the sweep keeps at most 64
      // proof files per user, so in a flood of 1,000 some are gone before they are checked, whenever it runs).
      // A failure lists what the others got instead of only counting them.
      const refusal = (o: string) => ["refused", "status 409", "status 401"].includes(o);
      expect(outcomes.filter((o) => o !== "queued" && !refusal(o))).toEqual([]);
      // A thousand connections at once cost the runtime some memory once; a second thousand must not cost it again.
      const afterFirst = rssMiB(pid);
      const again = await Promise.all(Array.from({ length: 1000 }, first));
      expect(again.filter((o) => !refusal(o))).toEqual([]);
      const afterSecond = rssMiB(pid);
      console.log(`executor RSS after 1,000 requests: ${afterFirst.toFixed(0)} MiB; after 1,000 more: ${afterSecond.toFixed(0)} MiB`);
      expect(afterSecond - afterFirst).toBeLessThan(40);
      expect(afterSecond).toBeLessThan(300);
      const other = await raw(executor, victim, "POST", "/v1/sessions", body.replace('"noWait":false', '"noWait":false'), abort.signal);
      // Its ticket comes first, then its place.
      const reader = other.body!.getReader();
      let text = "";
      while (!/"type":"(queued|error|created)"/.test(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      expect(text).toContain('"type":"queued"');
    } finally {
      abort.abort();
      held.length = 0;
      await executor.run(["session", "stop", holder], { user: otherUser });
      await stopAll();
    }
  }, 120_000);
});

describe("5. sessions have limits by default, and flags are bounded", () => {
  test("pids, memory and /dev/shm are limited; absurd sizes are refused", async () => {
    const id = await detached(testUser, ["--gpus", "0", "--image", busyboxImage, "--", "sleep", "600"]);
    try {
      const hc = JSON.parse(Bun.spawnSync(["docker", "inspect", "-f", "{{json .HostConfig}}", `beaker-${id}`]).stdout.toString()) as { PidsLimit: number; Memory: number; ShmSize: number };
      expect(hc.PidsLimit).toBeGreaterThan(0);
      expect(hc.Memory).toBeGreaterThan(0);
      expect(hc.ShmSize).toBeLessThanOrEqual(hc.Memory);
      for (const flags of [["--shared-memory", "100t"], ["--memory", "100t"], ["--cpus", "100000"]]) {
        const r = await executor.run(["session", "create", "--gpus", "0", ...flags, "--", "true"], { user: testUser });
        expect({ flags, exitCode: r.exitCode }).toEqual({ flags, exitCode: 2 });
      }
    } finally {
      await stopAll();
    }
  });
});

describe("6. sessions are isolated from each other on the network", () => {
  const serve = "mkdir -p /tmp/w && echo SECRET > /tmp/w/index.html && exec httpd -f -p 8888 -h /tmp/w";
  /**
   * A shell line that prints REACHED when http://IP:8888/ answers with the secret, else BLOCKED. (busybox nc: the
   * static busybox's wget crashes, which once made this check print BLOCKED whatever the network did.)
   */
  const probe = (ip: string) => `if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ip} 8888 | grep -q SECRET; then echo REACHED; else echo BLOCKED; fi`;
  const inspect = (ref: string) => JSON.parse(Bun.spawnSync(["docker", "inspect", ref]).stdout.toString())[0];
  const ipOn = (container: Record<string, any>) => (container.NetworkSettings.Networks as Record<string, { IPAddress: string }>)["beaker-sessions"]!.IPAddress;
  /** The probe run in `session` as `user`, once the server answers there (the probe's own proof that it can see REACHED). */
  const probeFrom = async (session: string, user: string, ip: string) =>
    (await executor.run(["session", "exec", session, "--", "sh", "-c", probe(ip)], { user })).stdout.trim();

  test("one user's session cannot reach another's port; nothing is published on the node (test/security/ports.test.ts: nor reached from it)", async () => {
    const server = await detached(otherUser, ["--gpus", "0", "--image", busyboxImage, "--port", "8080", "--", "sh", "-c", serve]);
    const prober = await detached(testUser, ["--gpus", "0", "--image", busyboxImage, "--", "sleep", "300"]);
    try {
      const own = inspect(`beaker-${server}`);
      // A session with --port joins a warm namespace like any other: its address is its holder's.
      const mode = own.HostConfig.NetworkMode as string;
      const ip = ipOn(mode.startsWith("container:") ? inspect(mode.slice("container:".length)) : own);
      expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(own.HostConfig.PortBindings ?? {}).toEqual({});
      // The same probe from the server's own session reaches it at that address: the probe works, the server serves.
      await eventually(async () => (await probeFrom(server, otherUser, ip)) === "REACHED", 20_000, { what: "the server to answer at its own address" });
      expect(await probeFrom(prober, testUser, ip)).toBe("BLOCKED");
    } finally {
      await stopAll();
    }
  }, 60_000);

  test("sessions in warm network namespaces (no ports): each its own namespace, unreachable from another's", async () => {
    await eventually(() => idleHolders(node).length === 2, 30_000, { what: "two warm network namespaces" });
    const server = await detached(otherUser, ["--gpus", "0", "--image", busyboxImage, "--", "sh", "-c", serve]);
    const prober = await detached(testUser, ["--gpus", "0", "--image", busyboxImage, "--", "sleep", "300"]);
    try {
      const holderOf = (session: string) => inspect(`beaker-${session}`).HostConfig.NetworkMode as string;
      const [serverNs, proberNs] = [holderOf(server), holderOf(prober)];
      expect(serverNs).toStartWith("container:");
      expect(proberNs).toStartWith("container:");
      expect(serverNs).not.toBe(proberNs);
      const ip = ipOn(inspect(serverNs.slice("container:".length)));
      expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      await eventually(async () => (await probeFrom(server, otherUser, ip)) === "REACHED", 20_000, { what: "the server to answer at its own address" });
      expect(await probeFrom(prober, testUser, ip)).toBe("BLOCKED");
    } finally {
      await stopAll();
    }
  }, 60_000);

  test("the probe sees a port it can reach: on Docker's default bridge (traffic between containers on) it gets through", async () => {
    await using open = new TestExecutor({ nodeName: testNodeName(import.meta.file, "bridge"), extra: "sessionNetwork: bridge\n" });
    open.removeLeftovers();
    await open.start();
    const start = async (user: string, command: string[]) => {
      const r = await open.run(["session", "create", "--detach", "--gpus", "0", "--image", busyboxImage, "--", ...command], { user });
      expect(r).toMatchObject({ exitCode: 0 });
      return r.stdout.trim().split("\n")[0]!;
    };
    const server = await start(otherUser, ["sh", "-c", serve]);
    const prober = await start(testUser, ["sleep", "300"]);
    const ip = (inspect(`beaker-${server}`).NetworkSettings.Networks as Record<string, { IPAddress: string }>).bridge!.IPAddress;
    const probeOn = async (session: string, user: string) => (await open.run(["session", "exec", session, "--", "sh", "-c", probe(ip)], { user })).stdout.trim();
    await eventually(async () => (await probeOn(server, otherUser)) === "REACHED", 20_000, { what: "the server to answer at its own address" });
    expect(await probeOn(prober, testUser)).toBe("REACHED");
  }, 60_000);
});

describe("7. terminal escape codes never reach a terminal", () => {
  test("an image reference or mount path with control characters is refused", async () => {
    const body = { gpus: 0, image: "busybox\u001b]0;pwned\u0007", name: null, cpus: null, memory: null, sharedMemory: null, ports: [], env: [], mounts: [], workdir: null, command: ["true"], cwd: "/tmp", tty: false, term: null, noWait: true, detach: true };
    const res = await raw(executor, attacker, "POST", "/v1/sessions", JSON.stringify(body));
    expect(res.status).toBe(400);
    const dir = `/home/${testUser}/\u001b[2Jx-${randomBytes(3).toString("hex")}`;
    mkdirSync(dir);
    Bun.spawnSync(["chown", testUser, dir]);
    try {
      const r = await executor.run(["session", "create", "--detach", "--gpus", "0", "--image", busyboxImage, "--mount", `${dir}:/data`, "--", "sleep", "60"], { user: testUser });
      expect(r.exitCode).toBe(2);
      const list = await executor.run(["session", "list", "--all"]);
      expect(list.stdout).not.toContain("\u001b");
    } finally {
      removeDir(dir);
      await stopAll();
    }
  });
});

describe("8. nothing is buffered without bound", () => {
  test("a body over the limit (100,000 arguments) is refused unread", async () => {
    const res = await raw(executor, attacker, "POST", "/v1/sessions", JSON.stringify({ command: Array.from({ length: 100_000 }, () => "x") }));
    expect(res.status).toBe(413);
  });

  test("a 120 MiB body is refused without the executor growing", async () => {
    // Measured against this executor's size just before: the floods of 4b leave it bigger, whatever ran first.
    const before = rssMiB(pid);
    const res = await raw(executor, attacker, "POST", "/v1/sessions", new Uint8Array(120 * 1024 * 1024)).catch(() => null);
    if (res) expect(res.status).toBe(413);
    // Holding the body would cost at least its 120 MiB.
    expect(rssMiB(pid) - before).toBeLessThan(60);
  });

  test("proofs/ is swept: stale, oversized and surplus files go", async () => {
    const proofs = join(executor.dir, "run", "proofs");
    expect(asUser(testUser, `cd ${proofs} && for i in $(seq 1 300); do : > junk$i; done && head -c 67108864 /dev/zero > big`).exitCode).toBe(0);
    await eventually(() => {
      const mine = readdirSync(proofs).filter((f) => statSync(join(proofs, f), { throwIfNoEntry: false })?.uid === attacker);
      return (mine.length <= 64 && !mine.includes("big")) || undefined;
    }, 30_000, { what: "the proofs directory to be swept" });
  }, 60_000);
});

describe("9. what a user may not see gets one answer", () => {
  test("another user's session is 'no session', exactly as one that does not exist", async () => {
    const id = await detached(otherUser, ["--gpus", "1", "--image", busyboxImage, "--", "sleep", "600"]);
    try {
      for (const verb of [["describe"], ["stop"], ["attach"], ["exec"], ["keep", "--for", "1h"]]) {
        const theirs = await executor.run(["session", ...verb, id, ...(verb[0] === "exec" ? ["--", "true"] : [])], { user: testUser });
        const nobody = await executor.run(["session", ...verb, "0123456789ab", ...(verb[0] === "exec" ? ["--", "true"] : [])], { user: testUser });
        expect({ verb, code: theirs.exitCode, err: theirs.stderr.replace(id, "ID") }).toEqual({ verb, code: nobody.exitCode, err: nobody.stderr.replace("0123456789ab", "ID") });
      }
      // keep, straight at the socket: the same answer for theirs as for none.
      const keep = async (ref: string) => {
        const res = await raw(executor, attacker, "POST", `/v1/sessions/${ref}/keep`, JSON.stringify({ for: 3600 }));
        return { status: res.status, text: (await res.text()).replace(ref, "ID") };
      };
      expect(await keep(id)).toEqual(await keep("0123456789ab"));
      const gpus = await (await raw(executor, attacker, "GET", "/v1/gpus")).text();
      expect(gpus).not.toContain(id);
    } finally {
      await stopAll();
    }
  });

  test("--mount errors do not tell whether a path exists in someone else's home, or where a link there points", async () => {
    const priv = `/home/${otherUser}/priv-${randomBytes(3).toString("hex")}`;
    asUser(otherUser, `mkdir -m 700 ${priv} && echo x > ${priv}/exists && ln -s /etc/hostname ${priv}/link`);
    try {
      const answers = await Promise.all(
        ["exists", "missing", "link"].map(async (name) => {
          const r = await executor.run(["session", "create", "--gpus", "0", "--mount", `${priv}/${name}:/x`, "--", "true"], { user: testUser });
          return { code: r.exitCode, err: r.stderr.replace(`${priv}/${name}`, "PATH") };
        }),
      );
      expect(answers[1]).toEqual(answers[0]!);
      expect(answers[2]).toEqual(answers[0]!);
      expect(answers[0]!.err).not.toContain("/etc");
    } finally {
      removeDir(priv);
    }
  });
});

describe("10. every request body is checked before anything runs", () => {
  const good = { gpus: 0, image: null, name: null, cpus: null, memory: null, sharedMemory: null, ports: [], env: [], mounts: [], workdir: null, command: ["true"], cwd: "/tmp", tty: false, term: null, noWait: true, detach: true };
  test.each([
    ["gpus -1", { gpus: -1 }],
    ["gpus as a string", { gpus: "1" }],
    ["gpus huge", { gpus: 1e9 }],
    ["cpus 0", { cpus: 0 }],
    ["port 0", { ports: [0] }],
    ["port 70000", { ports: [70000] }],
    ["100 ports", { ports: Array.from({ length: 100 }, (_, i) => 1000 + i) }],
    ["10,000 env entries", { env: Array.from({ length: 10_000 }, (_, i) => `K${i}=v`) }],
    ["env without =", { env: ["NOEQUALS"] }],
    ["a 500-character name", { name: "n".repeat(500) }],
    ["5,000 arguments", { command: Array.from({ length: 5_000 }, () => "x") }],
    ["a relative cwd", { cwd: "tmp" }],
    ["a term with spaces", { term: "xterm 256" }],
    ["an unknown field", { privileged: true }],
    ["detach as a string", { detach: "yes" }],
    ["timeLimit 0", { timeLimit: 0 }],
    ["timeLimit as a string", { timeLimit: "4h" }],
  ])("%s: 400 with a reason", async (_, change) => {
    const res = await raw(executor, attacker, "POST", "/v1/sessions", JSON.stringify({ ...good, ...change }));
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string } };
    expect(body.error.message.length).toBeGreaterThan(5);
  });

  test("a second executor on the same engine and node name refuses to start", async () => {
    const second = new TestExecutor({ nodeName: node });
    try {
      const proc = Bun.spawn([beakerBinary, "executor", "run", "--config", join(second.dir, "config.yml")], { stdout: "pipe", stderr: "pipe" });
      const exited = await eventually(() => proc.exitCode !== null, 30_000).then(
        () => true,
        () => false,
      );
      if (!exited) proc.kill();
      expect(exited).toBe(true);
      expect(await new Response(proc.stderr).text()).toMatch(/another executor/);
    } finally {
      // Not cleanup(): that removes the containers of its node name, which is the main executor's.
      removeDir(second.dir);
    }
  });
});

test("after every attack: the host's account files are untouched and the executor is the same process", async () => {
  expect(Object.fromEntries(hostFiles.map((f) => [f, digest(f)]))).toEqual(before);
  expect(await executorPid(executor)).toBe(pid);
});
