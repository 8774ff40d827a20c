import { UsageError } from "../errors.ts";
import { log } from "../util/log.ts";
import { buildInfo } from "../version.ts";
import { allowJit } from "../util/jit.ts";
import { createApp } from "./app.ts";
import { LinkHub, linkUpgraded } from "./links.ts";
import { migrate, openDb } from "./db.ts";
import { Store } from "./store.ts";
import { Ports } from "./ports/routes.ts";
import type { Db } from "./db.ts";

/** Bodies to sessions' ports are theirs to bound; Beaker's own routes read at most 2 MiB (app.ts). */
const portBodyLimit = 16 * 1024 ** 3;

/** "8080", ":8080", "0.0.0.0:8080", "[::1]:8080" -> hostname and port. Pure. */
export function parseListen(listen: string): { hostname: string; port: number } {
  const text = listen.trim();
  const m = /^\d+$/.test(text) ? [text, undefined, undefined, text] : /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--listen "${listen}" must be PORT or HOST:PORT`);
  return { hostname: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/** Opens the store (migrating it), then serves until SIGTERM/SIGINT. */
export async function runServer(options: { listen: string; db: string; releasesDir: string | null; portsDomain: string | null }): Promise<void> {
  allowJit();
  const { hostname, port } = parseListen(options.listen);
  const db = openDb(options.db);
  const applied = await migrate(db);
  log(`store ${db.display}${applied ? ` (applied ${applied} migration${applied === 1 ? "" : "s"})` : ""}`);
  const store = new Store(db);
  const served = serveBeaker({ hostname, port, store, db, releasesDir: options.releasesDir, log, portsDomain: options.portsDomain });
  if (options.portsDomain) log(`sessions' ports in the browser at *.${options.portsDomain}`);
  log(`beaker server ${buildInfo.version} listening on http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${served.port}`);
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", () => resolve());
    process.once("SIGINT", () => resolve());
  });
  await served.stop();
  await db.close();
  log("server stopped");
}

export interface ServedBeaker {
  port: number;
  /** The nodes' links, for what relays to a node. */
  links: LinkHub;
  /** Ends the nodes' links and stops listening; `force` also cuts requests in flight (a crash, for tests). */
  stop(force?: boolean): Promise<void>;
}

/** The server on an open store: the API, the pages and the nodes' links (also what tests run in their own process). */
export function serveBeaker(options: { hostname: string; port: number; store: Store; db: Db; releasesDir: string | null; log: (line: string) => void; portsDomain?: string | null }): ServedBeaker {
  const links = new LinkHub(options.log);
  const ports = options.portsDomain ? new Ports({ store: options.store, db: options.db, portsDomain: options.portsDomain, links, now: Date.now, log: options.log }) : null;
  const app = createApp({ store: options.store, releasesDir: options.releasesDir, log: options.log, links, ports }, links.websocket, linkUpgraded);
  const server = Bun.serve({
    hostname: options.hostname,
    port: options.port,
    maxRequestBodySize: ports ? portBodyLimit : 2 * 1024 * 1024,
    fetch: app.fetch,
    websocket: app.websocket,
  });
  return {
    port: server.port ?? options.port,
    links,
    stop: async (force = false) => {
      links.closeAll();
      await server.stop(force);
      ports?.close();
    },
  };
}

/** For the admin commands: the store at --db, migrated. */
export async function openStore(url: string): Promise<Store> {
  const db = openDb(url);
  await migrate(db);
  return new Store(db);
}
