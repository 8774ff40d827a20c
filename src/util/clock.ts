/** Time as the executor sees it: real in the daemon, virtual in the simulation. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
  /** Runs `fn` once after `ms`; the timer never keeps the process alive. */
  later(ms: number, fn: () => void): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => Bun.sleep(ms),
  later: (ms, fn) => void setTimeout(fn, ms).unref?.(),
};
