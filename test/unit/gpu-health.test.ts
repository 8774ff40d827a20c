/**
 * A GPU whose row remapping failed needs service and is never handed out. No recording has that case, so a real
 * recording (an RTX 4090's, whose <remapped_rows> reports no failure) is edited the way the driver would report one.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseNvidiaSmiXml } from "../../src/gpu/parse-xml.ts";
import { usableGpus } from "../../src/gpu/usable.ts";
import type { Inventory } from "../../src/gpu/types.ts";

const recording = readFileSync(join(import.meta.dir, "../fixtures/nvidia-smi/netdata-go.d_rtx4090_drv535_q_x.xml"), "utf8");
const inventoryOf = (xml: string): Inventory => ({ gpus: parseNvidiaSmiXml(xml).gpus, driverVersion: null, cudaVersion: null, source: "xml", error: null, note: null });

test("the recording as it is: row remapping did not fail, and the GPU is handed out", () => {
  expect(recording).toContain("<remapped_row_failure>No</remapped_row_failure>");
  const [gpu] = parseNvidiaSmiXml(recording).gpus;
  expect(gpu).toMatchObject({ healthy: true, error: null });
  expect(usableGpus(inventoryOf(recording), []).usable).toHaveLength(1);
});

test("a GPU whose row remapping failed is unhealthy, says why, and is never handed out", () => {
  const failed = recording.replace("<remapped_row_failure>No</remapped_row_failure>", "<remapped_row_failure>Yes</remapped_row_failure>");
  const [gpu] = parseNvidiaSmiXml(failed).gpus;
  expect(gpu).toMatchObject({ healthy: false, error: "row remapping failed (the GPU needs service)" });
  const { usable, unavailable } = usableGpus(inventoryOf(failed), []);
  expect(usable).toEqual([]);
  expect(unavailable[gpu!.uuid!]).toContain("row remapping failed");
});

test("rows only waiting for a reset (pending) are no failure", () => {
  const pending = recording.replace("<remapped_row_pending>No</remapped_row_pending>", "<remapped_row_pending>Yes</remapped_row_pending>");
  expect(parseNvidiaSmiXml(pending).gpus[0]!.healthy).toBe(true);
});
