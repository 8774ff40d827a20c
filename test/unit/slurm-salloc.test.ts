/** Which Slurm jobs are a session's (by name, exactly), and what salloc said when it refused. */
import { expect, test } from "bun:test";
import { ownJobName, sallocError, sessionOfJob } from "../../src/slurm/allocation.ts";

test("only a job named exactly beaker-<session id> is that session's", () => {
  expect(sessionOfJob(ownJobName("0123456789ab"))).toBe("0123456789ab");
  expect(sessionOfJob("evil-beaker-0123456789ab")).toBeNull();
  expect(sessionOfJob("beaker-0123456789abc")).toBeNull();
});

test.each([
  ["salloc: error: Invalid account or account/partition combination specified  \n", "Invalid account or account/partition combination specified"],
  ["salloc: error: QOSMaxGRESPerUser\nsalloc: error: Job submit/allocate failed: Invalid qos specification\n", "QOSMaxGRESPerUser; Job submit/allocate failed: Invalid qos specification"],
  ["salloc: Pending job allocation 12\nsalloc: Job allocation 12 has been revoked.\n", "Job allocation 12 has been revoked."],
  ["", "salloc failed without a message"],
])("salloc's stderr %p says %p", (stderr, message) => {
  expect(sallocError(stderr)).toBe(message);
});
