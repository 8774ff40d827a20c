import { UsageError } from "../errors.ts";
import { log } from "../util/log.ts";
import { buildInfo } from "../version.ts";
import { allowJit } from "../util/jit.ts";
import { createHandler } from "./app.ts";
import { migrate, openDb } from "./db.ts";
import { Store } from "./store.ts";
import { portWebSocket } from "./ports/proxy.ts";
import { Ports } from "./ports/routes.ts";
import type { NodeLinks } from "../link/types.ts";

/** Bodies to sessions' ports are theirs to bound; Beaker's own routes read at most 2 MiB (app.ts). */
const portBodyLimit = 16 * 1024 ** 3;

/** Until the node link is wired in, no node is reachable through it. */
const noLinks: NodeLinks = { get: () => null };

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
  const ports = options.portsDomain ? new Ports({ store, db, portsDomain: options.portsDomain, links: noLinks, now: Date.now, log }) : null;
  const server = Bun.serve({
    hostname,
    port,
    maxRequestBodySize: ports ? portBodyLimit : 2 * 1024 * 1024,
    fetch: createHandler({ store, releasesDir: options.releasesDir, log, ports }),
    websocket: portWebSocket,
  });
  if (ports) log(`sessions' ports in the browser at *.${options.portsDomain}`);
  log(`beaker server ${buildInfo.version} listening on http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${server.port}`);
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", () => resolve());
    process.once("SIGINT", () => resolve());
  });
  await server.stop();
  ports?.close();
  await db.close();
  log("server stopped");
}

/** For the admin commands: the store at --db, migrated. */
export async function openStore(url: string): Promise<Store> {
  const db = openDb(url);
  await migrate(db);
  return new Store(db);
}
