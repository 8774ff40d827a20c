/** `dist/beaker node gpus` against a fake nvidia-smi on PATH that replays real recordings and real failures. */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { makeNvidiaSmiScenario, removeDir, runBeaker, fixture, tempDir, type Recording } from "../harness.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

/** Runs `beaker node gpus` with the scenario's nvidia-smi first on PATH and no executor. */
async function nodeGpus(recordings: Record<string, Recording>, args: string[] = ["--json"], env: Record<string, string> = {}) {
  const scenario = makeNvidiaSmiScenario(recordings);
  dirs.push(scenario.dir);
  return runBeaker(["node", "gpus", ...args], {
    env: { PATH: `${dirname(scenario.executable)}:/usr/bin:/bin`, BEAKER_EXECUTOR_SOCKET: "/nonexistent/executor.sock", ...env },
  });
}

describe("beaker node gpus --json", () => {
  test("an 8-GPU node: the architecture page's fields, in index order", async () => {
    const result = await nodeGpus({ q_x: { out: { file: fixture("datakit_tesla-v100s-pcie-32gb_x8_drv460.73_q_x.xml") } } });
    expect(result.exitCode).toBe(0);
    const gpus = JSON.parse(result.stdout);
    expect(gpus).toHaveLength(8);
    expect(Object.keys(gpus[0]).sort()).toEqual(
      ["index", "uuid", "name", "busId", "memoryTotalMiB", "memoryUsedMiB", "utilization", "migMode", "migDevices", "processes", "claimedBy", "healthy", "error"].sort(),
    );
    // The recording's own <utilization> and <fb_memory_usage>: GPU 0 was 97 % busy with 31689 MiB in use.
    expect(gpus[0]).toMatchObject({ utilization: 97, memoryUsedMiB: 31689 });
    expect(gpus.map((g: { index: number }) => g.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(gpus[7]).toMatchObject({ uuid: "GPU-1d955959-c95b-4f40-2cac-100d3006ffe2", claimedBy: null, healthy: true, error: null });
  });

  test("minor numbers, not document order, give the index", async () => {
    const result = await nodeGpus({ q_x: { out: { file: fixture("msftpai_tesla-k80_x4_azure_drv430_cuda-not-found_q_x.xml") } } });
    const gpus = JSON.parse(result.stdout);
    expect(gpus.map((g: { index: number; busId: string }) => [g.index, g.busId])).toEqual([
      [0, "f8d6:00:00.0"],
      [1, "1580:00:00.0"],
      [2, "2df7:00:00.0"],
      [3, "4968:00:00.0"],
    ]);
  });

  test("MIG devices come from -L", async () => {
    const result = await nodeGpus({
      q_x: { out: { file: fixture("netdata-go.d_a100-sxm4-40gb_mig_q_x.xml") } },
      L: {
        out: "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-27b94a00-ed54-5c24-b1fd-1054085de32a)\n  MIG 3g.20gb     Device  0: (UUID: MIG-aaaaaaaa-1111-2222-3333-444444444444)\n  MIG 3g.20gb     Device  1: (UUID: MIG-bbbbbbbb-1111-2222-3333-444444444444)\n",
      },
    });
    expect(JSON.parse(result.stdout)[0]).toMatchObject({
      migMode: "enabled",
      migDevices: [
        { uuid: "MIG-aaaaaaaa-1111-2222-3333-444444444444", profile: "3g.20gb" },
        { uuid: "MIG-bbbbbbbb-1111-2222-3333-444444444444", profile: "3g.20gb" },
      ],
    });
  });

  test("a GPU the driver cannot reach is listed unhealthy beside the good one", async () => {
    const result = await nodeGpus({
      q_x: {
        out: `Unable to determine the device handle for GPU0000:07:00.0: Unknown Error\n${await Bun.file(fixture("telegraf_tesla-t4_drv515_q_x.xml")).text()}`,
        rc: 15,
      },
    });
    expect(result.exitCode).toBe(0);
    const gpus = JSON.parse(result.stdout);
    expect(gpus.map((g: { busId: string; healthy: boolean }) => [g.busId, g.healthy])).toEqual([
      ["0000:00:1e.0", true],
      ["0000:07:00.0", false],
    ]);
    expect(gpus[1].error).toBe("the driver cannot reach this GPU: Unknown Error");
  });
});

describe("node-level failures: one line and exit 1; no GPUs: exit 0", () => {
  test.each([
    ["driver not loaded", { q_x: { out: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", rc: 9 } }, /^beaker: the NVIDIA driver is not loaded/],
    ["NVML mismatch", { q_x: { out: "Failed to initialize NVML: Driver/library version mismatch\n", rc: 18 } }, /^beaker: the NVIDIA driver and its NVML library do not match/],
    ["NVML unknown error", { q_x: { out: "Failed to initialize NVML: Unknown Error\n", rc: 255 } }, /^beaker: NVML could not start \(Unknown Error\)/],
  ] as const)("%s", async (_, recordings, message) => {
    const result = await nodeGpus(recordings);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
  });

  test("a hung nvidia-smi is killed after the timeout", async () => {
    // Left alone it would answer "x" after 20 s; this answer can only come from beaker killing it at its 1 s timeout.
    const result = await nodeGpus({ q_x: { out: "x", sleep: 20 } }, ["--json"], { BEAKER_NVIDIA_SMI_TIMEOUT: "1" });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe("beaker: nvidia-smi did not answer within 1s and was killed; a GPU or the driver may be hung\n");
  });

  test("No devices were found", async () => {
    const result = await nodeGpus({ q_x: { out: "No devices were found\n", rc: 6 } });
    expect(result).toEqual({ exitCode: 0, stdout: "[]\n", stderr: "nvidia-smi found no NVIDIA GPUs on this node\n" });
  });

  test("no nvidia-smi installed on a node (its executor's socket is there, the executor stopped)", async () => {
    const dir = tempDir();
    dirs.push(dir);
    writeFileSync(join(dir, "executor.sock"), "");
    const result = await runBeaker(["node", "gpus"], { env: { PATH: "/nonexistent", BEAKER_EXECUTOR_SOCKET: join(dir, "executor.sock") } });
    expect(result).toEqual({ exitCode: 0, stdout: "", stderr: "nvidia-smi is not installed, so this node has no usable NVIDIA GPUs\n" });
  });

  test("no nvidia-smi and no executor: not a node, said in one line", async () => {
    const result = await runBeaker(["node", "gpus"], { env: { PATH: "/nonexistent", BEAKER_EXECUTOR_SOCKET: "/nonexistent/executor.sock" } });
    expect(result).toEqual({
      exitCode: 1,
      stdout: "",
      stderr: "beaker: 'beaker node gpus' runs on a Linux GPU node and this machine has no executor; from here, 'beaker cluster nodes CLUSTER' shows the nodes and their GPUs\n",
    });
  });
});

test("the table shows INDEX, NAME, UTIL, MEMORY USED, UUID, MIG and STATE", async () => {
  const result = await nodeGpus({ q_x: { out: { file: fixture("telegraf_tesla-t4_drv515_q_x.xml") } } }, []);
  const [header, row] = result.stdout.trim().split("\n");
  expect(header!.split(/\s{2,}/)).toEqual(["INDEX", "NAME", "UTIL", "MEMORY USED", "UUID", "MIG", "STATE"]);
  expect(row).toMatch(/^0\s+Tesla T4\s+0%\s+1.0 GiB \/ 15 GiB\s+GPU-d37e67a5-91dd-3774-a5cb-99096249601a\s+-\s+unavailable: busy with processes no session owns: \/usr\/lib\/xorg\/Xorg \(pid 675\), python \(pid 5762\)$/);
});

test("beaker node info: the node at a glance, without an executor", async () => {
  const scenario = makeNvidiaSmiScenario({ q_x: { out: { file: fixture("datakit_tesla-v100s-pcie-32gb_x8_drv460.73_q_x.xml") } } });
  dirs.push(scenario.dir);
  const env = { PATH: `${dirname(scenario.executable)}:/usr/bin:/bin`, BEAKER_EXECUTOR_SOCKET: "/nonexistent/executor.sock" };
  const json = await runBeaker(["node", "info", "--json"], { env });
  expect(json.exitCode).toBe(0);
  const info = JSON.parse(json.stdout);
  // Every GPU of this recording runs a process no session owns, so none is free.
  expect(info).toMatchObject({ executor: null, server: null, gpus: { total: 8, free: 0, types: ["Tesla V100S-PCIE-32GB"] }, driverVersion: "460.73.01" });
  const text = await runBeaker(["node", "info"], { env });
  expect(text.stdout).toMatch(/^executor: {2}not running$/m);
  expect(text.stdout).toMatch(/^gpus: {6}0 free of 8 \(Tesla V100S-PCIE-32GB\), driver 460\.73\.01$/m);
});
