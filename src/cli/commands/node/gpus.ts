import { UnavailableError } from "../../../errors.ts";
import type { GpuStatus } from "../../../gpu/report.ts";
import { defineCommand, jsonOption } from "../../command.ts";
import { printJson, printTable } from "../../output.ts";
import { formatSize } from "../../../config/size.ts";
import { requireGpuNode } from "../../node-only.ts";
import { loadNodeGpus } from "./shared.ts";

function state(gpu: GpuStatus, unavailable: Record<string, string>): string {
  if (!gpu.healthy) return `unhealthy: ${gpu.error ?? "unknown"}`;
  if (gpu.claimedBy) return `claimed by ${gpu.claimedBy}${gpu.slurmJob ? ` (Slurm job ${gpu.slurmJob.id})` : ""}`;
  if (gpu.slurmJob) return `busy: Slurm job ${gpu.slurmJob.id} of ${gpu.slurmJob.user}`;
  const reason = unavailable[gpu.uuid ?? gpu.busId ?? "?"];
  return reason ? `unavailable: ${reason}` : "free";
}

export const nodeGpusCommand = defineCommand({
  name: "gpus",
  summary: "List this node's GPUs and which session holds each",
  options: [jsonOption],
  async run({ flags, factory }) {
    const { io } = factory;
    requireGpuNode(factory, "node gpus");
    const { inventory, gpus, unavailable } = await loadNodeGpus(factory);
    if (inventory.error) throw new UnavailableError(inventory.error);
    if (flags.json) printJson(io, gpus);
    else if (gpus.length > 0) {
      printTable(
        io,
        ["INDEX", "NAME", "UTIL", "MEMORY USED", "UUID", "MIG", "STATE"],
        gpus.map((g) => [
          g.index === null ? "?" : String(g.index),
          g.name ?? "?",
          g.utilization === null ? "-" : `${g.utilization}%`,
          `${g.memoryUsedMiB === null ? "?" : formatSize(g.memoryUsedMiB * 1048576)} / ${g.memoryTotalMiB === null ? "?" : formatSize(g.memoryTotalMiB * 1048576)}`,
          g.uuid ?? `? (bus ${g.busId ?? "unknown"})`,
          g.migMode === "enabled" ? `${g.migDevices.length} devices: ${g.migDevices.map((d) => d.profile ?? "?").join(",")}` : (g.migMode ?? "-"),
          state(g, unavailable),
        ]),
      );
    }
    if (inventory.note) io.err.write(`${inventory.note}\n`);
    else if (gpus.length === 0) io.err.write("no GPUs on this node\n");
  },
});
