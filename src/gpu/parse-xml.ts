import { XMLParser } from "fast-xml-parser";
import type { Gpu, GpuProcess, MigDevice } from "./types.ts";
import { cleanValue, normalizeBusId, parseInteger, parseMiB, parsePercent } from "./values.ts";

export interface XmlReport {
  gpus: Gpu[];
  driverVersion: string | null;
  cudaVersion: string | null;
  attachedGpus: number | null;
}

export class XmlParseError extends Error {
  override name = "XmlParseError";
}

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  // Only the five XML entities are decoded; DOCTYPEs are cut before parsing, so no entity can be declared.
  processEntities: true,
  htmlEntities: false,
  isArray: (name) => name === "gpu" || name === "mig_device" || name === "process_info",
  // Most of a GPU's report (clocks, ECC counters, power, encoder stats, ...) is never read here. Leaving those
  // subtrees unparsed keeps an 8-GPU document well under the 5 ms budget.
  stopNodes: [
    "accounted_processes",
    "supported_clocks",
    "ecc_errors",
    "retired_pages",
    "clocks",
    "clocks_throttle_reasons",
    "clocks_event_reasons",
    "clocks_event_reasons_counters",
    "power_readings",
    "gpu_power_readings",
    "module_power_readings",
    "gpu_memory_power_readings",
    "max_clocks",
    "max_customer_boost_clocks",
    "applications_clocks",
    "default_applications_clocks",
    "deferred_clocks",
    "clock_policy",
    "voltage",
    "temperature",
    "supported_gpu_target_temp",
    "encoder_stats",
    "fbc_stats",
    "inforom_version",
    "ibmnpu",
    "capabilities",
    "row_remapper_histogram",
    "power_profiles",
    "fabric",
    "bar1_memory_usage",
    "cc_protected_memory_usage",
    "device_attributes",
    "ecc_error_count",
    "pci_gpu_link_info",
    "pci_bridge_chip",
  ].map((name) => `*.${name}`),
});

/**
 * Cuts the `nvidia_smi_log` document out of nvidia-smi's output: error lines may come before it, and its DOCTYPE
 * names an external DTD that must never be loaded (it is dropped along with any internal subset).
 */
export function extractXmlDocument(output: string): string | null {
  const start = output.indexOf("<nvidia_smi_log");
  const end = output.lastIndexOf("</nvidia_smi_log>");
  if (start === -1 || end === -1 || end < start) return null;
  return output.slice(start, end + "</nvidia_smi_log>".length);
}

/** Parses `nvidia-smi -q -x` (schema v8 to v13). Throws XmlParseError when the text is not that document. */
export function parseNvidiaSmiXml(output: string): XmlReport {
  const document = extractXmlDocument(output);
  if (document === null) throw new XmlParseError("no <nvidia_smi_log> document in the output");
  let tree: Node;
  try {
    tree = parser.parse(document) as Node;
  } catch (err) {
    throw new XmlParseError(`malformed XML: ${(err as Error).message.split("\n")[0]}`);
  }
  const log = tree.nvidia_smi_log;
  if (log === undefined || typeof log !== "object" || log === null) throw new XmlParseError("empty <nvidia_smi_log>");
  const root = log as Node;
  const gpuNodes = (Array.isArray(root.gpu) ? root.gpu : []) as Node[];
  const gpus = gpuNodes.map(parseGpu);
  assignMissingIndexes(gpus);
  return {
    gpus: gpus.sort(byIndex),
    driverVersion: cleanValue(root.driver_version),
    cudaVersion: cleanValue(root.cuda_version),
    attachedGpus: parseInteger(root.attached_gpus),
  };
}

function child(node: unknown, key: string): Node | undefined {
  if (node === null || typeof node !== "object") return undefined;
  const value = (node as Node)[key];
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Node) : undefined;
}

function parseGpu(node: Node): Gpu {
  const pci = child(node, "pci");
  const busId = normalizeBusId(node["@id"]) ?? normalizeBusId(pci?.pci_bus_id);
  const uuid = cleanValue(node.uuid);
  const migModeText = cleanValue(child(node, "mig_mode")?.current_mig)?.toLowerCase();
  const migMode = migModeText === "enabled" ? "enabled" : migModeText === "disabled" ? "disabled" : null;
  const problems: string[] = [];
  if (uuid === null) problems.push(`its UUID is unreadable (${String(node.uuid ?? "missing").trim() || "empty"})`);
  // nvidia-smi -q -x names it remapped_row_failure ("Remapping Failure Occurred" is the text output's label).
  if (cleanValue(child(node, "remapped_rows")?.remapped_row_failure)?.toLowerCase() === "yes") {
    problems.push("row remapping failed (the GPU needs service)");
  }
  return {
    index: parseInteger(node.minor_number),
    uuid,
    name: cleanValue(node.product_name),
    busId,
    memoryTotalMiB: parseMiB(child(node, "fb_memory_usage")?.total),
    memoryUsedMiB: parseMiB(child(node, "fb_memory_usage")?.used),
    utilization: parsePercent(child(node, "utilization")?.gpu_util),
    migMode,
    migDevices: parseMigDevices(node),
    processes: parseProcesses(node),
    healthy: problems.length === 0,
    error: problems.length ? problems.join("; ") : null,
  };
}

function parseMigDevices(node: Node): MigDevice[] {
  const list = child(node, "mig_devices")?.mig_device;
  if (!Array.isArray(list)) return [];
  return (list as Node[])
    .map((d) => ({ order: parseInteger(d.index) ?? 0 }))
    .sort((a, b) => a.order - b.order)
    .map(() => ({ uuid: null, profile: null }));
}

function parseProcesses(node: Node): GpuProcess[] {
  const list = child(node, "processes")?.process_info;
  if (!Array.isArray(list)) return [];
  const processes: GpuProcess[] = [];
  for (const p of list as Node[]) {
    const pid = parseInteger(p.pid);
    if (pid === null) continue;
    processes.push({ pid, name: cleanValue(p.process_name) ?? "", usedMemoryMiB: parseMiB(p.used_memory) });
  }
  return processes;
}

/**
 * Windows (WDDM) and some virtual GPUs report no minor number. nvidia-smi numbers GPUs in PCI bus order, so a GPU
 * without one takes its rank by bus id among such GPUs, after the numbers already taken.
 */
function assignMissingIndexes(gpus: Gpu[]): void {
  const taken = new Set(gpus.map((g) => g.index).filter((i): i is number => i !== null));
  const missing = gpus.filter((g) => g.index === null).sort((a, b) => (a.busId ?? "").localeCompare(b.busId ?? ""));
  let next = 0;
  for (const gpu of missing) {
    while (taken.has(next)) next++;
    gpu.index = next;
    taken.add(next);
  }
}

export function byIndex(a: Gpu, b: Gpu): number {
  return (a.index ?? Number.MAX_SAFE_INTEGER) - (b.index ?? Number.MAX_SAFE_INTEGER) || (a.busId ?? "").localeCompare(b.busId ?? "");
}
