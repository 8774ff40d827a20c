import type { MigDevice } from "./types.ts";

export interface ListedGpu {
  index: number;
  name: string;
  uuid: string;
  migDevices: MigDevice[];
}

export interface ListReport {
  gpus: ListedGpu[];
  /** Lines that were neither a GPU nor a MIG device (error lines), kept for diagnosis. */
  otherLines: string[];
}

const gpuLine = /^GPU\s+(\d+):\s+(.*?)\s+\(UUID:\s*([^)\s]+)\s*\)\s*$/;
const migLine = /^\s+MIG\s+(\S+)\s+Device\s+(\d+):\s+\(UUID:\s*([^)\s]+)\s*\)\s*$/;

/** Parses `nvidia-smi -L`: `GPU 0: NAME (UUID: GPU-...)` lines, MIG children indented beneath their GPU. */
export function parseNvidiaSmiList(output: string): ListReport {
  const gpus: ListedGpu[] = [];
  const otherLines: string[] = [];
  for (const raw of output.split(/\r?\n/)) {
    const line = raw.replace(/\s+$/, "");
    if (line.trim() === "") continue;
    const gpu = gpuLine.exec(line);
    if (gpu) {
      gpus.push({ index: Number(gpu[1]), name: gpu[2]!, uuid: gpu[3]!, migDevices: [] });
      continue;
    }
    const mig = migLine.exec(line);
    const parent = gpus[gpus.length - 1];
    if (mig && parent) {
      parent.migDevices.push({ profile: mig[1]!, uuid: mig[3]!, order: Number(mig[2]) } as MigDevice & { order: number });
      continue;
    }
    otherLines.push(line.trim());
  }
  for (const gpu of gpus) {
    gpu.migDevices = (gpu.migDevices as Array<MigDevice & { order: number }>)
      .sort((a, b) => a.order - b.order)
      .map(({ uuid, profile }) => ({ uuid, profile }));
  }
  return { gpus, otherLines };
}
