/** Discovery through a real process: a fake nvidia-smi replays recordings and the failures real drivers print. */
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { createNvidiaSmiRunner, discoverGpus } from "../../src/gpu/discover.ts";
import { parseNvidiaSmiXml } from "../../src/gpu/parse-xml.ts";
import { makeNvidiaSmiScenario, removeDir, fixture, type Recording } from "../harness.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

async function discover(recordings: Record<string, Recording>, timeoutMs = 5000) {
  const scenario = makeNvidiaSmiScenario(recordings);
  dirs.push(scenario.dir);
  return discoverGpus(createNvidiaSmiRunner(scenario.executable, timeoutMs), timeoutMs);
}

const t4 = fixture("telegraf_tesla-t4_drv515_q_x.xml");
const t4Text = readFileSync(t4, "utf8");
const a100 = fixture("telegraf_a100-sxm4-80gb_x4_mig_drv535_q_x.xml");
const driverNotLoaded =
  "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n";

describe("node-level failures give one reason and no GPUs", () => {
  test.each([
    ["driver not loaded (exit 9, text on stdout)", { out: driverNotLoaded, rc: 9 }, /NVIDIA driver is not loaded \(nvidia-smi exit 9\)/],
    ["NVML/driver mismatch (exit 18)", { out: "Failed to initialize NVML: Driver/library version mismatch\n", rc: 18 }, /do not match \(nvidia-smi exit 18\)/],
    ["NVML unknown error (inside a container)", { out: "Failed to initialize NVML: Unknown Error\n", rc: 255 }, /NVML could not start \(Unknown Error\)/],
  ] as const)("%s", async (_, recording, message) => {
    const inventory = await discover({ q_x: recording });
    expect(inventory.gpus).toEqual([]);
    expect(inventory.error).toMatch(message);
    expect(inventory.error).not.toContain("\n");
  });

  test("a hang is killed at the deadline and said so", async () => {
    // Left alone it would print a good T4 after 30 s; the error can only come from the 500 ms deadline.
    const inventory = await discover({ q_x: { out: { file: t4 }, sleep: 30 } }, 500);
    expect(inventory.error).toMatch(/did not answer within 1s and was killed/);
    expect(inventory.gpus).toEqual([]);
  });

  test("garbage from both calls is an error naming both", async () => {
    const inventory = await discover({ q_x: { out: "Segmentation fault\n", rc: 139 }, L: { out: "Segmentation fault\n", rc: 139 } });
    expect(inventory.error).toBe("GPU discovery failed (nvidia-smi -q -x: exit 139: Segmentation fault; nvidia-smi -L: exit 139: Segmentation fault)");
  });
});

describe("nodes with no GPUs are not errors", () => {
  test("No devices were found", async () => {
    const inventory = await discover({ q_x: { out: "No devices were found\n", rc: 6 } });
    expect(inventory).toMatchObject({ gpus: [], error: null, note: "nvidia-smi found no NVIDIA GPUs on this node" });
  });

  test("no nvidia-smi installed", async () => {
    const inventory = await discoverGpus(createNvidiaSmiRunner("/nonexistent/nvidia-smi"));
    expect(inventory).toMatchObject({ gpus: [], error: null });
    expect(inventory.note).toMatch(/not installed/);
    const onPath = await discoverGpus(createNvidiaSmiRunner("nvidia-smi-that-does-not-exist"));
    expect(onPath.note).toMatch(/not installed/);
  });
});

describe("one failing GPU is marked unhealthy; the others are still reported", () => {
  test.each([
    ["GPU0000:07:00.0", "Unknown Error"],
    ["GPU 0000:07:00.0", "Unknown Error"],
    ["GPU 00000000:07:00.0", "GPU is lost.  Reboot the system to recover this GPU"],
  ])("Unable to determine the device handle for %s: %s", async (id, reason) => {
    const line = `Unable to determine the device handle for ${id}: ${reason}\n`;
    const inventory = await discover({ q_x: { out: line + t4Text, rc: 15 } });
    expect(inventory.error).toBeNull();
    expect(inventory.gpus).toHaveLength(2);
    const [good, bad] = inventory.gpus;
    expect(good).toMatchObject({ index: 0, uuid: "GPU-d37e67a5-91dd-3774-a5cb-99096249601a", healthy: true });
    expect(bad).toMatchObject({ index: null, uuid: null, busId: "0000:07:00.0", healthy: false });
    expect(bad!.error).toContain(reason.split(".")[0]!);
  });

  test("when the XML call fails outright, -L names the good GPUs and the bad one", async () => {
    const inventory = await discover({
      q_x: { err: "Unable to determine the device handle for GPU0000:3b:00.0: Unknown Error\n", rc: 15 },
      L: {
        out: "GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-aaaaaaaa-0000-0000-0000-000000000000)\nUnable to determine the device handle for gpu 0000:3b:00.0: Unknown Error\nGPU 2: NVIDIA A100-SXM4-80GB (UUID: GPU-cccccccc-0000-0000-0000-000000000000)\n",
        rc: 15,
      },
    });
    expect(inventory.source).toBe("list");
    expect(inventory.gpus.map((g) => [g.index, g.uuid, g.healthy])).toEqual([
      [0, "GPU-aaaaaaaa-0000-0000-0000-000000000000", true],
      [2, "GPU-cccccccc-0000-0000-0000-000000000000", true],
      [null, null, false],
    ]);
  });
});

describe("the XML call and its fallback", () => {
  test("MIG mode runs -L for MIG UUIDs and profiles", async () => {
    const inventory = await discover({
      q_x: { out: { file: a100 } },
      L: { out: { file: fixture("nvgpuexp_h100-80gb-hbm3_mig_drv590_L.txt") } },
    });
    // The -L recording is of another GPU, so nothing is matched and the XML's four unnamed MIG devices stay.
    expect(inventory.gpus[0]!.migDevices).toEqual(Array(4).fill({ uuid: null, profile: null }));
    const matched = await discover({
      q_x: { out: { file: a100 } },
      L: {
        out: "GPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-513536b6-7d19-9063-b049-1e69664bb298)\n  MIG 3g.40gb     Device  0: (UUID: MIG-11111111-0000-0000-0000-000000000000)\n  MIG 1g.10gb     Device  1: (UUID: MIG-22222222-0000-0000-0000-000000000000)\n",
      },
    });
    expect(matched.gpus[0]!.migDevices).toEqual([
      { uuid: "MIG-11111111-0000-0000-0000-000000000000", profile: "3g.40gb" },
      { uuid: "MIG-22222222-0000-0000-0000-000000000000", profile: "1g.10gb" },
    ]);
    expect(matched.note).toBe("nvidia-smi counts 4 attached GPUs but describes 1");
  });

  test("no -L call when no GPU is in MIG mode (one process per refresh)", async () => {
    const inventory = await discover({ q_x: { out: { file: t4 } } });
    expect(inventory.source).toBe("xml");
    expect(inventory.gpus).toHaveLength(1);
  });

  test("truncated XML falls back to -L", async () => {
    const inventory = await discover({
      q_x: { out: t4Text.slice(0, 2000) },
      L: { out: "GPU 0: Tesla T4 (UUID: GPU-d37e67a5-91dd-3774-a5cb-99096249601a)" },
    });
    expect(inventory.source).toBe("list");
    expect(inventory.gpus.map((g) => g.uuid)).toEqual(["GPU-d37e67a5-91dd-3774-a5cb-99096249601a"]);
    expect(inventory.note).toMatch(/cannot parse/);
  });
});

describe("text variations parse the same", () => {
  const expected = parseNvidiaSmiXml(t4Text).gpus;
  test.each([
    ["CRLF line ends", t4Text.replace(/\n/g, "\r\n")],
    ["no trailing newline", t4Text.trimEnd()],
    ["no DOCTYPE", t4Text.replace(/<!DOCTYPE[^>]*>/, "")],
    ["no XML declaration", t4Text.replace(/<\?xml[^>]*\?>/, "")],
  ])("%s", (_, text) => {
    expect(parseNvidiaSmiXml(text).gpus).toEqual(expected);
  });

  test("an external DTD or declared entity is never loaded or expanded", () => {
    const hostile = t4Text
      .replace(/<!DOCTYPE[^>]*>/, '<!DOCTYPE nvidia_smi_log SYSTEM "file:///etc/shadow" [<!ENTITY x "EXPANDED">]>')
      .replace("<product_name>Tesla T4</product_name>", "<product_name>Tesla &x; &amp; T4</product_name>");
    expect(() => parseNvidiaSmiXml(hostile)).not.toThrow();
    expect(parseNvidiaSmiXml(hostile).gpus[0]!.name).not.toContain("EXPANDED");
  });

  test("sentinels become nulls", () => {
    const text = t4Text
      .replace(/<total>15360 MiB<\/total>/, "<total>[N/A]</total>")
      .replace(/<minor_number>0<\/minor_number>/, "<minor_number>N/A</minor_number>")
      .replace(/<product_name>Tesla T4<\/product_name>/, "<product_name>Requested functionality has been deprecated</product_name>");
    const [gpu] = parseNvidiaSmiXml(text).gpus;
    expect(gpu).toMatchObject({ memoryTotalMiB: null, name: null, index: 0, healthy: true });
  });

  test("an unreadable UUID makes the GPU unhealthy", () => {
    const text = t4Text.replace(/<uuid>[^<]*<\/uuid>/, "<uuid>Unknown Error</uuid>");
    const [gpu] = parseNvidiaSmiXml(text).gpus;
    expect(gpu).toMatchObject({ uuid: null, healthy: false });
    expect(gpu!.error).toMatch(/UUID is unreadable/);
  });
});
