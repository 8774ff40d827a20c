import { NotFoundError, UnavailableError } from "../../../errors.ts";
import type { ExecutorClient, ExecutorHealth } from "../../../executor/client.ts";

/** Drain (20 s at most), letting go (10 s), systemd's RestartSec (2 s) and the new executor's start, with room. */
export const defaultWaitSeconds = 90;

/**
 * Asks the executor to stop gracefully: it finishes (or rolls back) creates in flight, writes the queue down, tells
 * waiting and attached clients to reconnect, and exits; systemd (Restart=always) starts the new one. An executor from
 * before graceful restarts has no such request: it gets SIGTERM, which stops it the old way. Waits until a new
 * executor answers.
 */
export async function restartExecutor(client: ExecutorClient, say: (line: string) => void, waitSeconds = defaultWaitSeconds): Promise<ExecutorHealth> {
  const before = await client.health();
  if (!before) throw new UnavailableError(`no executor answers on ${client.socketPath}: start it with 'systemctl start beaker-executor'`);
  try {
    await client.request("POST", "/v1/restart", {});
  } catch (err) {
    // An executor from before graceful restarts: SIGTERM. One that went away before its answer arrived: as asked.
    if (err instanceof NotFoundError) process.kill(before.pid, "SIGTERM");
    else if (!(err instanceof UnavailableError)) throw err;
  }
  say(`executor ${before.version} (pid ${before.pid}) is stopping: creates in flight finish, queued requests keep their places, attached terminals reconnect`);
  const deadline = Date.now() + waitSeconds * 1000;
  for (;;) {
    const now = await client.health();
    if (now && now.pid !== before.pid && !now.restarting) {
      say(`executor ${now.version} is running (pid ${now.pid})`);
      return now;
    }
    if (Date.now() > deadline) {
      throw new UnavailableError(
        `the executor stopped, but no new one answered within ${waitSeconds} s: systemd starts it again (Restart=always); see 'systemctl status beaker-executor'`,
      );
    }
    await Bun.sleep(200);
  }
}
