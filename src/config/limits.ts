import { parseSize } from "./size.ts";

/**
 * What one user may have on a node at once, beside the GPU and queue limits of executor.ts (issue 26): sessions and
 * the memory their limits add up to. Kept in a file of its own; `ExecutorConfig` extends it.
 */
export interface UserCapsConfig {
  /** Sessions one user may have at once: running, starting or waiting for GPUs, 0-GPU ones included. */
  maxSessionsPerUser: number;
  /** The memory all of one user's sessions together may be allowed: bytes or a share of the node; null = no cap. */
  maxMemoryPerUser: MemoryAmount | null;
}

/** An amount of memory: bytes, or a share (1-100%) of the node's. */
export type MemoryAmount = { bytes: number } | { percent: number };

export const defaultUserCaps: UserCapsConfig = { maxSessionsPerUser: 16, maxMemoryPerUser: null };

/** A session that asks for no memory limit gets half the node at most: two such sessions cannot fill it. */
export const defaultSessionMemory: MemoryAmount = { percent: 50 };

/** `"64g"` or `"50%"` from the config file. */
export function parseMemoryAmount(v: unknown): MemoryAmount {
  const percent = typeof v === "string" ? /^(\d{1,3})\s*%$/.exec(v.trim()) : null;
  if (percent && Number(percent[1]) > 0 && Number(percent[1]) <= 100) return { percent: Number(percent[1]) };
  const bytes = percent ? null : parseSize(String(v));
  if (bytes === null || bytes <= 0) throw new Error('must be a share from 1% to 100%, or a size like "64g"');
  return { bytes };
}

/** An amount in bytes on a node with `nodeBytes` of memory. */
export function bytesOf(amount: MemoryAmount, nodeBytes: number): number {
  return "bytes" in amount ? amount.bytes : Math.floor((nodeBytes * amount.percent) / 100);
}

export const userCapFields: Record<keyof UserCapsConfig, (value: unknown) => unknown> = {
  maxSessionsPerUser: (v) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new Error("must be a whole number, 1 or more");
    return v;
  },
  maxMemoryPerUser: (v) => (v === null || v === undefined || v === "" ? null : parseMemoryAmount(v)),
};
