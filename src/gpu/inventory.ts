import { firstLine, type DeviceHandleError } from "./diagnose.ts";
import type { ListReport } from "./parse-list.ts";
import { byIndex, type XmlReport } from "./parse-xml.ts";
import type { Gpu, Inventory } from "./types.ts";

export interface Evidence {
  xml: XmlReport | null;
  /** Why the XML call gave nothing usable. */
  xmlProblem: string | null;
  list: ListReport | null;
  listProblem: string | null;
  handleErrors: DeviceHandleError[];
}

export function emptyInventory(fields: Partial<Inventory>): Inventory {
  return { gpus: [], driverVersion: null, cudaVersion: null, source: "none", error: null, note: null, ...fields };
}

/** Combines what the calls returned into one inventory. Pure: the runner decides which calls to make. */
export function mergeInventory(evidence: Evidence): Inventory {
  const { xml, list } = evidence;
  let gpus: Gpu[];
  let source: Inventory["source"];
  let note: string | null = null;
  if (xml) {
    source = "xml";
    gpus = xml.gpus.map((g) => ({ ...g }));
    for (const gpu of gpus) {
      if (gpu.migMode !== "enabled") continue;
      const listed = list?.gpus.find((l) => l.uuid === gpu.uuid);
      if (listed && listed.migDevices.length > 0) gpu.migDevices = listed.migDevices;
    }
    if (xml.attachedGpus !== null && xml.attachedGpus > xml.gpus.length + evidence.handleErrors.length) {
      note = `nvidia-smi counts ${xml.attachedGpus} attached GPUs but describes ${xml.gpus.length}`;
    }
  } else if (list && list.gpus.length > 0) {
    source = "list";
    gpus = list.gpus.map((l) => ({
      index: l.index,
      uuid: l.uuid,
      name: l.name,
      busId: null,
      memoryTotalMiB: null,
      memoryUsedMiB: null,
      utilization: null,
      migMode: l.migDevices.length > 0 ? "enabled" : null,
      migDevices: l.migDevices,
      processes: [],
      healthy: true,
      error: null,
    }));
    note = `nvidia-smi -q -x gave nothing usable (${evidence.xmlProblem ?? "unknown reason"}); GPUs from nvidia-smi -L`;
  } else if (evidence.handleErrors.length > 0) {
    source = "list";
    gpus = [];
  } else {
    const reasons = [`nvidia-smi -q -x: ${evidence.xmlProblem ?? "no answer"}`];
    if (evidence.listProblem) reasons.push(`nvidia-smi -L: ${evidence.listProblem}`);
    return emptyInventory({ error: `GPU discovery failed (${reasons.join("; ")})` });
  }
  for (const failed of evidence.handleErrors) {
    const message = `the driver cannot reach this GPU: ${failed.reason}`;
    const known = gpus.find((g) => g.busId === failed.busId);
    if (known) {
      known.healthy = false;
      known.error = message;
    } else {
      gpus.push({
        index: null,
        uuid: null,
        name: null,
        busId: failed.busId,
        memoryTotalMiB: null,
        memoryUsedMiB: null,
        utilization: null,
        migMode: null,
        migDevices: [],
        processes: [],
        healthy: false,
        error: message,
      });
    }
  }
  return {
    gpus: gpus.sort(byIndex),
    driverVersion: xml?.driverVersion ?? null,
    cudaVersion: xml?.cudaVersion ?? null,
    source,
    error: null,
    note,
  };
}

export function describeFailure(exitCode: number, stdout: string, stderr: string): string {
  const line = firstLine(stderr) || firstLine(stdout);
  return `exit ${exitCode}${line ? `: ${line}` : ""}`;
}
