import { cpus, hostname, totalmem } from "node:os";
import { formatSize } from "../../../config/size.ts";
import { defineCommand, jsonOption } from "../../command.ts";
import { printJson } from "../../output.ts";
import { loadNodeGpus } from "./shared.ts";
import { requireGpuNode } from "../../node-only.ts";

export const nodeInfoCommand = defineCommand({
  name: "info",
  summary: "This node: its executor, server, CPUs, memory and GPUs at a glance",
  options: [jsonOption],
  async run({ flags, factory }) {
    requireGpuNode(factory, "node info");
    const health = await factory.executor().health();
    const { inventory, gpus, unavailable } = await loadNodeGpus(factory);
    const free = gpus.filter((g) => g.healthy && !g.claimedBy && !unavailable[g.uuid ?? g.busId ?? "?"]).length;
    const names = [...new Set(gpus.map((g) => g.name).filter(Boolean))];
    const info = {
      hostname: hostname(),
      node: health?.node ?? null,
      executor: health ? { version: health.version, pid: health.pid, socket: factory.executor().socketPath } : null,
      server: health?.server ?? null,
      cpus: cpus().length,
      memoryBytes: totalmem(),
      driverVersion: inventory.driverVersion ?? null,
      gpus: { total: gpus.length, free, types: names },
      note: inventory.note ?? inventory.error ?? null,
    };
    if (flags.json) return void printJson(factory.io, info);
    const out = factory.io.out;
    out.write(`node:      ${info.node ?? info.hostname}${info.node && info.node !== info.hostname ? ` (host ${info.hostname})` : ""}\n`);
    out.write(`executor:  ${info.executor ? `${info.executor.version}, pid ${info.executor.pid}, ${info.executor.socket}` : "not running"}\n`);
    out.write(`server:    ${info.server ?? "none (this node works alone)"}\n`);
    out.write(`cpus:      ${info.cpus}\nmemory:    ${formatSize(info.memoryBytes)}\n`);
    out.write(`gpus:      ${info.gpus.free} free of ${info.gpus.total}${names.length ? ` (${names.join(", ")})` : ""}${info.driverVersion ? `, driver ${info.driverVersion}` : ""}\n`);
    if (info.note) out.write(`note:      ${info.note}\n`);
  },
});
