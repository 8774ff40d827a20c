import { normalizeBusId } from "./values.ts";

export interface DeviceHandleError {
  busId: string;
  reason: string;
}

const deviceHandle = /Unable to (?:determine|detect) the device handle for GPU\s*([0-9a-fA-F]+:[0-9a-fA-F]+:[0-9a-fA-F]+\.[0-7]):\s*(.+?)\s*$/gm;

/** `Unable to determine the device handle for GPU0000:07:00.0: Unknown Error` (with or without the space). */
export function findDeviceHandleErrors(output: string): DeviceHandleError[] {
  const found: DeviceHandleError[] = [];
  for (const match of output.replace(/\r/g, "").matchAll(deviceHandle)) {
    const busId = normalizeBusId(match[1]);
    if (busId && !found.some((f) => f.busId === busId)) found.push({ busId, reason: match[2]!.replace(/\.$/, "") });
  }
  return found;
}

export type NodeVerdict = { kind: "no-gpus"; note: string } | { kind: "error"; message: string };

function firstLine(output: string): string {
  return (
    output
      .replace(/\r/g, "")
      .split("\n")
      .map((l) => l.trim())
      .find((l) => l !== "") ?? ""
  );
}

/**
 * What a failed nvidia-smi run says about the whole node, when it says something known. Error text can arrive on
 * stdout, so both streams are read. Null when the failure is not a node-level one.
 */
export function classifyNodeFailure(exitCode: number, output: string): NodeVerdict | null {
  const text = output.replace(/\r/g, "");
  if (/No devices were found/i.test(text)) return { kind: "no-gpus", note: "nvidia-smi found no NVIDIA GPUs on this node" };
  if (exitCode === 9 || /couldn't communicate with the NVIDIA driver/i.test(text)) {
    return { kind: "error", message: `the NVIDIA driver is not loaded (nvidia-smi exit ${exitCode}): load it or reboot the node` };
  }
  if (exitCode === 18 || /Driver\/library version mismatch/i.test(text)) {
    return {
      kind: "error",
      message: `the NVIDIA driver and its NVML library do not match (nvidia-smi exit ${exitCode}): reload the nvidia kernel modules or reboot the node`,
    };
  }
  const nvml = /Failed to initialize NVML:\s*(.*)/i.exec(text);
  if (nvml) return { kind: "error", message: `NVML could not start (${nvml[1]!.trim() || "no reason given"}), nvidia-smi exit ${exitCode}` };
  if (exitCode !== 0 && findDeviceHandleErrors(text).length === 0 && !text.includes("<nvidia_smi_log") && !/^GPU \d+:/m.test(text)) {
    const line = firstLine(text);
    return line ? null : { kind: "error", message: `nvidia-smi failed with exit ${exitCode} and printed nothing` };
  }
  return null;
}

export { firstLine };
