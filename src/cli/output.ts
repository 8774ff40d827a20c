import type { NodeInfo } from "../server/types.ts";
import { formatAgo } from "../util/time.ts";
import type { IO } from "./io.ts";

/**
 * Text that came from elsewhere (an image name, a path, a node's report) made safe for a terminal: control characters,
 * which could move the cursor or retitle a window, become "?". Pure.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
}

/** Prints rows as an aligned table with a header, like `docker ps`. Cells are made printable. */
export function printTable(io: IO, headers: string[], rawRows: string[][]): void {
  const rows = rawRows.map((r) => r.map(printable));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("   ").trimEnd();
  io.out.write(`${line(headers)}\n`);
  for (const row of rows) io.out.write(`${line(row)}\n`);
}

/** Stable JSON: two-space indented, one trailing newline. */
export function printJson(io: IO, value: unknown): void {
  io.out.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** The server's nodes: HOSTNAME, (CLUSTER), GPU TYPE, GPUS FREE/TOTAL, STATUS, LAST SEEN. */
export function printNodes(io: IO, nodes: NodeInfo[], now: Date, withCluster: boolean): void {
  printTable(
    io,
    ["HOSTNAME", ...(withCluster ? ["CLUSTER"] : []), "GPU TYPE", "GPUS FREE/TOTAL", "STATUS", "LAST SEEN"],
    nodes.map((n) => [n.hostname, ...(withCluster ? [n.cluster] : []), n.gpuType ?? "-", `${n.gpusFree}/${n.gpusTotal}`, n.status, formatAgo(n.lastSeen, now.getTime())]),
  );
}
