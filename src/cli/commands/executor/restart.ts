import { BeakerError, UsageError } from "../../../errors.ts";
import { defineCommand } from "../../command.ts";
import { defaultWaitSeconds, restartExecutor } from "./shared.ts";

export const executorRestartCommand = defineCommand({
  name: "restart",
  summary: "Restart this node's executor gracefully: sessions run on, queued requests keep their places, terminals reconnect",
  options: [{ flags: "--wait <seconds>", description: "How long to wait for the new executor to answer", default: defaultWaitSeconds, kind: "number" }],
  examples: ["sudo beaker executor restart"],
  async run({ flags, factory }) {
    if (process.getuid?.() !== 0) throw new BeakerError("run 'sudo beaker executor restart': only root may restart the executor");
    const wait = flags.wait;
    if (!(wait > 0)) throw new UsageError("--wait must be a number of seconds above 0");
    await restartExecutor(factory.executor(), (line) => factory.io.err.write(`${line}\n`), wait);
  },
});
