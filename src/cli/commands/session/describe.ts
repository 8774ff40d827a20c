import { defineCommand, jsonOption } from "../../command.ts";
import { printable, printJson } from "../../output.ts";
import { clusterOption, locateSession, nodeOption, runOnNode } from "../../remote.ts";
import { formatSlurmJob, formatTime, resolverFor, resolveSession, sessionDuration, userOption } from "./ref.ts";
import { gpuUseLines, statusWithUse, timeLeft } from "./use.ts";

export const sessionDescribeCommand = defineCommand({
  name: "describe",
  usesExecutor: true,
  args: "[ID]",
  summary: "Everything about one session: GPUs, mounts, ports, times, exit code",
  options: [userOption, clusterOption, nodeOption, jsonOption],
  async run({ args, flags, factory }) {
    const where = await locateSession(factory, flags, args[0], resolverFor(flags.user, resolveSession));
    if (where.kind === "remote") {
      return runOnNode(factory, { node: where.node, args: ["session", "describe", ...(where.ref ? [where.ref] : []), ...(flags.json ? ["--json"] : [])], tty: false });
    }
    const s = where.session;
    if (flags.json) return void printJson(factory.io, s);
    const gpus = s.devices.length
      ? s.devices.map((d) => `${d.index ?? "?"}  ${d.uuid}${d.name ? `  ${d.name}` : ""}`)
      : [s.status === "queued" ? `none yet (${s.requestedGpus} asked)` : "none"];
    const rows: Array<[string, string | string[]]> = [
      ["ID", s.id],
      ["Name", s.name],
      ["User", `${s.user} (uid ${s.uid})`],
      ["Node", s.node],
      ["Image", s.image],
      ["Status", statusWithUse(s, factory.now())],
      ["GPUs", gpus],
      ...(s.slurmJob ? ([["Slurm", formatSlurmJob(s.slurmJob, factory.now(), s.status === "exited")]] as Array<[string, string]>) : []),
      ...(s.gpuUtilization.length ? ([["GPU use", gpuUseLines(s, (uuid) => s.devices.find((d) => d.uuid === uuid)?.index ?? null)]] as Array<[string, string[]]>) : []),
      ["Mounts", s.mounts.length ? s.mounts : ["none"]],
      ["Ports", s.ports.length ? s.ports : ["none"]],
      ["Created", formatTime(s.createdAt)],
      ["Started", formatTime(s.startedAt)],
      ...(s.finishedAt ? ([["Finished", formatTime(s.finishedAt)]] as Array<[string, string]>) : []),
      ["Duration", sessionDuration(s, factory.now())],
      ...(s.deadline ? ([["Limit", `stops at ${formatTime(s.deadline)} (${timeLeft(s, factory.now())} left)`]] as Array<[string, string]>) : []),
      ...(s.keptUntil ? ([["Kept", `not stopped for idle GPUs before ${formatTime(s.keptUntil)}`]] as Array<[string, string]>) : []),
      ["Terminal", s.tty ? "yes" : "no"],
    ];
    for (const [key, value] of rows) {
      const lines = Array.isArray(value) ? value : [value];
      lines.forEach((line, i) => factory.io.out.write(`${i === 0 ? `${key}:`.padEnd(10) : " ".repeat(10)}${printable(line)}\n`));
    }
  },
});
