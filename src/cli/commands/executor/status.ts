import { jsonOption, type CommandSpec } from "../../command.ts";
import { printJson } from "../../output.ts";
import { UnavailableError } from "../../../errors.ts";

export const executorStatusCommand: CommandSpec = {
  name: "status",
  summary: "Say whether this node's executor answers, and its version",
  options: [jsonOption],
  async run({ flags, factory }) {
    const client = factory.executor();
    const health = await client.health();
    if (!health) throw new UnavailableError(`no executor answers on ${client.socketPath}: start it with 'systemctl start beaker-executor'`);
    if (flags.json) printJson(factory.io, { running: true, socket: client.socketPath, ...health });
    else factory.io.out.write(`executor ${health.version} (${health.commit}) running on node ${health.node}, pid ${health.pid}, socket ${client.socketPath}\n`);
  },
};
