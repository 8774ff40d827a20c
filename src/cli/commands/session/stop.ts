import type { SessionInfo } from "../../../executor/api-types.ts";
import { UsageError } from "../../../errors.ts";
import type { CommandSpec } from "../../command.ts";
import { jsonOption } from "../../command.ts";
import { printJson } from "../../output.ts";
import type { Factory } from "../../factory.ts";

/** The caller's only session when no ID is given; otherwise a usage error listing the candidates. */
export async function resolveSessionRef(factory: Factory, ref: string | undefined): Promise<string> {
  if (ref) return ref;
  const sessions = await factory.executor().request<SessionInfo[]>("GET", "/v1/sessions");
  if (sessions.length === 1) return sessions[0]!.id;
  if (sessions.length === 0) throw new UsageError("you have no sessions on this node");
  const list = sessions.map((s) => `  ${s.id}  ${s.name}  ${s.status}`).join("\n");
  throw new UsageError(`multiple running sessions found, select one with an ID\n${list}`);
}

export const sessionStopCommand: CommandSpec = {
  name: "stop",
  args: "[ID]",
  summary: "Stop a session: SIGTERM, then SIGKILL after the timeout; its GPUs are freed",
  options: [{ flags: "--timeout <seconds>", description: "Seconds between SIGTERM and SIGKILL", default: 10, kind: "number" }, jsonOption],
  async run({ args, flags, factory }) {
    const ref = await resolveSessionRef(factory, args[0]);
    const info = await factory.executor().request<SessionInfo>("POST", `/v1/sessions/${encodeURIComponent(ref)}/stop`, { timeout: flags.timeout ?? 10 });
    if (flags.json) printJson(factory.io, info);
    else factory.io.err.write(`stopped session ${info.name} (${info.id})\n`);
  },
};
