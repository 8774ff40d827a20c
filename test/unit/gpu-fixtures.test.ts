/**
 * Every shared nvidia-smi recording whose command is `-q -x` or `-L`, with what it shows, written from reading the
 * files (grep for <gpu id>, <minor_number>, <uuid>, <product_name>, the GPU-level <fb_memory_usage>, <mig_device>).
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { parseNvidiaSmiXml } from "../../src/gpu/parse-xml.ts";
import { parseNvidiaSmiList } from "../../src/gpu/parse-list.ts";
import { fixture, fixtureDir } from "../harness.ts";

interface ExpectedGpu {
  index: number;
  uuid: string;
  name: string;
  busId: string;
  memoryTotalMiB: number;
  migMode: "enabled" | "disabled" | null;
  migDevices: number;
  processes: number;
}

const v100 = (index: number, uuid: string, bus: string): ExpectedGpu => ({
  index,
  uuid,
  name: "Tesla V100S-PCIE-32GB",
  busId: `0000:00:${bus}.0`,
  memoryTotalMiB: 32510,
  migMode: null,
  migDevices: 0,
  processes: 1,
});
const k80 = (index: number, uuid: string, bus: string, processes: number): ExpectedGpu => ({
  index,
  uuid,
  name: "Tesla K80",
  busId: `${bus}:00:00.0`,
  memoryTotalMiB: 11441,
  migMode: null,
  migDevices: 0,
  processes,
});
const one = (uuid: string, name: string, busId: string, memoryTotalMiB: number, processes = 0, index = 0): ExpectedGpu[] => [
  { index, uuid, name, busId, memoryTotalMiB, migMode: null, migDevices: 0, processes },
];

const xmlCases: Record<string, ExpectedGpu[]> = {
  "datakit_tesla-v100s-pcie-32gb_x8_drv460.73_q_x.xml": [
    v100(0, "GPU-76098dc1-d3bc-9a1b-7ea6-f7b48837829e", "0d"),
    v100(1, "GPU-bbf7a241-bf9a-eb90-b2fb-d213294faf48", "0e"),
    v100(2, "GPU-8f75e71c-23dd-a060-d997-4caf592954db", "0f"),
    v100(3, "GPU-3181eb56-505c-8214-ba05-c132f68f89b8", "10"),
    v100(4, "GPU-2aa87d54-d4ff-2900-812b-1a4b7e119583", "11"),
    v100(5, "GPU-39c3a168-9034-0b5a-223a-1042f30a9242", "12"),
    v100(6, "GPU-d2446f91-171e-1b54-515d-9d9b03484ddf", "13"),
    v100(7, "GPU-1d955959-c95b-4f40-2cac-100d3006ffe2", "14"),
  ],
  // minor_number runs 1,2,3,0 in document order: the GPU with minor 0 is the last <gpu>.
  "msftpai_tesla-k80_x4_azure_drv430_cuda-not-found_q_x.xml": [
    k80(0, "GPU-3341aba2-f01d-2c1f-7dd4-e389779faec2", "f8d6", 0),
    k80(1, "GPU-c3b26f7a-8dcb-619c-fa1b-8029265a4db0", "1580", 1),
    k80(2, "GPU-b01b80eb-0f18-1df0-cf88-0725bd90f1e1", "2df7", 1),
    k80(3, "GPU-30bc2701-3bc2-5f35-0ebd-9867a077e138", "4968", 0),
  ],
  "netdata-go.d_a100-sxm4-40gb_mig_q_x.xml": [
    {
      index: 0,
      uuid: "GPU-27b94a00-ed54-5c24-b1fd-1054085de32a",
      name: "NVIDIA A100-SXM4-40GB",
      busId: "0000:00:04.0",
      memoryTotalMiB: 40960,
      migMode: "enabled",
      migDevices: 2,
      processes: 0,
    },
  ],
  "netdata-go.d_rtx2080_windows_q_x.xml": one("GPU-fbd55ed4-1eec-4423-0a47-ad594b4333e3", "NVIDIA GeForce RTX 2080", "0000:0a:00.0", 8192, 26),
  "netdata-go.d_rtx4090_drv535_q_x.xml": one("GPU-71d1acc2-662d-2166-bf9f-65272d2fc437", "NVIDIA GeForce RTX 4090", "0000:84:00.0", 24564),
  "netdata-go.d_tesla-p100_q_x.xml": one("GPU-d3da8716-eaab-75db-efc1-60e88e1cd55e", "Tesla P100-PCIE-16GB", "0000:00:04.0", 16384),
  // attached_gpus says 4, but only one <gpu> is in the file; minor number 1.
  "telegraf_a100-sxm4-80gb_x4_mig_drv535_q_x.xml": [
    {
      index: 1,
      uuid: "GPU-513536b6-7d19-9063-b049-1e69664bb298",
      name: "NVIDIA A100-SXM4-80GB",
      busId: "0000:01:00.0",
      memoryTotalMiB: 81920,
      migMode: "enabled",
      migDevices: 4,
      processes: 0,
    },
  ],
  "telegraf_a10g_drv515_q_x.xml": one("GPU-9a9a6c50-2a47-2f51-a902-b82c3b127e94", "NVIDIA A10G", "0000:00:1e.0", 23028, 1),
  "telegraf_gtx1660ti_graphics-device_drv418_q_x.xml": one("GPU-304a277d-3545-63b8-3a36-dfde3c992989", "Graphics Device", "0000:43:00.0", 5912),
  "telegraf_rtx3080_drv595_v13_q_x.xml": one("GPU-19d6d965-2acc-f646-00f8-4c76979aabb4", "NVIDIA GeForce RTX 3080", "0000:0c:00.0", 10240),
  "telegraf_rtx4000-sff-ada_drv595.84_v13_q_x.xml": one(
    "GPU-37037c3f-65c8-ec4d-24a9-420204ad8026",
    "NVIDIA RTX 4000 SFF Ada Generation",
    "0000:06:00.0",
    20475,
    4,
  ),
  "telegraf_tesla-t4_drv515_q_x.xml": one("GPU-d37e67a5-91dd-3774-a5cb-99096249601a", "Tesla T4", "0000:00:1e.0", 15360, 2),
};

const zeros = (n: number) => `00000000-0000-0000-0000-00000000000${n}`.replace(/^0{8}/, `0000000${n}`);
const listCases: Record<string, { index: number; name: string; uuid: string; mig: Array<[string, string]> }[]> = {
  "nvgpuexp_h100-80gb-hbm3_mig_drv590_L.txt": [
    {
      index: 0,
      name: "NVIDIA H100 80GB HBM3",
      uuid: "GPU-00000000-0000-0000-0000-000000000000",
      mig: [
        ["3g.40gb", `MIG-${zeros(0)}`],
        ["2g.20gb", `MIG-${zeros(1)}`],
        ["1g.10gb", `MIG-${zeros(2)}`],
        ["1g.10gb", `MIG-${zeros(3)}`],
      ],
    },
  ],
  "nvgpuexp_h200_mig_drv590_L.txt": [
    {
      index: 0,
      name: "NVIDIA H200",
      uuid: "GPU-00000000-0000-0000-0000-000000000000",
      mig: [
        ["1c.3g.71gb", `MIG-${zeros(0)}`],
        ["2c.3g.71gb", `MIG-${zeros(1)}`],
        ["2g.35gb", `MIG-${zeros(2)}`],
        ["1g.18gb", `MIG-${zeros(3)}`],
        ["1g.18gb", `MIG-${zeros(4)}`],
      ],
    },
  ],
};

describe("every shared -q -x and -L recording has an expectation", () => {
  test("no recording is left out", () => {
    const files = readdirSync(fixtureDir);
    expect(files.filter((f) => f.endsWith("_q_x.xml")).sort()).toEqual(Object.keys(xmlCases).sort());
    expect(files.filter((f) => f.endsWith("_L.txt")).sort()).toEqual(Object.keys(listCases).sort());
  });
});

describe("parseNvidiaSmiXml", () => {
  test.each(Object.entries(xmlCases))("%s", (file, expected) => {
    const report = parseNvidiaSmiXml(readFileSync(fixture(file), "utf8"));
    expect(
      report.gpus.map((g) => ({
        index: g.index,
        uuid: g.uuid,
        name: g.name,
        busId: g.busId,
        memoryTotalMiB: g.memoryTotalMiB,
        migMode: g.migMode,
        migDevices: g.migDevices.length,
        processes: g.processes.length,
      })),
    ).toEqual(expected);
    for (const gpu of report.gpus) {
      expect(gpu.healthy).toBe(true);
      expect(gpu.error).toBeNull();
    }
  });

  test("processes keep pid, name and memory; N/A memory and empty names are handled", () => {
    const v100 = parseNvidiaSmiXml(readFileSync(fixture("datakit_tesla-v100s-pcie-32gb_x8_drv460.73_q_x.xml"), "utf8"));
    expect(v100.gpus[0]!.processes[0]).toEqual({ pid: 37305, name: expect.any(String), usedMemoryMiB: 31683 });
    const windows = parseNvidiaSmiXml(readFileSync(fixture("netdata-go.d_rtx2080_windows_q_x.xml"), "utf8"));
    expect(windows.gpus[0]!.processes.every((p) => p.usedMemoryMiB === null)).toBe(true);
    expect(windows.gpus[0]!.processes.some((p) => p.name === "")).toBe(true);
    const k80 = parseNvidiaSmiXml(readFileSync(fixture("msftpai_tesla-k80_x4_azure_drv430_cuda-not-found_q_x.xml"), "utf8"));
    expect(k80.cudaVersion).toBeNull();
    expect(k80.gpus.find((g) => g.index === 1)!.processes).toEqual([{ pid: 58813, name: "python", usedMemoryMiB: 576 }]);
  });
});

describe("utilization and memory in use", () => {
  test.each([
    ["datakit_tesla-v100s-pcie-32gb_x8_drv460.73_q_x.xml", 0, 97, 31689],
    ["netdata-go.d_rtx2080_windows_q_x.xml", 0, 2, 862],
    // MIG mode: the whole GPU has no utilization (N/A), so a sample of it never counts as idle.
    ["telegraf_a100-sxm4-80gb_x4_mig_drv535_q_x.xml", 1, null, 50],
  ] as const)("%s GPU %d", (file, index, utilization, used: number) => {
    const gpu = parseNvidiaSmiXml(readFileSync(fixture(file), "utf8")).gpus.find((g) => g.index === index)!;
    expect(gpu.utilization).toBe(utilization);
    expect(gpu.memoryUsedMiB).toBe(used);
  });

  test("every recording that reports <gpu_util> as a number parses to 0..100", () => {
    for (const file of Object.keys(xmlCases)) {
      for (const gpu of parseNvidiaSmiXml(readFileSync(fixture(file), "utf8")).gpus) {
        if (gpu.utilization !== null) expect(gpu.utilization).toBeWithin(0, 101);
      }
    }
  });
});

describe("parseNvidiaSmiList", () => {
  test.each(Object.entries(listCases))("%s", (file, expected) => {
    const report = parseNvidiaSmiList(readFileSync(fixture(file), "utf8"));
    expect(report.gpus).toEqual(
      expected.map((g) => ({ index: g.index, name: g.name, uuid: g.uuid, migDevices: g.mig.map(([profile, uuid]) => ({ uuid, profile })) })),
    );
    expect(report.otherLines).toEqual([]);
  });
});
