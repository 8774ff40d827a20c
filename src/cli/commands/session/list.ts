import type { SessionInfo } from "../../../executor/api-types.ts";
import { jsonOption, type CommandSpec } from "../../command.ts";
import { printJson, printTable } from "../../output.ts";
import { formatStatus, formatTime, sessionDuration } from "./ref.ts";

export const sessionListCommand: CommandSpec = {
  name: "list",
  summary: "List your sessions on this node (--all: with finished ones; root: everyone's)",
  options: [{ flags: "--all", description: "Include finished sessions; as root, everyone's", kind: "boolean" }, jsonOption],
  async run({ flags, factory }) {
    const sessions = await factory.executor().request<SessionInfo[]>("GET", `/v1/sessions${flags.all ? "?all=1" : ""}`);
    if (flags.json) return void printJson(factory.io, sessions);
    if (sessions.length === 0) return void factory.io.err.write("no sessions\n");
    const now = factory.now();
    printTable(
      factory.io,
      ["ID", "NAME", "USER", "IMAGE", "GPUS", "STATUS", "STARTED", "DURATION", "PORTS"],
      sessions.map((s) => [
        s.id,
        s.name,
        s.user,
        s.image,
        String(s.gpus.length || s.requestedGpus),
        formatStatus(s),
        formatTime(s.startedAt ?? s.createdAt),
        sessionDuration(s, now),
        s.ports.join(","),
      ]),
    );
  },
};
