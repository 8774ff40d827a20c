/**
 * Restarting the executor is invisible to users (issue 23): an attached terminal under tmux survives kill -9, SIGTERM
 * and `beaker executor restart`; queued requests keep their order, and a caller that does not come back loses its place
 * after queueGrace; 20 creates racing a restart each end in a session or one clear line, with no GPU shared and no
 * container left behind; another user's ticket, forged or replayed, does not jump the queue.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { beakerBinary, eventually, testNodeName } from "../harness.ts";
import { managedContainers, otherUser, TestExecutor, testUser } from "../executor-harness.ts";
import { raw, uidOf } from "../security/harness.ts";
import { Tmux } from "../tmux.ts";

const node = testNodeName(import.meta.file);
const graceSeconds = 8;
const executor = new TestExecutor({ nodeName: node, extra: `queueGrace: ${graceSeconds}\nmaxQueuedPerUser: 32\nmaxSessionsPerUser: 32\n` });

beforeAll(() => executor.start());
afterAll(() => executor.cleanup());
// Each test starts on an empty node, whatever the one before left.
beforeEach(() => stopAll());

/** A CLI process whose output is collected as it comes, so a test can wait for a line without waiting for the end. */
function cli(args: string[], user = testUser) {
  const proc = executor.spawn(args, { user });
  const out = { stdout: "", stderr: "", exitedAt: 0, code: null as number | null };
  const collect = async (stream: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
    for await (const chunk of stream) out[key] += new TextDecoder().decode(chunk);
  };
  const done = Promise.all([collect(proc.stdout, "stdout"), collect(proc.stderr, "stderr"), proc.exited]).then(([, , code]) => {
    out.code = code;
    out.exitedAt = Date.now();
    return out;
  });
  return { proc, out, done };
}

/** Stops every session of this file's node and waits until none is left. */
async function stopAll(): Promise<void> {
  const ids = managedContainers(node);
  if (ids.length > 0) Bun.spawnSync(["docker", "rm", "-f", ...ids]);
  await eventually(() => managedContainers(node).length === 0, 30_000, { what: "no container left" });
}

/** Holds all 8 GPUs with a long detached session; returns its id. */
async function holdAllGpus(): Promise<string> {
  const r = await executor.run(["session", "create", "--detach", "--gpus", "8", "--", "sleep", "600"], { user: otherUser });
  expect(r.exitCode).toBe(0);
  return r.stdout.trim();
}

describe("an attached terminal", () => {
  const tmux = new Tmux("restart");
  // With 200 lines of scrollback: the test counts lines the whole session long.
  const screen = () => tmux.run("capture-pane", "-p", "-S", "-200", "-t", "t");
  const type = (line: string) => tmux.line("t", line);
  const waitFor = (pattern: RegExp, timeoutMs = 30_000) => eventually(() => pattern.test(screen()) && screen(), timeoutMs, { what: `${pattern} on the screen` });
  afterAll(() => tmux.kill());

  test("survives kill -9, SIGTERM and `beaker executor restart`: the same shell runs on, the CLI never exits", async () => {
    const env = ["env", `HOME=/home/${testUser}`, "TERM=xterm", `PATH=${process.env.PATH}`, `BEAKER_EXECUTOR_SOCKET=${executor.socket}`];
    tmux.start("t", ["setpriv", `--reuid=${testUser}`, `--regid=${testUser}`, "--init-groups", ...env, "bash", "--norc", "-i"]);
    type(`cd ~; PS1='host$ '; ${beakerBinary} session create --gpus 1; echo "cli-exit=$?"`);
    await waitFor(new RegExp(`${testUser}@${node}:~\\$`));
    type("echo shell=$$");
    const shell = /^shell=(\d+)\s*$/m.exec(await waitFor(/^shell=\d+\s*$/m))![1];

    /** Types `echo NAME=$$` once the executor answers; how long until the same shell prints it. */
    const back = async (name: string) => {
      const answered = Date.now();
      type(`echo ${name}=$$`);
      await waitFor(new RegExp(`^${name}=${shell}\\s*$`, "m"));
      console.log(`${name}: the shell answered ${Date.now() - answered} ms after the new executor did`);
    };
    // kill -9: the CLI finds out when the connection breaks.
    await executor.kill("SIGKILL");
    await waitFor(/executor restarting; reconnecting\.\.\./);
    // The terminal is resized while no executor runs: the shell is attached again at the new size.
    const size = () => tmux.run("display-message", "-p", "-t", "t", "#{pane_height} #{pane_width}").trim();
    const before = size();
    tmux.resize("t", 120, 40);
    const resized = size();
    expect(resized).not.toBe(before);
    await executor.start();
    await back("after-kill");
    type("stty size");
    await waitFor(new RegExp(`^${resized}\\s*$`, "m"));
    // The terminal is still raw: Ctrl-C reaches the program in the session, not the CLI.
    type("sleep 100");
    const sleeping = async () => (await executor.run(["session", "exec", "--", "pgrep", "-x", "sleep"], { user: testUser })).exitCode === 0;
    await eventually(sleeping, 30_000, { what: "sleep 100 to run in the session" });
    tmux.keys("t", "C-c");
    type("echo after-sleep=$?");
    await waitFor(/^after-sleep=130\s*$/m);

    // SIGTERM (systemctl stop/restart): the executor drains and closes the terminal with "restarting".
    await executor.kill("SIGTERM");
    await executor.start();
    await back("after-term");

    // `beaker executor restart` as root; the test plays systemd and starts the next executor when the old one exits.
    const restart = executor.run(["executor", "restart"]);
    await executor.exited();
    await executor.start();
    const r = await restart;
    expect(r.stderr).toMatch(/is stopping: creates in flight finish, queued requests keep their places, attached terminals reconnect\nexecutor \S+ is running \(pid \d+\)\n$/);
    expect(r.exitCode).toBe(0);
    await back("after-restart");

    expect(screen()).not.toMatch(/^cli-exit=/m);
    expect(screen().match(/executor restarting; reconnecting\.\.\./g)?.length).toBe(3);
    type("exit 3");
    await waitFor(/^cli-exit=3\s*$/m);
  }, 120_000);
});

test("a session that ended while the executor was down: the CLI says so and exits with its code", async () => {
  const c = cli(["session", "create", "--gpus", "1", "--", "sh", "-c", "while [ ! -e /tmp/end ]; do sleep 0.1; done; exit 4"]);
  await eventually(() => managedContainers(node).length === 1 && /created session/.test(executor.log()), 30_000, { what: "the session" });
  const [id] = managedContainers(node);
  await eventually(() => Bun.spawnSync(["docker", "inspect", "-f", "{{.State.Running}}", id!]).stdout.toString().trim() === "true", 15_000, { what: "it to run" });
  await executor.kill("SIGKILL");
  Bun.spawnSync(["docker", "exec", id!, "touch", "/tmp/end"]);
  await eventually(() => Bun.spawnSync(["docker", "inspect", "-f", "{{.State.Running}}", id!]).stdout.toString().trim() === "false", 15_000, { what: "it to end" });
  await executor.start();
  const r = await c.done;
  expect(r.code).toBe(4);
  expect(r.stderr).toMatch(/^executor restarting; reconnecting\.\.\.\n\nsession \S+ ended while the executor restarted \(exited, exit code 4\)\n$/);
}, 60_000);

describe("the queue", () => {
  test("three queued requests keep their order over a restart, ahead of a newer one; a caller that died loses its place after queueGrace", async () => {
    const blocker = await holdAllGpus();
    const request = () => cli(["session", "create", "--detach", "--gpus", "8", "--", "sleep", "2"]);
    const queued = async (c: ReturnType<typeof cli>, position: number) =>
      eventually(() => c.out.stderr.includes(`position ${position} in the queue`), 15_000, { what: `position ${position}: ${c.out.stderr}` });
    // A, then D (whose CLI will die), then B and C.
    const a = request();
    await queued(a, 1);
    const d = request();
    await queued(d, 2);
    const b = request();
    await queued(b, 3);
    const c = request();
    await queued(c, 4);

    await executor.kill("SIGKILL");
    d.proc.kill("SIGKILL");
    await executor.start();
    const e = request();
    for (const x of [a, b, c]) await eventually(() => x.out.stderr.includes("executor restarting; reconnecting..."), 15_000, { what: "the reconnect line" });
    await queued(e, 5);
    expect((await executor.run(["session", "stop", blocker], { user: otherUser })).exitCode).toBe(0);

    const [ra, rb, rc, re] = await Promise.all([a.done, b.done, c.done, e.done]);
    for (const r of [ra, rb, rc, re]) {
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^[0-9a-f]{12}\n$/);
    }
    expect([ra, rb, rc, re].map((r) => r.exitedAt)).toEqual([ra, rb, rc, re].map((r) => r.exitedAt).toSorted((x, y) => x - y));
    // D's place, second, held B back until queueGrace was over and the place was given up: only then did B get GPUs.
    const log = executor.log();
    const givenUp = log.search(/the place in the queue of [0-9a-f]{12} was given up: its caller did not come back within queueGrace/);
    expect(givenUp).toBeGreaterThan(-1);
    expect(log.indexOf(`created session ${rb.stdout.trim()} `)).toBeGreaterThan(givenUp);
    for (const x of [ra, rb, rc]) expect(x.stderr.match(/executor restarting; reconnecting\.\.\./g)?.length).toBe(1);
    expect(ra.stderr).not.toContain("did not keep your place");
    await stopAll();
  }, 120_000);

  test("a stolen ticket is refused, a forged one too, and a replayed one after use; the owner's comes back first", async () => {
    const blocker = await holdAllGpus();
    const owner = uidOf(testUser);
    const thief = uidOf(otherUser);
    const body = { gpus: 8, image: null, name: null, cpus: null, memory: null, sharedMemory: null, ports: [], env: [], mounts: [], workdir: null, command: ["sleep", "5"], cwd: "/tmp", tty: false, term: null, noWait: false, detach: true };
    /** A create on the raw socket as `uid`, its NDJSON events collected as they come. */
    const create = (uid: number, ticket?: string) => {
      const events: Array<Record<string, unknown>> = [];
      const abort = new AbortController();
      const done = raw(executor, uid, "POST", "/v1/sessions", JSON.stringify(ticket ? { ...body, ticket } : body), abort.signal).then(async (res) => {
        let buffer = "";
        try {
          for await (const chunk of res.body!) {
            buffer += new TextDecoder().decode(chunk);
            for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n")) {
              if (buffer.slice(0, nl).trim()) events.push(JSON.parse(buffer.slice(0, nl)));
              buffer = buffer.slice(nl + 1);
            }
          }
        } catch {}
        return events;
      });
      const next = (type: string) => eventually(() => events.find((e) => e.type === type), 15_000, { what: `a ${type} event: ${JSON.stringify(events)}` });
      return { events, done, next, abort };
    };

    const first = create(owner);
    const ticket = (await first.next("ticket")).ticket as string;
    expect(await first.next("queued")).toMatchObject({ position: 1 });
    await executor.kill("SIGKILL");
    await first.done;
    await executor.start();

    // Another user with the owner's ticket, as it is and rewritten for themselves: refused, never queued.
    const stolen = await create(thief, ticket).done;
    expect(stolen).toEqual([{ type: "error", code: "forbidden", message: "this queue ticket was issued to another user" }]);
    const [payload, mac] = ticket.split(".") as [string, string];
    const rewritten = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, "base64url").toString()), u: thief })).toString("base64url");
    expect(await create(thief, `${rewritten}.${mac}`).done).toEqual([{ type: "error", code: "usage", message: "the queue ticket was not issued by this node's executor" }]);
    // The thief's own request waits behind the owner's vacant place.
    const theirs = create(thief);
    expect(await theirs.next("queued")).toMatchObject({ position: 2 });
    // The owner comes back and takes the place; sending the same ticket again is refused.
    const back = create(owner, ticket);
    expect(await back.next("returned")).toEqual({ type: "returned", kept: true });
    expect(await back.next("queued")).toMatchObject({ position: 1 });
    const replayed = await create(owner, ticket).done;
    expect(replayed.at(-1)).toEqual({ type: "error", code: "conflict", message: "this queue ticket was already used; it keeps a place once" });

    expect((await executor.run(["session", "stop", blocker], { user: otherUser })).exitCode).toBe(0);
    const created = await back.next("created");
    expect(created.session).toMatchObject({ uid: owner, gpus: expect.any(Array) });
    expect(theirs.events.some((e) => e.type === "created")).toBe(false);
    theirs.abort.abort();
    await stopAll();
  }, 120_000);
});

describe("a restart during 20 concurrent creates", () => {
  test.each(["SIGKILL", "SIGTERM"] as const)("%s: every create ends in a session or one clear line; no GPU shared; no container left", async (signal) => {
    const since = new Date().toISOString();
    const creates = Array.from({ length: 20 }, () => cli(["session", "create", "--detach", "--gpus", "1", "--", "sleep", "3"]));
    // GPUs of running containers, sampled all along: never one in two at once.
    let sharing: string | null = null;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const rows = Bun.spawnSync(["docker", "ps", "--filter", `label=beaker.node=${node}`, "--format", '{{.ID}} {{.Label "beaker.gpus"}}']).stdout.toString().trim();
        const owner = new Map<string, string>();
        for (const [id, gpus] of rows ? rows.split("\n").map((l) => l.split(" ")) : []) {
          for (const gpu of (gpus ?? "").split(",").filter(Boolean)) {
            if (owner.has(gpu)) sharing ??= `${gpu} in ${owner.get(gpu)} and ${id}`;
            owner.set(gpu, id!);
          }
        }
        await Bun.sleep(100); // how often it samples, not a wait for anything
      }
    })();
    await eventually(() => creates.filter((c) => c.out.code !== null).length >= 3, 60_000, { what: "the first sessions" });
    await executor.kill(signal);
    await executor.start();
    const results = await Promise.all(creates.map((c) => c.done));
    const ids = new Set<string>();
    for (const r of results) {
      if (r.code === 0) {
        expect(r.stdout).toMatch(/^[0-9a-f]{12}\n$/);
        ids.add(r.stdout.trim());
      } else {
        expect(r.stderr.split("\n").filter((l) => l.startsWith("beaker: "))).toHaveLength(1);
        expect(r.stderr).not.toContain("unexpected error");
      }
    }
    const failed = results.filter((r) => r.code !== 0).map((r) => r.stderr.split("\n").find((l) => l.startsWith("beaker: ")));
    console.log(`${signal} during 20 creates: ${ids.size} sessions, ${failed.length} clear errors${failed.length ? `: ${[...new Set(failed)].join(" | ")}` : ""}`);
    // No create got two sessions, and every session that exists was answered to its CLI.
    expect(ids.size).toBe(results.filter((r) => r.code === 0).length);
    await eventually(() => managedContainers(node).length === 0, 60_000, { what: "every session to run its course" });
    sampling = false;
    await sampler;
    expect(sharing).toBeNull();
    const all = JSON.parse((await executor.run(["session", "list", "--all", "--json"])).stdout) as Array<{ id: string; createdAt: string; startedAt: string | null }>;
    const ran = all.filter((s) => s.createdAt >= since && s.startedAt !== null).map((s) => s.id);
    for (const id of ran) expect(ids.has(id)).toBe(true);
    expect(ids.size).toBeGreaterThan(0);
  }, 180_000);
});
