import { randomBytes, createHash } from "node:crypto";
import { ConflictError, NotFoundError, UsageError } from "../errors.ts";
import type { Db } from "./db.ts";
import { hashSecret, newToken, parseToken, secretMatches, type TokenKind } from "./tokens.ts";
import { nodeFrom, normalizeSessions, num, placementFrom, sessionsFrom, sessionUsers, usersLike, viewGpus } from "./rows.ts";
import {
  gpuIsFree,
  gpuTypeOf,
  offlineAfterMs,
  type ClusterInfo,
  type Heartbeat,
  type HeartbeatAnswer,
  type NodeDetails,
  type NodeInfo,
  type NodeSession,
  type PlacementNodeInfo,
  type UserInfo,
} from "./types.ts";

export type Principal = { kind: "user"; userId: string; tokenId: string; user: UserInfo } | { kind: "node"; tokenId: string; hostname: string };

const webSessionMs = 12 * 3600 * 1000;
const namePattern = /^[a-z_][a-z0-9_.-]{0,31}$/;
const hostnamePattern = /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/;

/**
 * Everything the server keeps, in SQL only: no in-memory state, so several servers on one PostgreSQL agree. Every
 * method is one statement or one transaction, except `heartbeat`, whose two writes are ordered so that either
 * outcome of a failure between them is safe.
 */
export class Store {
  constructor(
    readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  private get sql() {
    return this.db.sql;
  }

  // --- users and tokens ---

  async createUser(name: string, admin: boolean): Promise<{ user: UserInfo; token: string; tokenId: string }> {
    if (!namePattern.test(name)) throw new UsageError(`user name "${name}" must be lowercase letters, digits, "_", "." or "-" (up to 32)`);
    const id = randomBytes(8).toString("hex");
    const t = newToken("user");
    const now = this.now();
    await this.sql.begin(async (tx) => {
      const [existing] = await tx`SELECT id FROM users WHERE name = ${name}`;
      if (existing) throw new ConflictError(`user ${name} already exists`);
      await tx`INSERT INTO users (id, name, admin, created_at) VALUES (${id}, ${name}, ${admin ? 1 : 0}, ${now})`;
      await tx`INSERT INTO tokens (id, kind, user_id, hash, created_at) VALUES (${t.id}, ${"user"}, ${id}, ${t.hash}, ${now})`;
    });
    return { user: { name, admin }, token: t.token, tokenId: t.id };
  }

  async listUsers(): Promise<Array<UserInfo & { tokens: number }>> {
    const rows = await this.sql`
      SELECT u.name, u.admin, (SELECT count(*) FROM tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL) AS tokens
      FROM users u ORDER BY u.name`;
    return rows.map((r: Record<string, unknown>) => ({ name: String(r.name), admin: num(r.admin) === 1, tokens: num(r.tokens) }));
  }

  /** A new token for an existing user (the first one was lost, or a second machine). */
  async issueUserToken(name: string): Promise<{ token: string; tokenId: string }> {
    const [user] = await this.sql`SELECT id FROM users WHERE name = ${name}`;
    if (!user) throw new NotFoundError(`no user ${name}`);
    const t = newToken("user");
    await this.sql`INSERT INTO tokens (id, kind, user_id, hash, created_at) VALUES (${t.id}, ${"user"}, ${user.id}, ${t.hash}, ${this.now()})`;
    return { token: t.token, tokenId: t.id };
  }

  /** Who a presented token belongs to; null for anything unknown, revoked or malformed. */
  async authenticate(presented: string): Promise<Principal | null> {
    const parsed = parseToken(presented);
    if (!parsed) return null;
    const [row] = await this.sql`
      SELECT t.id, t.kind, t.hash, t.revoked_at, t.node_hostname, u.id AS user_id, u.name, u.admin
      FROM tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.id = ${parsed.id}`;
    if (!row || row.revoked_at !== null || row.kind !== parsed.kind || !secretMatches(parsed.secret, String(row.hash))) return null;
    if (row.kind === "node") return { kind: "node", tokenId: String(row.id), hostname: String(row.node_hostname) };
    return { kind: "user", userId: String(row.user_id), tokenId: String(row.id), user: { name: String(row.name), admin: num(row.admin) === 1 } };
  }

  /** Revokes by token id (the part after `bkr_`/`bkn_`) or by the whole token. */
  async revokeToken(idOrToken: string): Promise<{ id: string; kind: TokenKind; owner: string }> {
    const id = parseToken(idOrToken)?.id ?? idOrToken.replace(/^bk[rn]_/, "").replace(/_.*$/, "");
    const [row] = await this.sql`
      SELECT t.id, t.kind, t.revoked_at, t.node_hostname, u.name FROM tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.id = ${id}`;
    if (!row) throw new NotFoundError(`no token ${id}`);
    if (row.revoked_at === null) await this.sql`UPDATE tokens SET revoked_at = ${this.now()} WHERE id = ${id}`;
    await this.sql`DELETE FROM web_sessions WHERE token_id = ${id}`;
    return { id, kind: row.kind as TokenKind, owner: String(row.name ?? row.node_hostname) };
  }

  /** The owner swaps the token they used for a new one; the old one stops working at once. */
  async rotateToken(principal: Extract<Principal, { kind: "user" }>): Promise<{ token: string; tokenId: string }> {
    const t = newToken("user");
    const now = this.now();
    await this.sql.begin(async (tx) => {
      await tx`UPDATE tokens SET revoked_at = ${now} WHERE id = ${principal.tokenId}`;
      await tx`DELETE FROM web_sessions WHERE token_id = ${principal.tokenId}`;
      await tx`INSERT INTO tokens (id, kind, user_id, hash, created_at) VALUES (${t.id}, ${"user"}, ${principal.userId}, ${t.hash}, ${now})`;
    });
    return { token: t.token, tokenId: t.id };
  }

  // --- web sign-in: a cookie names a row here, never the token itself ---

  async createWebSession(principal: Extract<Principal, { kind: "user" }>): Promise<string> {
    const id = randomBytes(32).toString("base64url");
    await this.sql`
      INSERT INTO web_sessions (id_hash, user_id, token_id, expires_at)
      VALUES (${sha256(id)}, ${principal.userId}, ${principal.tokenId}, ${this.now() + webSessionMs})`;
    return id;
  }

  async webSessionUser(cookie: string): Promise<Extract<Principal, { kind: "user" }> | null> {
    const [row] = await this.sql`
      SELECT w.user_id, w.token_id, w.expires_at, u.name, u.admin FROM web_sessions w JOIN users u ON u.id = w.user_id
      WHERE w.id_hash = ${sha256(cookie)}`;
    if (!row || num(row.expires_at) < this.now()) return null;
    return { kind: "user", userId: String(row.user_id), tokenId: String(row.token_id), user: { name: String(row.name), admin: num(row.admin) === 1 } };
  }

  async deleteWebSession(cookie: string): Promise<void> {
    await this.sql`DELETE FROM web_sessions WHERE id_hash = ${sha256(cookie)}`;
  }

  // --- clusters and nodes ---

  async createCluster(name: string): Promise<void> {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name)) throw new UsageError(`cluster name "${name}" may use letters, digits, "_", "." and "-"`);
    const [existing] = await this.sql`SELECT id FROM clusters WHERE name = ${name}`;
    if (existing) throw new ConflictError(`cluster ${name} already exists`);
    await this.sql`INSERT INTO clusters (id, name, created_at) VALUES (${randomBytes(8).toString("hex")}, ${name}, ${this.now()})`;
  }

  /** Adds a node to a cluster and returns the token its executor reports with (only for this hostname). */
  async addNode(hostname: string, cluster: string): Promise<{ token: string; tokenId: string }> {
    if (!hostnamePattern.test(hostname)) throw new UsageError(`"${hostname}" is not a hostname`);
    const t = newToken("node");
    const now = this.now();
    await this.sql.begin(async (tx) => {
      const [c] = await tx`SELECT id FROM clusters WHERE name = ${cluster}`;
      if (!c) throw new NotFoundError(`no cluster ${cluster}: create it with 'beaker server cluster create ${cluster}'`);
      const [existing] = await tx`SELECT cluster_id FROM nodes WHERE hostname = ${hostname}`;
      if (existing && existing.cluster_id !== c.id) throw new ConflictError(`node ${hostname} is already in another cluster`);
      if (!existing) await tx`INSERT INTO nodes (hostname, cluster_id, registered_at) VALUES (${hostname}, ${c.id}, ${now})`;
      await tx`INSERT INTO tokens (id, kind, node_hostname, hash, created_at) VALUES (${t.id}, ${"node"}, ${hostname}, ${t.hash}, ${now})`;
    });
    return { token: t.token, tokenId: t.id };
  }

  async setCordoned(hostname: string, cordoned: boolean): Promise<void> {
    const result = await this.sql`UPDATE nodes SET cordoned = ${cordoned ? 1 : 0} WHERE hostname = ${hostname}`;
    if (result.count === 0) throw new NotFoundError(`no node ${hostname}`);
  }

  /**
   * The common heartbeat in one statement: the node token is checked inside it (so a revoked token fails at the next
   * report), `last_seen` moves, and the answer says whether the stored report has this digest. Null when the token or
   * the node does not match; the caller then finds out which, for the right error. The hash is compared in SQL, not in
   * constant time: timing could at most reveal the SHA-256 of a 32-byte random secret, from which no token can be made.
   */
  async touchNode(hostname: string, token: string, digest: string): Promise<HeartbeatAnswer | null> {
    const parsed = parseToken(token);
    if (!parsed || parsed.kind !== "node") return null;
    const [row] = await this.db.reports`
      UPDATE nodes SET last_seen = ${this.now()}
      WHERE hostname = ${hostname} AND EXISTS (
        SELECT 1 FROM tokens t WHERE t.id = ${parsed.id} AND t.hash = ${hashSecret(parsed.secret)} AND t.kind = 'node'
          AND t.node_hostname = nodes.hostname AND t.revoked_at IS NULL)
      RETURNING cordoned, state_digest, (SELECT name FROM clusters WHERE clusters.id = nodes.cluster_id) AS cluster`;
    if (!row) return null;
    return { cordoned: num(row.cordoned) === 1, cluster: String(row.cluster), unchanged: row.state_digest === digest };
  }

  /**
   * A node's report that differs from the stored one: its GPUs and sessions (JSON) in node_reports, then the counts,
   * the users with sessions and the digest in its row. In that order, without a transaction: should the second write
   * fail, the old digest makes the next report write both again; a reader in between sees new sessions, old counts.
   */
  async heartbeat(hostname: string, beat: Heartbeat, digest: string | null = null): Promise<HeartbeatAnswer> {
    const now = this.now();
    const sessions = normalizeSessions(beat.sessions, now);
    const stored = await this.db.reports`
      INSERT INTO node_reports (hostname, gpus, sessions)
      SELECT hostname, ${JSON.stringify(beat.gpus)}, ${JSON.stringify(sessions)} FROM nodes WHERE hostname = ${hostname}
      ON CONFLICT (hostname) DO UPDATE SET gpus = excluded.gpus, sessions = excluded.sessions`;
    if (stored.count === 0) throw new NotFoundError(`no node ${hostname}: add it with 'beaker server node add ${hostname} --cluster NAME'`);
    const [row] = await this.db.reports`
      UPDATE nodes SET cpus = ${beat.cpus}, memory_bytes = ${beat.memoryBytes}, gpu_type = ${gpuTypeOf(beat.gpus)},
        gpus_total = ${beat.gpus.length}, gpus_free = ${beat.gpus.filter(gpuIsFree).length}, version = ${beat.version},
        session_users = ${sessionUsers(sessions)}, state_digest = ${digest}, last_seen = ${now}
      WHERE hostname = ${hostname}
      RETURNING cordoned, (SELECT name FROM clusters WHERE clusters.id = nodes.cluster_id) AS cluster`;
    if (!row) throw new NotFoundError(`no node ${hostname}`);
    return { cordoned: num(row.cordoned) === 1, cluster: String(row.cluster), unchanged: false };
  }

  /** Counts in SQL: a node is online when heard from within `offlineAfterMs` and not cordoned (as `nodeStatus` says). */
  async listClusters(): Promise<ClusterInfo[]> {
    const since = this.now() - offlineAfterMs;
    const rows = await this.sql`
      SELECT c.name, count(n.hostname) AS nodes,
        sum(CASE WHEN n.last_seen >= ${since} AND n.cordoned = 0 THEN 1 ELSE 0 END) AS online,
        sum(CASE WHEN n.last_seen >= ${since} AND n.cordoned = 0 THEN n.gpus_free ELSE 0 END) AS gpus_free,
        sum(n.gpus_total) AS gpus_total
      FROM clusters c LEFT JOIN nodes n ON n.cluster_id = c.id
      GROUP BY c.id, c.name ORDER BY c.name`;
    return rows.map((r: Record<string, unknown>) => ({
      name: String(r.name),
      nodes: num(r.nodes),
      nodesOnline: num(r.online ?? 0),
      gpusFree: num(r.gpus_free ?? 0),
      gpusTotal: num(r.gpus_total ?? 0),
    }));
  }

  /** Every node, or one cluster's (an unknown cluster is an error, an empty one is not). */
  async listNodes(cluster?: string): Promise<NodeInfo[]> {
    const sql = this.sql;
    const rows = await sql`
      SELECT c.name AS cluster, n.hostname, n.cpus, n.memory_bytes, n.gpu_type, n.gpus_total, n.gpus_free, n.cordoned, n.version, n.last_seen
      FROM clusters c ${cluster === undefined ? sql`JOIN` : sql`LEFT JOIN`} nodes n ON n.cluster_id = c.id
      ${cluster === undefined ? sql`` : sql`WHERE c.name = ${cluster}`}
      ORDER BY n.hostname`;
    if (cluster !== undefined && rows.length === 0) throw new NotFoundError(`no cluster ${cluster}`);
    const now = this.now();
    return rows.filter((r: Record<string, unknown>) => r.hostname !== null).map((r: Record<string, unknown>) => nodeFrom(r, now));
  }

  /** One cluster's nodes with what picking a node needs: each GPU's model and state, and the queue's length. */
  async listPlacement(cluster: string): Promise<PlacementNodeInfo[]> {
    const rows = await this.sql`
      SELECT c.name AS cluster, n.hostname, n.cpus, n.memory_bytes, n.gpu_type, n.gpus_total, n.gpus_free, n.cordoned, n.version,
        n.last_seen, r.gpus, r.sessions
      FROM clusters c LEFT JOIN nodes n ON n.cluster_id = c.id LEFT JOIN node_reports r ON r.hostname = n.hostname
      WHERE c.name = ${cluster}
      ORDER BY n.hostname`;
    if (rows.length === 0) throw new NotFoundError(`no cluster ${cluster}`);
    const now = this.now();
    return rows.filter((r: Record<string, unknown>) => r.hostname !== null).map((r: Record<string, unknown>) => placementFrom(r, now));
  }

  /** One node with its GPUs (why each unavailable one is, in words for this viewer) and everyone's sessions there. */
  async getNode(hostname: string, viewer: UserInfo): Promise<NodeDetails> {
    const [row] = await this.sql`
      SELECT n.*, c.name AS cluster, r.gpus, r.sessions
      FROM nodes n JOIN clusters c ON c.id = n.cluster_id LEFT JOIN node_reports r ON r.hostname = n.hostname
      WHERE n.hostname = ${hostname}`;
    if (!row) throw new NotFoundError(`no node ${hostname}`);
    return { ...nodeFrom(row, this.now()), gpus: viewGpus(row.gpus, viewer.admin), sessions: sessionsFrom(row.sessions, hostname) };
  }

  /**
   * Sessions as nodes last reported them: the viewer's own, or everyone's for an admin. `everyone` (a node's page)
   * shows who holds which GPUs to any signed-in user, as `beaker node gpus` does on the node. Only the JSON of nodes
   * whose `session_users` may name the viewer is read.
   */
  async listSessions(viewer: UserInfo, filter: { cluster?: string; node?: string; everyone?: boolean } = {}): Promise<Array<NodeSession & { node: string }>> {
    const sql = this.sql;
    let clusterId: unknown;
    if (filter.cluster !== undefined) {
      const [known] = await sql`SELECT id FROM clusters WHERE name = ${filter.cluster}`;
      if (!known) throw new NotFoundError(`no cluster ${filter.cluster}`);
      clusterId = known.id;
    }
    const mineOnly = !viewer.admin && !filter.everyone;
    const rows = await sql`
      SELECT n.hostname, r.sessions FROM nodes n JOIN node_reports r ON r.hostname = n.hostname
      WHERE n.session_users <> ''
        ${clusterId === undefined ? sql`` : sql`AND n.cluster_id = ${clusterId}`}
        ${filter.node === undefined ? sql`` : sql`AND n.hostname = ${filter.node}`}
        ${mineOnly ? sql`AND n.session_users LIKE ${usersLike(viewer.name)} ESCAPE '\\'` : sql``}`;
    return rows
      .flatMap((r: Record<string, unknown>) => sessionsFrom(r.sessions, String(r.hostname)))
      .filter((s: NodeSession) => !mineOnly || s.user === viewer.name)
      .sort((a: NodeSession, b: NodeSession) => a.createdAt.localeCompare(b.createdAt));
  }
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
