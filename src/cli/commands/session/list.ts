import type { SessionView } from "../../../executor/api-types.ts";
import { defineCommand, jsonOption } from "../../command.ts";
import { printJson, printTable } from "../../output.ts";
import type { Factory } from "../../factory.ts";
import { formatDuration, formatSlurmJob, formatTime, sessionDuration } from "./ref.ts";
import { gpuMemory, gpuPercent, statusWithUse, timeLeft } from "./use.ts";

export const sessionListCommand = defineCommand({
  name: "list",
  usesExecutor: true,
  summary: "List your sessions on this node (--all: with finished ones; root: everyone's)",
  options: [
    { flags: "--all", description: "Include finished sessions; as root, everyone's", kind: "boolean" },
    { flags: "--cluster <name>", description: "Your sessions on every node of a cluster (from the Beaker server)", kind: "string" },
    jsonOption,
  ],
  async run({ flags, factory }) {
    if (flags.cluster !== undefined) return listAcrossCluster(factory, flags.cluster, flags.json ?? false);
    const sessions = await factory.executor().request<SessionView[]>("GET", `/v1/sessions${flags.all ? "?all=1" : ""}`);
    if (flags.json) return void printJson(factory.io, sessions);
    if (sessions.length === 0) return void factory.io.err.write("no sessions\n");
    const now = factory.now();
    // On a Slurm node each session runs in a job: its id, partition and time left get a column.
    const slurm = sessions.some((s) => s.slurmJob);
    printTable(
      factory.io,
      ["ID", "NAME", "USER", "IMAGE", "GPUS", "GPU%", "GPU MEM", "STATUS", "STARTED", "DURATION", "LEFT", ...(slurm ? ["SLURM JOB"] : []), "PORTS"],
      sessions.map((s) => [
        s.id,
        s.name,
        s.user,
        s.image,
        String(s.gpus.length || s.requestedGpus),
        gpuPercent(s),
        gpuMemory(s),
        statusWithUse(s, now),
        formatTime(s.startedAt ?? s.createdAt),
        sessionDuration(s, now),
        timeLeft(s, now),
        ...(slurm ? [formatSlurmJob(s.slurmJob, now, s.status === "exited")] : []),
        s.ports.join(","),
      ]),
    );
  },
});

/** Sessions on every node of a cluster, as the nodes last reported them to the server. */
async function listAcrossCluster(factory: Factory, cluster: string, json: boolean): Promise<void> {
  const sessions = await (await factory.server()).sessions(cluster);
  if (json) return void printJson(factory.io, sessions);
  if (sessions.length === 0) return void factory.io.err.write(`no sessions in ${cluster}\n`);
  const now = factory.now();
  printTable(
    factory.io,
    ["ID", "NAME", "USER", "NODE", "IMAGE", "GPUS", "STATUS", "STARTED", "DURATION"],
    sessions.map((s) => [s.id, s.name, s.user, s.node, s.image, String(s.gpus.length), s.status, formatTime(s.startedAt ?? s.createdAt), s.startedAt ? formatDuration((now.getTime() - Date.parse(s.startedAt)) / 1000) : "-"]),
  );
}
