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
      if (event.layer) {
        const layer = layers.get(event.layer) ?? { current: 0, total: 0, done: false };
        if (event.total) layer.total = event.total;
        if (event.current) layer.current = event.current;
        if (/complete|already exists/i.test(event.status)) layer.done = true;
        layers.set(event.layer, layer);
      }
      const all = [...layers.values()];
      const mb = (n: number) => `${(n / 1e6).toFixed(0)} MB`;
      this.update(
        `Pulling ${event.image}: ${all.filter((l) => l.done).length}/${all.length} layers, ${mb(all.reduce((n, l) => n + l.current, 0))} / ${mb(all.reduce((n, l) => n + l.total, 0))}`,
      );
    },
    done() {
      if (timer) clearInterval(timer);
      timer = null;
      if (io.isStderrTTY && text) io.err.write("\r\x1b[2K");
      text = "";
    },
  };
}
