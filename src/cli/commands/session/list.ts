import type { SessionInfo } from "../../../executor/api-types.ts";
import { jsonOption, type CommandSpec } from "../../command.ts";
import { printJson, printTable } from "../../output.ts";

function age(since: string | null, now: Date): string {
  if (!since) return "-";
  const s = Math.max(0, Math.floor((now.getTime() - Date.parse(since)) / 1000));
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

export const sessionListCommand: CommandSpec = {
  name: "list",
  summary: "List your sessions on this node (root with --all: everyone's)",
  options: [{ flags: "--all", description: "Everyone's sessions (root only)", kind: "boolean" }, jsonOption],
  async run({ flags, factory }) {
    const sessions = await factory.executor().request<SessionInfo[]>("GET", `/v1/sessions${flags.all ? "?all=1" : ""}`);
    if (flags.json) return void printJson(factory.io, sessions);
    if (sessions.length === 0) return void factory.io.err.write("no sessions\n");
    const now = factory.now();
    printTable(
      factory.io,
      ["ID", "NAME", "USER", "IMAGE", "GPUS", "STATUS", "DURATION", "PORTS"],
      sessions.map((s) => [s.id, s.name, s.user, s.image, String(s.gpus.length), s.status, age(s.startedAt, now), s.ports.join(",")]),
    );
  },
};
