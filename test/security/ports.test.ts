/**
 * A session's ports, as two ordinary users of the node (issue 26, findings 2 and 3). A runs a web server in a session
 * with --port; B, another local user, tries to read it: from the host at a published port or at the session's address
 * on its network, through the executor's port route, and by taking the IPv6 loopback of A's port-forward before A
 * does. Only A's own `session port-forward` may reach it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { busyboxImage, otherUser, TestExecutor, testUser } from "../executor-harness.ts";
import { eventually, testNodeName, within } from "../harness.ts";
import { asUser, proofFor, uidOf } from "./harness.ts";

const node = testNodeName(import.meta.file);
const executor = new TestExecutor({ nodeName: node });
const owner = testUser;
const intruder = otherUser;
let session = "";
let address = "";

const serve = "mkdir -p /tmp/w && echo SECRET-OF-A > /tmp/w/index.html && exec httpd -f -p 8888 -h /tmp/w";
const inspect = (ref: string) => JSON.parse(Bun.spawnSync(["docker", "inspect", ref]).stdout.toString())[0];

/** The session's address on its network (a session in a warm namespace has its holder's). */
function sessionAddress(id: string): string {
  let container = inspect(`beaker-${id}`);
  const mode = container.HostConfig.NetworkMode as string;
  if (mode.startsWith("container:")) container = inspect(mode.slice("container:".length));
  const networks = Object.values(container.NetworkSettings.Networks as Record<string, { IPAddress: string }>);
  return networks[0]!.IPAddress;
}

/** A free TCP port on both loopbacks of this host, from a high range. */
async function freePort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const free = (host: string) => {
      try {
        Bun.listen({ hostname: host, port, socket: { data() {} } }).stop(true);
        return true;
      } catch {
        return false;
      }
    };
    if (free("127.0.0.1") && free("::1")) return port;
  }
}

/** What a process wrote on a stream so far, read in the background. */
function collect(stream: ReadableStream<Uint8Array>): { text: () => string } {
  let text = "";
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  })().catch(() => {});
  return { text: () => text };
}

/** The first text message on the executor's port route as `uid`, or why the socket did not open. */
async function portRoute(uid: number, ref: string, port: number): Promise<string> {
  const ws = new WebSocket(`ws+unix://${executor.socket}:/v1/sessions/${ref}/ports/${port}`, { headers: { "x-beaker-proof": proofFor(executor, uid) } } as unknown as string[]);
  try {
    return await within(
      new Promise<string>((resolve) => {
        ws.onmessage = (e) => typeof e.data === "string" && resolve(e.data);
        ws.onerror = () => resolve("the socket did not open");
        ws.onclose = (e) => resolve(`closed ${e.code}`);
      }),
      10_000,
      "the port route's first message",
    );
  } finally {
    ws.close();
  }
}

beforeAll(async () => {
  executor.removeLeftovers();
  await executor.start();
  const r = await executor.run(["session", "create", "--detach", "--gpus", "0", "--image", busyboxImage, "--port", "8888", "--", "sh", "-c", serve], { user: owner });
  if (r.exitCode !== 0) throw new Error(`session create failed: ${r.stderr}`);
  session = r.stdout.trim().split("\n")[0]!;
  address = sessionAddress(session);
  // Root on the host reaches the server (the executor forwards as root): the probes below can see it answer.
  await eventually(async () => (await (await fetch(`http://${address}:8888/`)).text()).includes("SECRET-OF-A"), 20_000, { what: "A's server to answer" });
}, 60_000);
afterAll(() => executor.cleanup());

describe("a session's port from the host", () => {
  test("nothing is published on the node, and no local user reaches the session's address on its network", () => {
    const container = inspect(`beaker-${session}`);
    const published = Object.values((container.NetworkSettings.Ports ?? {}) as Record<string, Array<{ HostPort: string }> | null>).flatMap((b) => b ?? []);
    expect(published).toEqual([]);
    expect(address).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    for (const user of [intruder, owner]) {
      const r = asUser(user, `curl -s -m 3 http://${address}:8888/ || echo BLOCKED`);
      expect({ user, out: r.stdout.trim() }).toEqual({ user, out: "BLOCKED" });
    }
  }, 30_000);
});

describe("the executor's port route", () => {
  test("B asking for A's port gets the same 'no session' answer as for a session that does not exist", async () => {
    const b = uidOf(intruder);
    const ghost = "0123456789ab";
    const forA = JSON.parse(await portRoute(b, session, 8888));
    const forNothing = JSON.parse(await portRoute(b, ghost, 8888));
    expect(forA).toEqual({ type: "error", code: "not_found", message: `no session ${session} of yours on this node` });
    expect({ ...forNothing, message: forNothing.message.replace(ghost, session) }).toEqual(forA);
  }, 30_000);
});

describe("session port-forward", () => {
  test("A's forward reaches A's server on both loopbacks", async () => {
    const port = await freePort();
    const proc = executor.spawn(["session", "port-forward", session, `${port}:8888`], { user: owner });
    const err = collect(proc.stderr);
    try {
      await eventually(() => err.text().includes(`${port}`), 15_000, { what: "the forward's line", detail: err.text });
      for (const host of ["127.0.0.1", "[::1]", "localhost"]) {
        const r = asUser(owner, `curl -s -m 5 http://${host}:${port}/`);
        expect({ host, out: r.stdout.trim() }).toEqual({ host, out: "SECRET-OF-A" });
      }
    } finally {
      proc.kill();
      await proc.exited;
    }
  }, 30_000);

  test("a forward whose ::1 port B took first fails loudly, and serves nothing", async () => {
    const port = await freePort();
    const listener = Bun.spawn(
      ["setpriv", `--reuid=${intruder}`, `--regid=${intruder}`, "--init-groups", process.execPath, "-e", `Bun.listen({ hostname: "::1", port: ${port}, socket: { data() {} } }); console.log("listening")`],
      { stdout: "pipe", stderr: "pipe" },
    );
    const out = collect(listener.stdout);
    try {
      await eventually(() => out.text().includes("listening"), 10_000, { what: "B's listener on [::1]" });
      const proc = executor.spawn(["session", "port-forward", session, `${port}:8888`], { user: owner });
      const err = collect(proc.stderr);
      const code = await within(proc.exited, 10_000, "the port-forward", err.text).finally(() => proc.kill());
      expect(code).toBe(1);
      expect(err.text()).toBe(`beaker: [::1]:${port} is taken here (another program listens there): pick another LOCAL port\n`);
      expect(asUser(owner, `curl -s -m 3 http://127.0.0.1:${port}/ || echo NOTHING`).stdout.trim()).toBe("NOTHING");
    } finally {
      listener.kill();
      await listener.exited;
    }
  }, 30_000);
});
