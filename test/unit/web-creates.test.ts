/**
 * Creates the server holds for the web: the first answer, the queue as it moves, a create cut by the executor's
 * restart sent again with its ticket (as the CLI does), a node that does not come back, and the per-user bound.
 */
import { expect, test } from "bun:test";
import type { CreateSessionRequest } from "../../src/executor/api-types.ts";
import type { LinkRequest, NodeLink } from "../../src/link/types.ts";
import { WebCreates, webCreateLimits } from "../../src/server/web-creates.ts";
import { eventually } from "../harness.ts";

const request = { gpus: 1, image: null, name: null, cpus: null, memory: null, sharedMemory: null, ports: [], env: [], mounts: [], workdir: null, command: [], cwd: "/", tty: true, term: "xterm-256color", noWait: false, detach: true, slurm: null, timeLimit: null } satisfies CreateSessionRequest;
const limits = { ...webCreateLimits, retryEveryMs: 5, reconnectMs: 200, firstAnswerMs: 1000 };

/** A stream of NDJSON lines that ends when `end` is true, else stays open. */
function ndjson(events: unknown[], end: boolean): Response {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const e of events) c.enqueue(new TextEncoder().encode(`${JSON.stringify(e)}\n\n`));
      if (end) c.close();
    },
  });
  return new Response(body);
}

/** A node whose answers to successive creates are scripted. */
function scripted(answers: Array<(req: LinkRequest) => Response | Promise<Response>>) {
  const seen: LinkRequest[] = [];
  let linked = true;
  const link: NodeLink = {
    request: async (_user, req) => (seen.push(req), answers.shift()!(req)),
    socket: () => {
      throw new Error("no sockets here");
    },
  };
  return { seen, setLinked: (v: boolean) => (linked = v), links: { get: () => (linked ? link : null) } };
}

test("a create cut by the executor's restart is sent again with its ticket and keeps following the queue", async () => {
  const node = scripted([
    () => ndjson([{ type: "ticket", sessionId: "abcdef012345", ticket: "a.b" }, { type: "queued", sessionId: "abcdef012345", position: 3, gpus: 1, free: 0 }, { type: "error", code: "restarting", message: "the executor is restarting" }], true),
    () => ndjson([{ type: "returned", kept: true }, { type: "queued", sessionId: "abcdef012345", position: 1, gpus: 1, free: 0 }], false),
  ]);
  const creates = new WebCreates(node.links, Date.now, () => {}, limits);
  expect(await creates.start("alice", "n1", request)).toEqual({ kind: "started", sessionId: "abcdef012345" });
  await eventually(() => creates.get("abcdef012345", "alice")?.position === 1, 5_000, { intervalMs: 5, what: "the re-sent create to be queued at 1" });
  expect(node.seen.map((r) => (r.body as { ticket?: string }).ticket)).toEqual([undefined, "a.b"]);
  expect(creates.get("abcdef012345", "alice")).toMatchObject({ state: "queued", position: 1, error: null });
  expect(creates.get("abcdef012345", "bob")).toBeNull();
});

test("a node that does not come back within the bound ends the create with a line that says so", async () => {
  const node = scripted([() => ndjson([{ type: "ticket", sessionId: "abcdef012345", ticket: "a.b" }], true)]);
  node.setLinked(true);
  const creates = new WebCreates(node.links, Date.now, () => {}, limits);
  const first = creates.start("alice", "n1", request);
  expect(await first).toMatchObject({ kind: "started" });
  node.setLinked(false);
  await eventually(() => creates.get("abcdef012345", "alice")?.state === "failed", 5_000, { intervalMs: 10, what: "the create to fail" });
  expect(creates.get("abcdef012345", "alice")?.error?.message).toBe("node n1 did not come back within 0.2 s");
});

test("a refusal before any ticket is the first answer, with the executor's code and words", async () => {
  const node = scripted([() => Response.json({ error: { code: "usage", message: "image must be ..." } }, { status: 400 })]);
  const creates = new WebCreates(node.links, Date.now, () => {}, limits);
  expect(await creates.start("alice", "n1", request)).toEqual({ kind: "failed", code: "usage", message: "image must be ..." });
});

test("a user has at most 8 creates waiting from the web", async () => {
  let n = 0;
  const node = scripted(Array.from({ length: 9 }, () => () => ndjson([{ type: "ticket", sessionId: `abcdef0000${String(n++).padStart(2, "0")}`, ticket: "a.b" }], false)));
  const creates = new WebCreates(node.links, Date.now, () => {}, limits);
  for (let i = 0; i < 8; i++) expect((await creates.start("alice", "n1", request)).kind).toBe("started");
  expect(creates.start("alice", "n1", request)).rejects.toThrow("you have 8 sessions waiting to start from the web; wait for one, or stop one");
  expect((await creates.start("bob", "n1", request)).kind).toBe("started");
});
