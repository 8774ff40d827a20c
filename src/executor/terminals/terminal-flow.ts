/**
 * What one terminal may cost the executor, whatever its client does. Output: Docker's stream is read only while the
 * client takes what was sent (a client that stops reading stops the reading, and the program in the session blocks
 * in its write, as on a suspended local terminal); a client that takes nothing for `stalledMs` is closed. Control
 * frames: at most one Docker call in flight per terminal, spaced out; a resize keeps only the last size asked for,
 * signals wait in a short line; all of it ends when the client leaves.
 */
export const terminalLimits = {
  /** Output sent but not yet taken by the client, past which Docker's stream is paused. */
  bufferedBytes: 1024 * 1024,
  /** How long output may stay over that before the connection is closed. */
  stalledMs: 60_000,
  /** Gap after each Docker call a control frame makes (at most 10 resizes or signals a second per terminal). */
  callGapMs: 100,
  /** Signals waiting for their Docker call; more are dropped (a person presses Ctrl-C a few times, not thousands). */
  queuedSignals: 8,
  /** Input and control frames held until Docker's stream is ready; more closes the connection. */
  earlyBytes: 1024 * 1024,
};

/** The close code and reason of a terminal whose client stopped taking its output. */
export const stalledClose = { code: 1008, reason: `output not read for ${terminalLimits.stalledMs / 1000} s: terminal closed` };

/** The WebSocket's side, as Bun's ServerWebSocket has it. */
export interface OutputSink {
  sendBinary(data: Uint8Array): number;
  getBufferedAmount(): number;
  close(code: number, reason: string): void;
}

/** Docker's side: a stream that can stop and resume reading. */
export interface OutputSource {
  pause(): unknown;
  resume(): unknown;
}

export class OutputFlow {
  private paused = false;
  private stallTimer: ReturnType<typeof setTimeout> | null = null;
  private ended = false;

  constructor(
    private readonly sink: OutputSink,
    private readonly source: OutputSource,
    private readonly limits: { bufferedBytes: number; stalledMs: number } = terminalLimits,
  ) {}

  /** Sends a chunk; past the limit, Docker's stream waits until the client has taken the output. */
  send(chunk: Uint8Array): void {
    if (this.ended) return;
    this.sink.sendBinary(chunk);
    if (this.paused || this.sink.getBufferedAmount() <= this.limits.bufferedBytes) return;
    this.paused = true;
    this.source.pause();
    this.stallTimer = setTimeout(() => {
      this.end();
      this.sink.close(stalledClose.code, stalledClose.reason);
    }, this.limits.stalledMs);
  }

  /** The socket could take more (Bun's `drain`): reading resumes once the client is back under the limit. */
  drained(): void {
    if (this.ended || !this.paused || this.sink.getBufferedAmount() > this.limits.bufferedBytes) return;
    this.paused = false;
    this.clearStall();
    this.source.resume();
  }

  /** The terminal closed: no timer is left behind. */
  end(): void {
    this.ended = true;
    this.clearStall();
  }

  private clearStall(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = null;
  }
}

export interface ControlActions {
  resize(cols: number, rows: number): Promise<void>;
  signal(name: string): Promise<void>;
}

/**
 * A terminal's control frames on their way to Docker, one call at a time with `callGapMs` after each. Nothing runs
 * before `start()` (the terminal sets its first size itself); after `end()` nothing more runs.
 */
export class TerminalControls {
  private size: [number, number] | null = null;
  private applied: [number, number] | null = null;
  private readonly signals: string[] = [];
  private running = false;
  private started = false;
  private ended = false;

  constructor(
    private readonly actions: ControlActions,
    private readonly limits: { callGapMs: number; queuedSignals: number } = terminalLimits,
  ) {}

  resize(cols: number, rows: number): void {
    this.size = [cols, rows];
    this.pump();
  }

  signal(name: string): void {
    if (this.signals.length < this.limits.queuedSignals) this.signals.push(name);
    this.pump();
  }

  /** Sets the size at once (before `start()`: the first size, a redraw nudge); later resizes skip it if unchanged. */
  async resizeNow(cols: number, rows: number): Promise<void> {
    this.applied = [cols, rows];
    await this.actions.resize(cols, rows);
  }

  start(): void {
    this.started = true;
    this.pump();
  }

  end(): void {
    this.ended = true;
    this.size = null;
    this.signals.length = 0;
  }

  private pump(): void {
    if (this.running || !this.started || this.ended) return;
    this.running = true;
    void this.drain();
  }

  /** `running` drops in the same tick the line is found empty, so a frame that comes next starts a new drain. */
  private async drain(): Promise<void> {
    try {
      while (!this.ended) {
        const signal = this.signals.shift();
        if (signal !== undefined) await this.actions.signal(signal).catch(() => {});
        else if (this.size) {
          const [cols, rows] = this.size;
          this.size = null;
          if (this.applied?.[0] === cols && this.applied[1] === rows) continue;
          this.applied = [cols, rows];
          await this.actions.resize(cols, rows).catch(() => {});
        } else return;
        await new Promise((resolve) => setTimeout(resolve, this.limits.callGapMs));
      }
    } finally {
      this.running = false;
    }
  }
}
