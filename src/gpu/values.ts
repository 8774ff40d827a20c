/** Helpers for nvidia-smi's text values: sentinels, units, PCI addresses. */

const sentinels = new Set([
  "",
  "n/a",
  "[n/a]",
  "not found",
  "unknown error",
  "[unknown error]",
  "not supported",
  "[not supported]",
  "requested functionality has been deprecated",
  "insufficient permissions",
  "[insufficient permissions]",
  "gpu is lost",
  "[gpu is lost]",
  "none",
]);

/** The text, or null when nvidia-smi says the value is not available. */
export function cleanValue(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === "object") return null;
  const text = String(value).trim();
  return sentinels.has(text.toLowerCase()) ? null : text;
}

const unitFactors: Record<string, number> = { b: 1 / 1048576, kib: 1 / 1024, kb: 1 / 1024, mib: 1, mb: 1, gib: 1024, gb: 1024 };

/** `81920 MiB` -> 81920. Null for sentinels or unparseable text. */
export function parseMiB(value: unknown): number | null {
  const text = cleanValue(value);
  if (text === null) return null;
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?i?b)?$/i.exec(text);
  if (!match) return null;
  const factor = unitFactors[(match[2] ?? "mib").toLowerCase()];
  return factor === undefined ? null : Math.round(Number(match[1]) * factor);
}

/** `97 %` -> 97 (0 to 100). Null for sentinels (`N/A` in MIG mode) or anything else. */
export function parsePercent(value: unknown): number | null {
  const text = cleanValue(value);
  const match = text === null ? null : /^(\d{1,3})\s*%?$/.exec(text);
  return match && Number(match[1]) <= 100 ? Number(match[1]) : null;
}

export function parseInteger(value: unknown): number | null {
  const text = cleanValue(value);
  return text !== null && /^\d+$/.test(text) ? Number(text) : null;
}

/** `00000000:0A:00.0`, `0000:0a:00.0`, `00001580:00:00.0` -> `0000:0a:00.0`, `1580:00:00.0`. */
export function normalizeBusId(value: unknown): string | null {
  const text = cleanValue(value);
  if (text === null) return null;
  const match = /^([0-9a-f]+):([0-9a-f]{1,2}):([0-9a-f]{1,2})\.([0-7])$/i.exec(text);
  if (!match) return null;
  const domain = match[1]!.replace(/^0+/, "").padStart(4, "0");
  return `${domain}:${match[2]!.padStart(2, "0")}:${match[3]!.padStart(2, "0")}.${match[4]}`.toLowerCase();
}
