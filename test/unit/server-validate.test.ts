/** What the server takes as a request body: its size, JSON, and the shape of a node's report, field by field. */
import { describe, expect, test } from "bun:test";
import { BodyTooLargeError, UsageError } from "../../src/errors.ts";
import { heartbeatShape, optional, parseJson, readText, validate, type Shape } from "../../src/server/validate.ts";

const refusal = (value: unknown, shape: Shape) => {
  try {
    validate(value, shape);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  return null;
};

describe("validate", () => {
  test.each<[unknown, Shape, string | null]>([
    ["x", "string?", null],
    [null, "string?", null],
    [undefined, "number?", null],
    [5, "string?", "body must be a string"],
    ["5", "number?", "body must be a number"],
    [Number.NaN, "number", "body must be a number"],
    [Number.POSITIVE_INFINITY, "number", "body must be a number"],
    [0, "number", null],
    ["x".repeat(4096), "string", null],
    ["x".repeat(4097), "string", "body is too long"],
    ["x".repeat(4097), "string?", "body is too long"],
    [null, optional(["string"]), null],
    [[1], optional(["string"]), "body[0] must be a string"],
    ["ab", { a: "string?" }, "body must be an object"],
    [5, { a: "string?" }, "body must be an object"],
    [null, { a: "string?" }, "body must be an object"],
    [["x"], { a: "string?" }, "body must be an object"],
    [{ a: "x", b: 1 }, { a: "string" }, "unknown field body.b"],
    [{}, { a: "string" }, "body.a must be a string"],
    ["ab", ["string"], "body must be a list"],
  ])("%p as %p: %p", (value, shape, message) => {
    expect(refusal(value, shape)).toBe(message);
  });
  test("a list of up to 10,000 entries, no more", () => {
    expect(refusal(Array(10_000).fill(1), ["number"])).toBeNull();
    expect(refusal(Array(10_001).fill(1), ["number"])).toBe("body has too many entries");
  });
});

describe("a node's report", () => {
  const report = {
    cpus: 8,
    memoryBytes: 1024,
    version: "0.1.0",
    gpus: [
      { index: 0, uuid: "GPU-0", name: "H100", memoryMiB: 81559, claimedBy: "s1", healthy: true, error: null, foreignProcesses: [{ pid: 7, name: "python" }], utilization: 40, memoryUsedMiB: 1024 },
      { index: null, uuid: "GPU-1", name: null, memoryMiB: null, claimedBy: null, healthy: false, error: "Xid 79" },
    ],
    sessions: [
      {
        id: "s1",
        name: "train",
        user: "ada",
        gpus: ["GPU-0"],
        image: "ubuntu",
        status: "running",
        createdAt: "2026-01-01T00:00:00.000Z",
        startedAt: "2026-01-01T00:00:01.000Z",
        utilization: [40, null],
        idleSince: "2026-01-01T00:10:00.000Z",
        deadline: "2026-01-02T00:00:00.000Z",
        ports: [8888, 6006],
      },
      { id: "s2", name: "q", user: "bob", gpus: [], image: "ubuntu", status: "queued", createdAt: "2026-01-01T00:00:00.000Z", startedAt: null },
    ],
  };
  test("a full report, every field set, is taken as it is", () => {
    expect(validate(report, heartbeatShape)).toBe(report);
  });
  test.each<[string, (r: typeof report) => void, string]>([
    ["a process without a name", (r) => void (r.gpus[0]!.foreignProcesses = [{ pid: 7 } as never]), "body.gpus[0].foreignProcesses[0].name must be a string"],
    ["a session's GPU that is no string", (r) => void (r.sessions[0]!.gpus = [0 as never]), "body.sessions[0].gpus[0] must be a string"],
    ["a session without a user", (r) => void delete (r.sessions[1] as Partial<(typeof report.sessions)[0]>).user, "body.sessions[1].user must be a string"],
    ["a utilization that is no number", (r) => void (r.sessions[0]!.utilization = ["40" as never]), "body.sessions[0].utilization[0] must be a number"],
    ["a deadline that is no string", (r) => void (r.sessions[0]!.deadline = 5 as never), "body.sessions[0].deadline must be a string"],
    ["a session's port that is no number", (r) => void (r.sessions[0]!.ports = ["8888" as never]), "body.sessions[0].ports[0] must be a number"],
  ])("%s is refused, with the path", (_, change, message) => {
    const changed = structuredClone(report);
    change(changed);
    expect(refusal(changed, heartbeatShape)).toBe(message);
  });
});

describe("bodies", () => {
  const post = (body: string, length?: string) => new Request("http://server/", { method: "POST", body, headers: length === undefined ? {} : { "content-length": length } });
  test("a body of exactly the limit is read", async () => {
    expect(await readText(post("abcd"), 4)).toBe("abcd");
    expect(await readText(post("abcd", "4"), 4)).toBe("abcd");
  });
  test("a POST without a body reads as empty, at once (a form with no fields: sign-out)", async () => {
    expect(await readText(new Request("http://server/", { method: "POST" }), 4)).toBe("");
  });
  test("a body over the limit is refused", async () => {
    await expect(readText(post("abcde"), 4)).rejects.toThrow(new BodyTooLargeError(4));
  });
  test("a declared length over the limit is refused before the body is read", async () => {
    const req = post("ab", "5");
    await expect(readText(req, 4)).rejects.toThrow(new BodyTooLargeError(4));
    expect(req.bodyUsed).toBe(false);
  });
  test("JSON: parsed, or refused as a usage error that says why", () => {
    expect(parseJson('{"a":[1]}')).toEqual({ a: [1] });
    expect(() => parseJson("{a")).toThrow(UsageError);
    expect(() => parseJson("{a")).toThrow(/^body is not valid JSON: ./);
  });
});
