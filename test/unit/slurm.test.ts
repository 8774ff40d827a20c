/** Slurm, read and asked: job records from a real Slurm 22.05, salloc's arguments and lines, and who runs the commands. */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseExecutorConfig } from "../../src/config/executor.ts";
import { ConfigError } from "../../src/errors.ts";
import { ownJobName, parseSallocLine, sallocArgs, sallocError, sessionOfJob, slurmUnreachable, type AllocationRequest } from "../../src/slurm/allocation.ts";
import { endReason, expandHostlist, expandRanges, gpuIndexes, holdsAllocation, parseJobs, pendingLine, slurmTime } from "../../src/slurm/job.ts";
import { asUser, slurmEnv } from "../../src/slurm/run.ts";
import { repoRoot } from "../harness.ts";

const recording = (name: string) => readFileSync(join(repoRoot, "test/fixtures/slurm", name), "utf8");

describe("scontrol show job -d -o (recorded from Slurm 22.05 with 8 gres.conf GPUs)", () => {
  test("running jobs: owner, name, node, and the GPU indexes Slurm gave each on its node", () => {
    const jobs = parseJobs(recording("scontrol-show-job-running.txt"));
    expect(jobs.map((j) => [j.id, j.name, j.user, j.uid, j.state, j.nodes, j.gpusByNode])).toEqual([
      ["1", "beaker-0123456789ab", "beaker-test-user", 1001, "RUNNING", ["vm"], { vm: [0, 1, 2] }],
      ["2", "wrap", "beaker-test-other", 1002, "RUNNING", ["vm"], { vm: [3, 4, 5, 6, 7] }],
      ["3", "cpu-only", "beaker-test-user", 1001, "RUNNING", ["vm"], { vm: [] }],
    ]);
    expect(jobs.every(holdsAllocation)).toBe(true);
    const [limited, , yearLong] = jobs;
    expect(limited!.partition).toBe("gpu");
    expect(limited!.reason).toBeNull();
    // A 30-minute limit: the end is 30 minutes after the start.
    expect(Date.parse(limited!.endTime!) - Date.parse(limited!.startTime!)).toBe(30 * 60_000);
    // salloc with no time on a partition with no limit: Slurm's 365 days.
    expect(Math.round((Date.parse(yearLong!.endTime!) - Date.parse(yearLong!.startTime!)) / 86_400_000)).toBe(365);
    expect(parseJobs("JobId=5 JobState=RUNNING TimeLimit=UNLIMITED EndTime=2027-11-29T13:59:51")[0]!.endTime).toBeNull();
  });

  test("a pending job: Slurm's reason and its start estimate, no node yet", () => {
    const [job] = parseJobs(recording("scontrol-show-job-pending.txt"));
    expect(job).toMatchObject({ name: "beaker", state: "PENDING", reason: "Resources", nodes: [], gpusByNode: {} });
    expect(job!.startTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
    expect(holdsAllocation(job!)).toBe(false);
    expect(pendingLine(job!, () => "12:00")).toBe("Waiting for Slurm job 4: Resources; Slurm expects it to start at 12:00");
    expect(pendingLine({ ...job!, startTime: null }, () => "")).toBe("Waiting for Slurm job 4: Resources");
  });

  test("a cancelled job ends as 'cancelled'", () => {
    const [job] = parseJobs(recording("scontrol-show-job-cancelled.txt"));
    expect(job!.state).toBe("CANCELLED");
    expect(holdsAllocation(job!)).toBe(false);
    expect(endReason(job!)).toBe("cancelled");
  });

  test("a value with spaces stays whole; a line that is no job is skipped", () => {
    const [job] = parseJobs("JobId=9 JobName=my job UserId=ada(1000) JobState=RUNNING Reason=None NodeList=n1\nslurm_load_jobs error\n");
    expect(job).toMatchObject({ id: "9", name: "my job", user: "ada", uid: 1000, nodes: ["n1"] });
  });

  test("a job on several nodes: each node's own indexes", () => {
    const [job] = parseJobs("JobId=7 JobName=x UserId=ada(1000) JobState=RUNNING NodeList=gpu[01-02] JOB_GRES=gpu:4 Nodes=gpu01 CPU_IDs=0 Mem=0 GRES=gpu:2(IDX:0-1) Nodes=gpu02 CPU_IDs=0 Mem=0 GRES=gpu:2(IDX:6-7)");
    expect(job!.gpusByNode).toEqual({ gpu01: [0, 1], gpu02: [6, 7] });
  });
});

describe("pieces of Slurm's notation", () => {
  test.each([
    ["gpu:3(IDX:0-2)", [0, 1, 2]],
    ["gpu:a100:2(IDX:0,3)", [0, 3]],
    ["gpu(IDX:1)", [1]],
    ["gpu:2(IDX:4-5),nic:1(IDX:0)", [4, 5]],
    ["nic:1(IDX:0)", []],
    ["", []],
    ["(null)", []],
  ])("GRES %p -> GPU indexes %p", (gres, indexes) => expect(gpuIndexes(gres)).toEqual(indexes));

  test.each([
    ["vm", ["vm"]],
    ["gpu[01-03,07]", ["gpu01", "gpu02", "gpu03", "gpu07"]],
    ["a1,b[2-3],c", ["a1", "b2", "b3", "c"]],
    ["", []],
  ])("hostlist %p -> %p", (list, hosts) => expect(expandHostlist(list)).toEqual(hosts));

  test("ranges and times", () => {
    expect(expandRanges("0-2,5,7-8")).toEqual([0, 1, 2, 5, 7, 8]);
    expect(slurmTime("Unknown")).toBeNull();
    expect(slurmTime("N/A")).toBeNull();
    // Slurm prints local time without a zone.
    expect(slurmTime("2026-11-29T13:37:48")).toBe(new Date(2026, 10, 29, 13, 37, 48).toISOString());
  });

  test.each([
    [{ state: "TIMEOUT", reason: "TimeLimit" }, "time limit"],
    [{ state: "CANCELLED", reason: null }, "cancelled"],
    [{ state: "PREEMPTED", reason: null }, "preempted"],
    [{ state: "NODE_FAIL", reason: "NodeDown" }, "node failure (NodeDown)"],
    [{ state: "COMPLETED", reason: null }, "completed"],
    [{ state: "SPECIAL_EXIT", reason: null }, "special exit"],
    [null, "the job is gone"],
  ])("%j ends a session with reason %p", (job, reason) => expect(endReason(job)).toBe(reason));
});

describe("asking Slurm", () => {
  const request: AllocationRequest = { name: ownJobName("0123456789ab"), node: "gpu07", gpus: 2, cpus: 3.5, partition: "a100", account: "lab", qos: "high", time: "4:00:00", immediate: true };

  test("salloc holds one task's allocation on the node asked, with the job's name and what was asked", () => {
    expect(sallocArgs(request)).toEqual([
      "--no-shell",
      "--job-name=beaker-0123456789ab",
      "--nodes=1",
      "--ntasks=1",
      "--nodelist=gpu07",
      "--gres=gpu:2",
      "--cpus-per-task=4",
      "--partition=a100",
      "--account=lab",
      "--qos=high",
      "--time=4:00:00",
      "--immediate",
    ]);
    expect(sallocArgs({ ...request, node: null, gpus: 0, cpus: null, partition: null, account: null, qos: null, time: null, immediate: false })).toEqual([
      "--no-shell",
      "--job-name=beaker-0123456789ab",
      "--nodes=1",
      "--ntasks=1",
    ]);
  });

  test("salloc's lines: the job's id while pending and once granted; its refusals without the noise", () => {
    expect(parseSallocLine("salloc: Pending job allocation 42")).toEqual({ job: "42", granted: false });
    expect(parseSallocLine("salloc: Granted job allocation 42")).toEqual({ job: "42", granted: true });
    expect(parseSallocLine("salloc: job 42 queued and waiting for resources")).toBeNull();
    expect(sallocError("salloc: error: Job submit/allocate failed: Requested node configuration is not available\n")).toBe(
      "Job submit/allocate failed: Requested node configuration is not available",
    );
    expect(slurmUnreachable("Unable to contact slurm controller (connect failure)")).toBe(true);
    expect(slurmUnreachable("Invalid account or account/partition combination specified")).toBe(false);
  });

  test("jobs Beaker may cancel unasked are known by name", () => {
    expect(sessionOfJob("beaker-0123456789ab")).toBe("0123456789ab");
    for (const name of ["beaker", "beaker-mine", "train", "beaker-0123456789abc"]) expect(sessionOfJob(name)).toBeNull();
  });

  test("commands for a user run as that user (uid, gid, groups) with Slurm's config and none of the caller's secrets", () => {
    const ada = { uid: 1000, gid: 1000, name: "ada", home: "/home/ada" };
    expect(asUser(["salloc", "--no-shell"], ada)).toEqual(["setpriv", "--reuid=1000", "--regid=1000", "--init-groups", "--", "salloc", "--no-shell"]);
    expect(asUser(["scontrol"], null)).toEqual(["scontrol"]);
    const env = slurmEnv({ PATH: "/usr/bin", SLURM_CONF: "/etc/slurm/slurm.conf", BEAKER_TOKEN: "secret", HOME: "/root" }, ada);
    expect(env).toEqual({ PATH: "/usr/bin", LC_ALL: "C", SLURM_CONF: "/etc/slurm/slurm.conf", HOME: "/home/ada", USER: "ada", LOGNAME: "ada" });
  });
});

describe("executor config", () => {
  test("scheduler defaults to native; the slurm section takes defaults for the jobs", () => {
    expect(parseExecutorConfig({}, "c.yml").scheduler).toBe("native");
    const config = parseExecutorConfig({ scheduler: "slurm", slurm: { partition: "gpu", account: "lab", qos: null, time: "4:00:00", node: "gpu07", orphanGrace: "2m" } }, "c.yml");
    expect(config.slurm).toEqual({ partition: "gpu", account: "lab", qos: null, time: "4:00:00", node: "gpu07", orphanGrace: 120 });
  });

  test.each([
    [{ scheduler: "pbs" }, 'c.yml: scheduler must be "native" or "slurm"'],
    [{ slurm: "gpu" }, "c.yml: slurm must be a mapping (partition, account, qos, time, node, orphanGrace)"],
    [{ slurm: { partiton: "gpu" } }, 'c.yml: slurm has an unknown key "partiton" (did you mean "partition"?)'],
    [{ slurm: { time: "4h" } }, 'c.yml: slurm time must be a Slurm time limit like "60", "4:00:00" or "2-00:00:00"'],
    [{ slurm: { account: "a b" } }, "c.yml: slurm account must be a Slurm name"],
  ])("%j is refused: %s", (raw, message) => {
    expect(() => parseExecutorConfig(raw, "c.yml")).toThrow(new ConfigError(message));
  });
});
