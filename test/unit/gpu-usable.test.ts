/**
 * Which GPUs may be handed out: a process on a GPU belongs to a session when its cgroup names the session's container;
 * any other process makes the GPU busy. This test's own process stands for a session's (its real /proc cgroup file).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { pidsInContainers, usableGpus } from "../../src/gpu/usable.ts";
import type { Gpu, GpuProcess, Inventory } from "../../src/gpu/types.ts";

const me = process.pid;
/** A "container id" this process's cgroup file holds, whatever the machine: the file's whole text. */
const myContainer = readFileSync(`/proc/${me}/cgroup`, "utf8");
const otherContainer = "beaker-no-such-container-0123456789abcdef";
const noSuchPid = 999_999_999;

const gpu = (uuid: string | null, processes: GpuProcess[] = [], over: Partial<Gpu> = {}): Gpu => ({
  index: 0,
  uuid,
  name: "H100",
  busId: uuid === null ? null : `0000:0${uuid.length}:00.0`,
  memoryTotalMiB: 81559,
  memoryUsedMiB: 0,
  utilization: 0,
  migMode: null,
  migDevices: [],
  processes,
  healthy: true,
  error: null,
  ...over,
});
const inventory = (gpus: Gpu[]): Inventory => ({ gpus, driverVersion: "550", cudaVersion: "12.4", source: "xml", error: null, note: null });
const proc = (pid: number, name = "python"): GpuProcess => ({ pid, name, usedMemoryMiB: 100 });

describe("pidsInContainers", () => {
  test("a pid whose cgroup names one of the containers is owned", () => {
    expect([...pidsInContainers([me], [otherContainer, myContainer])]).toEqual([me]);
  });
  test("a pid in none of them, or gone, is not", () => {
    expect([...pidsInContainers([me, noSuchPid], [otherContainer])]).toEqual([]);
    expect([...pidsInContainers([noSuchPid], [myContainer])]).toEqual([]);
  });
});

describe("usableGpus", () => {
  test("a GPU used only by a session's process is usable, and nothing on it is foreign", () => {
    const result = usableGpus(inventory([gpu("GPU-a", [proc(me)])]), [myContainer]);
    expect(result.usable.map((g) => g.uuid)).toEqual(["GPU-a"]);
    expect(result.unavailable).toEqual({});
    expect(result.foreign).toEqual({});
  });
  test("a process no session owns makes the GPU busy and is named as foreign", () => {
    const stranger = proc(noSuchPid, "train.py");
    const result = usableGpus(inventory([gpu("GPU-a", [proc(me), stranger]), gpu("GPU-b")]), [myContainer]);
    expect(result.usable.map((g) => g.uuid)).toEqual(["GPU-b"]);
    expect(result.unavailable).toEqual({ "GPU-a": `busy with processes no session owns: train.py (pid ${noSuchPid})` });
    expect(result.foreign).toEqual({ "GPU-a": [stranger] });
  });
  test("without containers every process is foreign", () => {
    const result = usableGpus(inventory([gpu("GPU-a", [proc(me)])]), []);
    expect(result.usable).toEqual([]);
    expect(result.foreign).toEqual({ "GPU-a": [proc(me)] });
  });
  test("a GPU without a UUID is never usable: keyed by its bus id, or '?' without one, and its processes are listed under no key", () => {
    const noUuid = gpu(null, [proc(noSuchPid)]);
    const withBus = gpu(null, [], { busId: "0000:81:00.0" });
    const result = usableGpus(inventory([noUuid, withBus]), []);
    expect(result.usable).toEqual([]);
    expect(result.unavailable).toEqual({ "?": "no UUID", "0000:81:00.0": "no UUID" });
    expect(result.foreign).toEqual({});
  });
  test("an unhealthy GPU says why", () => {
    const result = usableGpus(inventory([gpu("GPU-a", [], { healthy: false, error: "Xid 79" })]), []);
    expect(result).toEqual({ usable: [], unavailable: { "GPU-a": "Xid 79" }, foreign: {} });
  });
});
