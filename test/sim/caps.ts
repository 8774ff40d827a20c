/**
 * The per-user caps as the world sees them: no user (root aside) ever has more running containers than
 * `maxSessionsPerUser`, nor running containers allowed more memory together than `maxMemoryPerUser` (bytes here).
 * Checked after every step of the simulation, from the fake engine's containers and their labels alone.
 */
import type { FakeContainer } from "./world.ts";

export interface SimCaps {
  maxSessions: number;
  maxMemory: number;
}

export function overCaps(running: readonly FakeContainer[], caps: SimCaps): string | null {
  const byUser = new Map<string, { sessions: string[]; memory: number }>();
  for (const c of running) {
    const uid = c.labels["beaker.uid"] ?? "?";
    if (uid === "0") continue;
    const mine = byUser.get(uid) ?? { sessions: [], memory: 0 };
    mine.sessions.push(c.sessionId);
    mine.memory += Number(c.labels["beaker.memory"] ?? 0);
    byUser.set(uid, mine);
  }
  for (const [uid, mine] of byUser) {
    if (mine.sessions.length > caps.maxSessions) return `uid ${uid} has ${mine.sessions.length} running sessions (${mine.sessions.join(", ")}), over the cap of ${caps.maxSessions}`;
    if (mine.memory > caps.maxMemory) return `uid ${uid}'s running sessions are allowed ${mine.memory} bytes together, over the cap of ${caps.maxMemory}`;
  }
  return null;
}
