/** The executor config's GPU-use keys: how often GPUs are sampled, when idle sessions are reclaimed, time limits. */

/** `gpuIdle`: a session whose every GPU stays under `threshold` % for `after` seconds is idle. */
export interface GpuIdlePolicy {
  /** Percent utilization under which a GPU counts as idle. */
  threshold: number;
  /** Seconds of idleness before the session is stopped (or its owner warned). */
  after: number;
  action: "stop" | "warn";
  /** Stop an idle session only while another request waits for GPUs on this node. */
  onlyWhenQueued: boolean;
  /** User or group names whose sessions are never stopped for idleness. */
  exempt: string[];
}

export const defaultGpuIdlePolicy: GpuIdlePolicy = { threshold: 5, after: 2 * 3600, action: "stop", onlyWhenQueued: false, exempt: [] };

/** `3600`, `"30m"`, `"2h"`, `"1h30m"`, `"7d"` -> seconds (a bare number is seconds, as everywhere in this file). */
export function configSeconds(v: unknown): number {
  if (typeof v === "number" && Number.isFinite(v) && v >= 0) return v;
  const text = typeof v === "string" ? v.trim() : "";
  if (/^\d+$/.test(text)) return Number(text);
  if (/^(\d+\s*[smhd]\s*)+$/.test(text)) {
    const unit: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
    let total = 0;
    for (const [, n, u] of text.matchAll(/(\d+)\s*([smhd])/g)) total += Number(n) * unit[u!]!;
    return total;
  }
  throw new Error('must be a duration like 3600, "30m", "12h" or "7d"');
}

/** A duration above 0; `key` names the nested key in the message. */
const positiveSeconds = (v: unknown, key = ""): number => {
  const prefix = key ? `${key} ` : "";
  let s: number;
  try {
    s = configSeconds(v);
  } catch (err) {
    throw new Error(`${prefix}${(err as Error).message}`);
  }
  if (s <= 0) throw new Error(`${prefix}must be longer than 0`);
  return s;
};

/** `gpuIdle:` -> the policy, missing keys taking their defaults; null or absent turns idle reclaim off. */
export function parseGpuIdle(v: unknown): GpuIdlePolicy | null {
  if (v === null || v === undefined || v === false) return null;
  if (typeof v !== "object" || Array.isArray(v)) throw new Error("must be a mapping like {threshold: 5, after: 2h, action: stop}");
  const raw = v as Record<string, unknown>;
  const policy = { ...defaultGpuIdlePolicy, exempt: [] as string[] };
  for (const [key, value] of Object.entries(raw)) {
    if (key === "threshold") {
      if (typeof value !== "number" || !(value > 0) || value > 100) throw new Error("threshold must be a percent above 0 and at most 100");
      policy.threshold = value;
    } else if (key === "after") policy.after = positiveSeconds(value, "after");
    else if (key === "action") {
      if (value !== "stop" && value !== "warn") throw new Error('action must be "stop" or "warn"');
      policy.action = value;
    } else if (key === "onlyWhenQueued") {
      if (typeof value !== "boolean") throw new Error("onlyWhenQueued must be true or false");
      policy.onlyWhenQueued = value;
    } else if (key === "exempt") {
      if (!Array.isArray(value) || !value.every((x) => typeof x === "string" && /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/.test(x))) {
        throw new Error("exempt must be a list of user or group names");
      }
      policy.exempt = value as string[];
    } else throw new Error(`has no key "${key}" (threshold, after, action, onlyWhenQueued, exempt)`);
  }
  return policy;
}

/** `gpuSampleInterval`: at least a second (one nvidia-smi call each time). */
export function parseSampleInterval(v: unknown): number {
  const s = configSeconds(v);
  if (s < 1) throw new Error("must be at least 1s");
  return s;
}

/** `maxDuration`: no limit when absent. */
export function parseMaxDuration(v: unknown): number | null {
  if (v === null || v === undefined || v === "") return null;
  return positiveSeconds(v);
}
