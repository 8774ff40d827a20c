/**
 * Finding a session on a cluster through the server: which node it is on, from the sessions the nodes last reported.
 * The matching is pure; `findSessionNode` asks the server. Used by attach, exec, stop, describe and port-forward
 * from a machine without the session, and by `session proxy` for sessions on other nodes.
 */
import { NotFoundError, UsageError } from "../errors.ts";
import type { ServerClient } from "../server/client.ts";
import type { NodeSession } from "../server/types.ts";

export type ClusterSession = NodeSession & { node: string };

export interface SessionQuery {
  cluster: string;
  /** An ID, a unique ID prefix or a name; none: the caller's only session. */
  ref?: string;
  /** Only sessions on this node. */
  node?: string;
}

function listing(sessions: ClusterSession[]): string {
  return sessions.map((s) => `  ${s.id}  ${s.name}  ${s.node}  ${s.status}`).join("\n");
}

/** The one session `query` means among a cluster's sessions (already the caller's own). Pure. */
export function matchSession(sessions: ClusterSession[], query: SessionQuery): ClusterSession {
  const where = query.node ? `on ${query.node}` : `in ${query.cluster}`;
  const pool = sessions.filter((s) => s.status !== "exited" && (!query.node || s.node === query.node));
  const ref = query.ref;
  if (!ref) {
    if (pool.length === 1) return pool[0]!;
    if (pool.length === 0) throw new NotFoundError(`you have no running sessions ${where}`);
    throw new UsageError(`multiple running sessions found, select one with an ID\n${listing(pool)}`);
  }
  const exact = pool.filter((s) => s.id === ref);
  if (exact.length === 1) return exact[0]!;
  const named = pool.filter((s) => s.name === ref);
  if (named.length === 1) return named[0]!;
  if (named.length > 1) throw new UsageError(`several sessions are named ${ref} ${where}: select one with an ID (or --node)\n${listing(named)}`);
  const prefixed = pool.filter((s) => s.id.startsWith(ref));
  if (prefixed.length === 1) return prefixed[0]!;
  if (prefixed.length > 1) throw new UsageError(`${ref} matches several sessions ${where}: give more of the ID\n${listing(prefixed)}`);
  throw new NotFoundError(`no session ${ref} ${where} (the server's view is a few seconds old; 'beaker session list --cluster ${query.cluster}')`);
}

/**
 * The caller's session that `query` means and the node it is on, from the server. An admin sees everyone's sessions
 * there; only their own are considered, even where every session listed is one other user's.
 */
export async function findSessionNode(server: Pick<ServerClient, "sessions" | "whoami">, query: SessionQuery): Promise<ClusterSession> {
  let sessions = await server.sessions(query.cluster);
  if (sessions.length > 0) {
    const me = (await server.whoami()).name;
    sessions = sessions.filter((s) => s.user === me);
  }
  return matchSession(sessions, query);
}
