import type { IO } from "./io.ts";

const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/** A one-line spinner on a terminal (stderr); silent when stderr is not one, so scripts read clean output. */
export function createProgress(io: IO) {
  let text = "";
  let frame = 0;
  let timer: ReturnType<typeof setInterval> | null = null;
  const layers = new Map<string, { current: number; total: number; done: boolean }>();
  const draw = () => io.err.write(`\r\x1b[2K${frames[frame++ % frames.length]} ${text}`);
  return {
    live: io.isStderrTTY,
    update(line: string) {
      if (!io.isStderrTTY) return;
      text = line;
      timer ??= setInterval(draw, 100);
      draw();
    },
    pull(event: { image: string; status: string; layer?: string; current?: number; total?: number }) {
      // "Pulling from repo" carries the tag as its id; only layer events count as layers.
      if (event.layer && !/^Pulling from/.test(event.status)) {
        const layer = layers.get(event.layer) ?? { current: 0, total: 0, done: false };
        // Bytes count while downloading; extraction reports its own counter, which would double them.
        if (/^Downloading/.test(event.status)) {
          if (event.total) layer.total = event.total;
          if (event.current) layer.current = event.current;
        } else if (/^Download complete/.test(event.status)) layer.current = layer.total;
        if (/^Pull complete|^Already exists/.test(event.status)) layer.done = true;
        layers.set(event.layer, layer);
      }
      this.update(pullLine(event.image, [...layers.values()]));
    },
    done() {
      if (timer) clearInterval(timer);
      timer = null;
      if (io.isStderrTTY && text) io.err.write("\r\x1b[2K");
      text = "";
    },
  };
}

/** "Pulling IMG  [########------------] 1.2/3.4 MB  0/2 layers". */
export function pullLine(image: string, layers: Array<{ current: number; total: number; done: boolean }>): string {
  const current = layers.reduce((n, l) => n + (l.done ? l.total : l.current), 0);
  const total = layers.reduce((n, l) => n + l.total, 0);
  const width = 20;
  const filled = total > 0 ? Math.min(width, Math.round((current / total) * width)) : 0;
  const mb = (n: number) => (n / 1e6).toFixed(n < 10e6 ? 1 : 0);
  return `Pulling ${image}  [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${mb(current)}/${mb(total)} MB  ${layers.filter((l) => l.done).length}/${layers.length} layers`;
}
