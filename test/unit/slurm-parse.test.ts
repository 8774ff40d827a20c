/** The edges of reading Slurm's job records: word splitting, the values that mean nothing, ranges, host lists, endings. */
import { describe, expect, test } from "bun:test";
import { endReason, expandHostlist, expandRanges, gpuIndexes, holdsAllocation, parseJobLine, pendingLine, slurmTime } from "../../src/slurm/job.ts";

describe("a job line", () => {
  test("only the JobId: every other field empty, unknown or none", () => {
    expect(parseJobLine("JobId=5")).toStrictEqual({
      id: "5", name: "", uid: -1, user: "", state: "UNKNOWN", reason: null, partition: null, account: null, qos: null, startTime: null, endTime: null, nodes: [], gpusByNode: {},
    });
  });
  test("spaces around and between words; a word with '=' but no key name stays in the value before it", () => {
    const job = parseJobLine("  JobId=7   JobName=run 2x=y x2=z  Account=lab QOS=normal UserId=ada(1000) ");
    expect(job).toMatchObject({ id: "7", name: "run 2x=y x2=z", account: "lab", qos: "normal", uid: 1000, user: "ada" });
  });
  test("an owner not written as name(uid) is nobody", () => {
    expect(parseJobLine("JobId=7 UserId=ada(1000)x")).toMatchObject({ uid: -1, user: "" });
  });
  test.each(["", "(null)", "None", "N/A", "Unknown", "NONE"])("a partition of %p is none", (value) => {
    expect(parseJobLine(`JobId=7 Partition=${value} JobName=x`)!.partition).toBeNull();
  });
  test("GPUs of a detail without its nodes belong to no node", () => {
    expect(parseJobLine("JobId=7 GRES=gpu(IDX:0)")!.gpusByNode).toEqual({});
  });
});

test("times: only Slurm's own local format", () => {
  expect(slurmTime("2026-11-29T13:37:48")).toBe(new Date("2026-11-29T13:37:48").toISOString());
  for (const v of ["2026-11-29 13:37:48", "2026-11-29T13:37:48Z", "Unknown", undefined]) expect(slurmTime(v)).toBeNull();
});

describe("ranges", () => {
  test.each<[string, number[]]>([
    ["0-2, 5,7-8", [0, 1, 2, 5, 7, 8]],
    ["12,0-12", [12, ...Array.from({ length: 13 }, (_, i) => i)]],
    ["x5,5x,x", []],
    ["3000-3002", [3000, 3001, 3002]],
  ])("%p", (list, expected) => {
    expect(expandRanges(list)).toEqual(expected);
  });
  test("a range is cut at 4096 entries", () => {
    expect(expandRanges("0-99999")).toHaveLength(4096);
  });
  test("GPU indexes: a model name and a count of two digits, in order, once each", () => {
    expect(gpuIndexes("gpu:a100:12(IDX:0-11)")).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(gpuIndexes("gpu(IDX:3),gpu:a100:1(IDX:1,3)")).toEqual([1, 3]);
  });
});

describe("host lists", () => {
  test.each<[string, string[]]>([
    ["gpu[01-02,x3,3x],login1", ["gpu01", "gpu02", "login1"]],
    ["a, ,b", ["a", "b"]],
    ["n[40000-40001]", ["n40000", "n40001"]],
  ])("%p", (list, expected) => {
    expect(expandHostlist(list)).toEqual(expected);
  });
  test("a range is cut at 65536 hosts", () => {
    expect(expandHostlist("n[0-70000]")).toHaveLength(65536);
  });
});

test.each(["RUNNING", "SUSPENDED", "CONFIGURING"])("a %s job holds its allocation", (state) => {
  expect(holdsAllocation({ state })).toBe(true);
});
test("a pending job does not", () => {
  expect(holdsAllocation({ state: "PENDING" })).toBe(false);
});

test.each<[string, string | null, string]>([
  ["BOOT_FAIL", null, "node failed to boot"],
  ["DEADLINE", null, "deadline"],
  ["OUT_OF_MEMORY", null, "out of memory"],
  ["FAILED", "NonZeroExitCode", "failed (NonZeroExitCode)"],
  ["COMPLETING", null, "completing"],
  ["REQUEUED", null, "requeued"],
  ["PENDING", "BeginTime", "requeued"],
  ["REVOKED", null, "revoked"],
  ["SPECIAL_EXIT", null, "special exit"],
  ["TIMEOUT", "NodeDown", "time limit"],
  ["CANCELLED", "TimeLimit raised by admin", "cancelled (TimeLimit raised by admin)"],
  ["CANCELLED", "Not None", "cancelled (Not None)"],
])("ended %s (%p): %p", (state, reason, words) => {
  expect(endReason({ state, reason })).toBe(words);
});

test("waiting without a reason: pending", () => {
  expect(pendingLine({ id: "5", reason: null, startTime: null }, () => "")).toBe("Waiting for Slurm job 5: pending");
});
