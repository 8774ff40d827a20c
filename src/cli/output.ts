import type { IO } from "./io.ts";

/** Prints rows as an aligned table with a header, like `docker ps`. */
export function printTable(io: IO, headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("   ").trimEnd();
  io.out.write(`${line(headers)}\n`);
  for (const row of rows) io.out.write(`${line(row)}\n`);
}

/** Stable JSON: two-space indented, one trailing newline. */
export function printJson(io: IO, value: unknown): void {
  io.out.write(`${JSON.stringify(value, null, 2)}\n`);
}
