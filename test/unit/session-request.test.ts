/** `session create` while the executor restarts: what is sent again (with its ticket), and what is an answer. */
import { describe, expect, test } from "bun:test";
import { requestSession } from "../../src/cli/commands/session/create.ts";
import type { Factory } from "../../src/cli/factory.ts";
import { createTestIO } from "../../src/cli/io.ts";
import { Reconnect } from "../../src/cli/reconnect.ts";
import { RestartingError, UnavailableError } from "../../src/errors.ts";
import type { CreateEvent, CreateSessionRequest, SessionInfo } from "../../src/executor/api-types.ts";
import { ConnectionLostError, ExecutorUnreachableError, type ExecutorHealth } from "../../src/executor/client.ts";

const request = { gpus: 2, command: [] } as unknown as CreateSessionRequest;
const session = { id: "0123456789ab" } as SessionInfo;
const health: ExecutorHealth = { version: "1", commit: "c", node: "n", pid: 1, server: null, binary: null };
const ticket = (t: string): CreateEvent => ({ type: "ticket", sessionId: "x", ticket: t });
const queued: CreateEvent = { type: "queued", sessionId: "x", position: 1, gpus: 2, free: 0 };
const created: CreateEvent = { type: "created", session };

/** Each attempt: the events the executor sends, then how the stream ends (an error thrown, or null: it just ends). */
type Attempt = { events: CreateEvent[]; then: Error | null };

function run(attempts: Attempt[], timeoutSeconds = 60, answers: ExecutorHealth | null = health) {
  const io = createTestIO();
  const bodies: unknown[] = [];
  const executor = {
    async *events(_method: string, _path: string, body: unknown) {
      bodies.push(body);
      const attempt = attempts.shift()!;
      for (const e of attempt.events) yield e;
      if (attempt.then) throw attempt.then;
    },
  };
  const factory = { io, executor: () => executor } as unknown as Factory;
  let now = 0;
  const reconnect = new Reconnect({ io, timeoutSeconds, health: async () => answers, now: () => now, sleep: async (ms) => void (now += ms) });
  return { result: requestSession(factory, request, reconnect), io, bodies };
}

describe("a create while the executor restarts", () => {
  test("a broken stream goes again with the ticket; one line says so", async () => {
    const r = run([
      { events: [ticket("T1"), queued], then: new ConnectionLostError("lost") },
      { events: [ticket("T2"), { type: "returned", kept: true }, queued, created], then: null },
    ]);
    expect(await r.result).toBe(session);
    expect(r.bodies).toEqual([request, { ...request, ticket: "T1" }]);
    expect(r.io.stderr()).toBe("Waiting for 2 GPUs: position 1 in the queue (0 free now)\nexecutor restarting; reconnecting...\n");
  });

  test("an executor that says it is restarting is asked again, and the next one's ticket is the one kept", async () => {
    const r = run([
      { events: [ticket("T1"), { type: "error", code: "restarting", message: "restarting" }], then: null },
      { events: [], then: new ExecutorUnreachableError("no socket") },
      { events: [ticket("T2")], then: new ConnectionLostError("lost") },
      { events: [ticket("T3"), created], then: null },
    ]);
    expect(await r.result).toBe(session);
    expect(r.bodies.map((b) => (b as { ticket?: string }).ticket)).toEqual([undefined, "T1", "T1", "T2"]);
  });

  test("a place not kept is said", async () => {
    const r = run([
      { events: [ticket("T1")], then: new ConnectionLostError("lost") },
      { events: [ticket("T2"), { type: "returned", kept: false }, created], then: null },
    ]);
    await r.result;
    expect(r.io.stderr()).toContain("the executor restarted and did not keep your place in the queue (you were away longer than it waits); waiting again\n");
  });

  test.each([
    ["the executor's own answer (Docker down)", { events: [ticket("T1"), { type: "error", code: "unavailable", message: "Docker is not running on this node" }], then: null }, UnavailableError],
    ["no executor at all, before any answer", { events: [], then: new ExecutorUnreachableError("no executor socket") }, ExecutorUnreachableError],
  ] as const)("%s: one error, not sent again", async (_, attempt, type) => {
    const r = run([attempt as unknown as Attempt, { events: [created], then: null }]);
    expect(r.result).rejects.toBeInstanceOf(type);
    await r.result.catch(() => {});
    expect(r.bodies).toHaveLength(1);
    expect(r.io.stderr()).not.toContain("reconnecting");
  });

  test("no executor back within reconnect_timeout: one line that says so", async () => {
    const r = run(
      [
        { events: [ticket("T1")], then: new RestartingError("restarting") },
        { events: [created], then: null },
      ],
      3,
      null,
    );
    expect(r.result).rejects.toThrow("the executor did not come back within 3 s (reconnect_timeout); 'beaker executor status' says whether it runs");
    await r.result.catch(() => {});
    expect(r.bodies).toHaveLength(1);
  });
});
