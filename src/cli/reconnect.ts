/**
 * Riding out an executor restart. When the connection to the executor breaks (kill -9, SIGTERM, `beaker executor
 * restart`, an upgrade), an attached terminal or a waiting request says so once and waits, with backoff, for an
 * executor that answers and is not itself stopping, for up to `reconnect_timeout` (user config, seconds, default 60).
 */
import type { UserConfig } from "../config/user.ts";
import type { ExecutorHealth } from "../executor/client.ts";
import type { IO } from "./io.ts";

export const defaultReconnectSeconds = 60;

/** `reconnect_timeout` from the user config (validated when set), else the default. */
export function reconnectSeconds(config: UserConfig): number {
  const value = Number(config.reconnect_timeout);
  return config.reconnect_timeout !== undefined && Number.isInteger(value) && value >= 0 ? value : defaultReconnectSeconds;
}

export interface ReconnectDeps {
  io: IO;
  health(): Promise<ExecutorHealth | null>;
  timeoutSeconds: number;
  /** Whether the terminal is in raw mode now (a line then needs its carriage return). */
  raw?: () => boolean;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export class Reconnect {
  private deadline: number | null = null;
  private attempts = 0;

  constructor(private readonly deps: ReconnectDeps) {}

  get timeoutSeconds(): number {
    return this.deps.timeoutSeconds;
  }

  /**
   * The connection broke (or the executor said it is restarting): says so once per outage, then waits until an
   * executor answers and is not stopping. False when `reconnect_timeout` runs out or `signal` fires first.
   */
  async wait(signal?: AbortSignal): Promise<boolean> {
    const { io, health } = this.deps;
    const now = this.deps.now ?? Date.now;
    const sleep = this.deps.sleep ?? ((ms: number) => Bun.sleep(ms));
    if (this.deadline === null) {
      this.deadline = now() + this.deps.timeoutSeconds * 1000;
      io.err.write(this.deps.raw?.() ? "\r\nexecutor restarting; reconnecting...\r\n" : "executor restarting; reconnecting...\n");
    }
    for (;;) {
      // Backoff from the first try on (an executor that is draining still answers, and would be asked again at once),
      // capped at a second: a restart should cost a user about that.
      const delay = Math.min(100 * 2 ** this.attempts++, 1000);
      await sleep(Math.max(0, Math.min(delay, this.deadline - now())));
      if (signal?.aborted) return false;
      const answer = await health();
      if (answer && !answer.restarting) return true;
      if (now() >= this.deadline) return false;
    }
  }

  /** Connected again: a later outage gets its own line and its own time. */
  recovered(): void {
    this.deadline = null;
    this.attempts = 0;
  }
}

export function createReconnect(io: IO, client: { health(): Promise<ExecutorHealth | null> }, config: UserConfig): Reconnect {
  return new Reconnect({ io, health: () => client.health(), timeoutSeconds: reconnectSeconds(config), raw: () => Boolean(process.stdin.isRaw) });
}
