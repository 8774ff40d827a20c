import { SQL } from "bun";
import { mkdirSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { ConfigError } from "../errors.ts";

export const defaultDbUrl = "sqlite:///var/lib/beaker/server.db";

export interface Db {
  sql: SQL;
  /**
   * What writes nodes' reports. On PostgreSQL a pool of its own whose commits do not wait for the disk
   * (synchronous_commit off): a report lost in a database crash is sent again within seconds, and the older digest
   * the crash leaves makes the node write it whole. Everything else (tokens, accounts) commits durably, and
   * queries never wait behind heartbeats for a connection. On SQLite the same connection (WAL, synchronous NORMAL).
   */
  reports: SQL;
  dialect: "sqlite" | "postgres";
  /** The URL without a password, for logs. */
  display: string;
  close(): Promise<void>;
}

/**
 * Opens the store: `sqlite:///abs/path`, `sqlite://rel/path`, a bare file path, or `postgres://...`. The same schema and
 * queries run on both (portable SQL: TEXT, BIGINT milliseconds, INTEGER booleans, ON CONFLICT upserts).
 */
export function openDb(url: string): Db {
  if (/^postgres(ql)?:\/\//.test(url)) {
    // Connections open on first use: an admin command that never writes a report never opens the second pool.
    const sql = new SQL(url, { max: 10, idleTimeout: 30 });
    const reports = new SQL(url, { max: 10, idleTimeout: 30, connection: { synchronous_commit: "off" } });
    const close = async () => void (await Promise.all([sql.close(), reports.close()]));
    return { sql, reports, dialect: "postgres", display: url.replace(/\/\/([^:/@]+):[^@]*@/, "//$1:***@"), close };
  }
  const path = url.startsWith("sqlite://") ? url.slice("sqlite://".length) : url;
  if (!path || /^[a-z]+:\/\//.test(path)) throw new ConfigError(`--db ${url}: use sqlite:///path/to/server.db or postgres://user@host/db`);
  const file = isAbsolute(path) ? path : resolve(path);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const sql = new SQL({ adapter: "sqlite", filename: file, create: true, readwrite: true });
  return { sql, reports: sql, dialect: "sqlite", display: `sqlite://${file}`, close: () => sql.close() };
}

/** Each migration runs once, in order; several servers starting at once take turns. */
const migrations: string[] = [
  `CREATE TABLE users (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     admin INTEGER NOT NULL DEFAULT 0,
     created_at BIGINT NOT NULL
   );
   CREATE TABLE tokens (
     id TEXT PRIMARY KEY,
     kind TEXT NOT NULL,
     user_id TEXT REFERENCES users(id),
     node_hostname TEXT,
     hash TEXT NOT NULL,
     created_at BIGINT NOT NULL,
     revoked_at BIGINT,
     last_used_at BIGINT
   );
   CREATE INDEX tokens_user ON tokens(user_id);
   CREATE TABLE web_sessions (
     id_hash TEXT PRIMARY KEY,
     user_id TEXT NOT NULL REFERENCES users(id),
     token_id TEXT NOT NULL,
     expires_at BIGINT NOT NULL
   );
   CREATE TABLE clusters (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     created_at BIGINT NOT NULL
   );
   CREATE TABLE nodes (
     hostname TEXT PRIMARY KEY,
     cluster_id TEXT NOT NULL REFERENCES clusters(id),
     cpus INTEGER NOT NULL DEFAULT 0,
     memory_bytes BIGINT NOT NULL DEFAULT 0,
     gpu_type TEXT,
     gpus_total INTEGER NOT NULL DEFAULT 0,
     gpus_free INTEGER NOT NULL DEFAULT 0,
     gpus TEXT NOT NULL DEFAULT '[]',
     cordoned INTEGER NOT NULL DEFAULT 0,
     version TEXT,
     registered_at BIGINT,
     last_seen BIGINT
   );
   CREATE INDEX nodes_cluster ON nodes(cluster_id);
   CREATE TABLE node_sessions (
     node_hostname TEXT NOT NULL REFERENCES nodes(hostname),
     id TEXT NOT NULL,
     name TEXT NOT NULL,
     user_name TEXT NOT NULL,
     gpus TEXT NOT NULL,
     image TEXT NOT NULL,
     status TEXT NOT NULL,
     created_at BIGINT NOT NULL,
     started_at BIGINT,
     PRIMARY KEY (node_hostname, id)
   );
   CREATE INDEX node_sessions_user ON node_sessions(user_name);`,
  // What a node reports moves to node_reports (its GPUs and sessions as JSON, written only when the report changed), so
  // the row every heartbeat rewrites stays small: counts, last_seen, the report's digest and the users with sessions
  // there (",alice,bob,", what `session list` filters on). A later migration that changes what is derived from
  // reports must set state_digest to NULL, so every node writes its report again. Sessions are not carried over: nodes
  // report them again within seconds.
  `CREATE TABLE node_reports (
     hostname TEXT PRIMARY KEY REFERENCES nodes(hostname),
     gpus TEXT NOT NULL DEFAULT '[]',
     sessions TEXT NOT NULL DEFAULT '[]'
   );
   INSERT INTO node_reports (hostname, gpus) SELECT hostname, gpus FROM nodes;
   ALTER TABLE nodes DROP COLUMN gpus;
   ALTER TABLE nodes ADD COLUMN state_digest TEXT;
   ALTER TABLE nodes ADD COLUMN session_users TEXT NOT NULL DEFAULT '';
   DROP TABLE node_sessions;
   DROP INDEX nodes_cluster;
   CREATE INDEX nodes_cluster ON nodes(cluster_id, hostname);`,
  // Nothing ever wrote when a token was last used (a write per request for a column nothing shows).
  `ALTER TABLE tokens DROP COLUMN last_used_at;`,
  // Ports in the browser (src/server/ports/logins.ts): one-time tickets from the main origin, and the sign-ins they
  // become on a port origin; both name the web session (its hash), so they end with it.
  `CREATE TABLE port_tickets (
     id_hash TEXT PRIMARY KEY,
     web_session TEXT NOT NULL,
     session_id TEXT NOT NULL,
     port INTEGER NOT NULL,
     expires_at BIGINT NOT NULL
   );
   CREATE TABLE port_logins (
     id_hash TEXT PRIMARY KEY,
     web_session TEXT NOT NULL,
     session_id TEXT NOT NULL,
     port INTEGER NOT NULL
   );
   CREATE INDEX port_logins_web ON port_logins(web_session);`,
];

export async function migrate(db: Db): Promise<number> {
  const { sql } = db;
  if (db.dialect === "sqlite") {
    // WAL: readers never wait for the writer, and a commit is not an fsync of the whole journal.
    for (const pragma of ["journal_mode = WAL", "synchronous = NORMAL", "busy_timeout = 5000", "foreign_keys = ON"]) await sql.unsafe(`PRAGMA ${pragma}`);
  }
  // One transaction: on PostgreSQL an advisory lock first, so replicas starting together take turns (even the
  // CREATE TABLE IF NOT EXISTS races otherwise); SQLite serialises writers by itself.
  return sql.begin(async (tx) => {
    if (db.dialect === "postgres") await tx`SELECT pg_advisory_xact_lock(4242)`;
    await tx.unsafe("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)");
    let applied = 0;
    for (let version = 1; version <= migrations.length; version++) {
      const [done] = await tx`SELECT version FROM schema_migrations WHERE version = ${version}`;
      if (done) continue;
      for (const statement of migrations[version - 1]!.split(/;\s*$/m).map((s) => s.trim()).filter(Boolean)) await tx.unsafe(statement);
      await tx`INSERT INTO schema_migrations (version, applied_at) VALUES (${version}, ${Date.now()})`;
      applied++;
    }
    return applied;
  });
}
