import type { SessionInfo } from "../../../executor/api-types.ts";
import type { Factory } from "../../factory.ts";
import type { attachTerminal } from "../../terminal.ts";

/** What an attached terminal's end means for the user: a line on stderr, and the exit code (the session's). */
export function reportOutcome(io: Factory["io"], session: SessionInfo, outcome: Awaited<ReturnType<typeof attachTerminal>>): number {
  if (outcome.kind === "detached") {
    io.err.write(`\ndetached from session ${session.name}; it keeps running. Back in with: beaker session attach ${session.id}\n`);
    return 0;
  }
  if (outcome.kind === "lost") {
    const why = outcome.waited === null ? "lost the connection to the executor" : `the executor did not come back within ${outcome.waited} s (reconnect_timeout)`;
    io.err.write(`\n${why}; the session may still run: beaker session attach ${session.id}\n`);
    return 1;
  }
  if (outcome.whileAway) {
    io.err.write(`\nsession ${session.name} ended while the executor restarted (${outcome.reason}, exit code ${outcome.code})\n`);
    return outcome.code;
  }
  if (outcome.reason === "exited") return outcome.code;
  if (outcome.reason.startsWith("slurm: ")) {
    io.err.write(`\nsession ${session.name} ended: Slurm ended its job (${outcome.reason.slice("slurm: ".length)})\n`);
    return 143;
  }
  if (outcome.reason === "executor lost the container") {
    io.err.write(`\nsession ${session.name} ended: its container disappeared (removed outside Beaker?)\n`);
    return outcome.code;
  }
  // Stopped (by its user, an admin, for idleness or its time limit): the CLI ends as a SIGTERM'd program would.
  const why: Record<string, string> = {
    idle: "stopped: nobody attached for the node's idle timeout",
    "idle GPUs": "stopped: its GPUs were idle",
    "time limit": "stopped: it reached its time limit",
  };
  io.err.write(`\nsession ${session.name} was ${why[outcome.reason] ?? outcome.reason}\n`);
  return 143;
}
