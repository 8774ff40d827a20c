/**
 * The node link end to end: a real executor (dist/beaker) dials the server, whose code runs in this process
 * (InProcessServer) so the test calls NodeLinks as the web pages will; no test-only route exists. Relayed requests run
 * as the local account of the Beaker account's name, through the executor's own router and terminals.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createServer, type Server } from "node:net";
import type { CreateEvent, SessionInfo } from "../../src/executor/api-types.ts";
import type { LinkSocket, NodeLink } from "../../src/link/types.ts";
import { eventually, removeDir, tempDir, testNodeName } from "../harness.ts";
import { busyboxImage, otherUser, TestExecutor, testUser } from "../executor-harness.ts";
import { InProcessServer } from "../server-harness.ts";
import { proofFor, uidOf } from "../security/harness.ts";

const node = testNodeName(import.meta.file);
const server = new InProcessServer();
const tokenDir = tempDir("beaker-link-token-");
let executor: TestExecutor;
const tokens: Record<string, string> = {};

const createBody = (command: string[]) => ({ gpus: 0, image: busyboxImage, name: null, cpus: null, memory: null, sharedMemory: null, ports: [], env: [], mounts: [], workdir: null, command, cwd: "/tmp", tty: false, term: null, noWait: true, detach: true });

const link = (): Promise<NodeLink> => eventually(() => server.links.get(node), 30_000, { what: "the node's link", detail: () => executor.log().slice(-2000) });

async function json<T>(res: Promise<Response>): Promise<{ status: number; body: T }> {
  const r = await res;
  return { status: r.status, body: (await r.json()) as T };
}

/** A relayed create: its NDJSON events, the last one `created` or `error`. */
async function create(user: string, command: string[]): Promise<CreateEvent[]> {
  const res = await (await link()).request(user, { method: "POST", path: "/v1/sessions", body: createBody(command) });
  expect(res.headers.get("content-type")).toBe("application/x-ndjson");
  return (await res.text()).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as CreateEvent);
}

async function createdId(user: string, command: string[]): Promise<SessionInfo> {
  const events = await create(user, command);
  const last = events.at(-1)!;
  if (last.type !== "created") throw new Error(`create failed: ${JSON.stringify(last)}`);
  return last.session;
}

/** What a relayed socket hears: control messages, and the bytes of tagged output as text. */
function listen(socket: LinkSocket) {
  const got = { controls: [] as Array<Record<string, unknown>>, output: "", closed: null as null | { code: number; reason: string } };
  socket.onmessage = (m) => {
    if (typeof m === "string") got.controls.push(JSON.parse(m));
    else got.output += new TextDecoder().decode(m.subarray(1));
  };
  socket.onclose = (code, reason) => (got.closed = { code, reason });
  return got;
}

const running = (id: string) => Bun.spawnSync(["docker", "inspect", "-f", "{{.State.Running}}", `beaker-${id}`]).stdout.toString().trim() === "true";

beforeAll(async () => {
  await server.start();
  for (const name of [testUser, otherUser, "root"]) tokens[name] = (await server.store!.createUser(name, false)).token;
  const { file } = await server.addNode(node, "lab", tokenDir);
  executor = new TestExecutor({ nodeName: node, extra: `server: ${server.url}\ntokenFile: ${file}\n` });
  executor.removeLeftovers();
  await executor.start();
});
afterAll(async () => {
  await executor.cleanup();
  await server.cleanup();
  removeDir(tokenDir);
});

test("relayed list, create (detached, NDJSON) and stop run as beaker-test-user, and the session is that uid's", async () => {
  expect(await json((await link()).request(testUser, { method: "GET", path: "/v1/sessions" }))).toEqual({ status: 200, body: [] });
  const events = await create(testUser, ["sleep", "300"]);
  expect(events[0]).toMatchObject({ type: "ticket" });
  const created = events.at(-1)!;
  expect(created).toMatchObject({ type: "created", session: { user: testUser, uid: uidOf(testUser), account: testUser } });
  const id = (created as Extract<CreateEvent, { type: "created" }>).session.id;
  const listed = await json<SessionInfo[]>((await link()).request(testUser, { method: "GET", path: "/v1/sessions" }));
  expect(listed.body.map((s) => s.id)).toEqual([id]);
  const stopped = await json<SessionInfo>((await link()).request(testUser, { method: "POST", path: `/v1/sessions/${id}/stop`, body: { timeout: 0 } }));
  expect(stopped).toMatchObject({ status: 200, body: { id, status: "exited" } });
  expect(executor.log()).toMatch(/node link to http:\/\/127\.0\.0\.1:\d+ is up/);
}, 60_000);

test("a relayed attach socket gets the session's output; beaker-test-other gets not found for it (list, describe, stop, attach)", async () => {
  const session = await createdId(testUser, ["sh", "-c", "i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.2; done"]);
  const attach = listen((await link()).socket(testUser, `/v1/sessions/${session.id}/attach`));
  await eventually(() => /tick-\d+/.test(attach.output), 20_000, { what: "the session's output over the link" });
  expect(attach.closed).toBeNull();

  const other = await link();
  const theirs = await json<SessionInfo[]>(other.request(otherUser, { method: "GET", path: "/v1/sessions?all=1" }));
  expect(theirs).toEqual({ status: 200, body: [] });
  const describe = await json<{ error: { code: string } }>(other.request(otherUser, { method: "GET", path: `/v1/sessions/${session.id}` }));
  expect(describe.status).toBe(404);
  expect(describe.body.error.code).toBe("not_found");
  const stop = await json<{ error: { code: string } }>(other.request(otherUser, { method: "POST", path: `/v1/sessions/${session.id}/stop`, body: { timeout: 0 } }));
  expect(stop.status).toBe(404);
  const spy = listen(other.socket(otherUser, `/v1/sessions/${session.id}/attach`));
  await eventually(() => spy.closed, 10_000, { what: "the other user's attach to be refused" });
  expect(spy.controls).toEqual([{ type: "error", code: "not_found", message: expect.any(String) }]);
  expect(spy.output).toBe("");
  expect(running(session.id)).toBe(true);

  await json((await link()).request(testUser, { method: "POST", path: `/v1/sessions/${session.id}/stop`, body: { timeout: 0 } }));
  await eventually(() => attach.closed, 20_000, { what: "the attach to end with the session" });
  expect(attach.controls.at(-1)).toMatchObject({ type: "exit" });
}, 60_000);

test("an account named root is refused (403, forbidden), requests and sockets alike, and the refusal is logged", async () => {
  const refused = await json<{ error: { code: string; message: string } }>((await link()).request("root", { method: "GET", path: "/v1/sessions" }));
  expect(refused.status).toBe(403);
  expect(refused.body.error).toMatchObject({ code: "forbidden", message: expect.stringContaining("uid 0") });
  const socket = listen((await link()).socket("root", "/v1/sessions/anything/attach"));
  await eventually(() => socket.closed, 10_000, { what: "root's socket to be refused" });
  expect(socket.controls).toEqual([{ type: "error", code: "forbidden", message: expect.stringContaining("uid 0") }]);
  expect(executor.log()).toMatch(/node link: refused a request for "root"/);
  // Nor does the link reach root-only routes, whoever asks.
  expect((await json((await link()).request(testUser, { method: "POST", path: "/v1/restart", body: {} }))).status).toBe(403);
});

test("the server dies while a session runs: the session and its terminal on the node's socket go on, the link's terminal ends (1011), the link comes back", async () => {
  const session = await createdId(testUser, ["sh", "-c", "while :; do echo alive; sleep 0.2; done"]);
  const attach = listen((await link()).socket(testUser, `/v1/sessions/${session.id}/attach`));
  await eventually(() => attach.output.includes("alive"), 20_000, { what: "output before the crash" });
  // The same session attached on the node's own socket, as the CLI does it.
  const local = new WebSocket(`ws+unix://${executor.socket}:/v1/sessions/${session.id}/attach`, {
    headers: { "x-beaker-proof": proofFor(executor, uidOf(testUser)), "x-beaker-token": tokens[testUser]! },
  } as unknown as string[]);
  local.binaryType = "arraybuffer";
  let localOutput = "";
  let localClosed = false;
  local.onmessage = (e) => {
    if (typeof e.data !== "string") localOutput += new TextDecoder().decode(new Uint8Array(e.data as ArrayBuffer).subarray(1));
  };
  local.onclose = () => (localClosed = true);
  await eventually(() => localOutput.includes("alive"), 20_000, { what: "output on the node's own socket" });
  const port = server.port;
  const downLines = () => executor.log().match(/node link to .* is down/g)?.length ?? 0;
  const before = downLines();
  await server.kill();
  expect(attach.closed?.code).toBe(1011);
  await eventually(() => downLines() === before + 1, 20_000, { what: "the executor to say the link is down" });
  // While the server is away, a bare listener on its port counts the executor's tries (and hangs up on each).
  let tries = 0;
  const listener: Server = createServer((socket) => {
    tries++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => listener.listen(port, "127.0.0.1", resolve));
  await eventually(() => tries >= 2, 20_000, { what: "two more tries to dial the server" });
  await new Promise<void>((resolve) => listener.close(() => resolve()));
  expect(running(session.id)).toBe(true);
  // The terminal on the node's own socket never noticed.
  const seen = localOutput.length;
  await eventually(() => localOutput.length > seen + 12, 10_000, { what: "more output on the node's own socket" });
  expect(localClosed).toBe(false);
  await server.start(port);
  const back = await json<SessionInfo[]>((await link()).request(testUser, { method: "GET", path: "/v1/sessions" }));
  expect(back.body.map((s) => s.id)).toContain(session.id);
  expect(running(session.id)).toBe(true);
  // One line when it went down, one when it came back: not one per try.
  expect(downLines()).toBe(before + 1);
  expect(executor.log().match(/node link to .* is up/g)?.length).toBe(2);
  const again = listen((await link()).socket(testUser, `/v1/sessions/${session.id}/attach`));
  await eventually(() => again.output.includes("alive"), 20_000, { what: "output over the new link" });
  await json((await link()).request(testUser, { method: "POST", path: `/v1/sessions/${session.id}/stop`, body: { timeout: 0 } }));
  local.close();
}, 90_000);
