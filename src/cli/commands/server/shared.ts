import { defaultDbUrl } from "../../../server/db.ts";
import type { Store } from "../../../server/store.ts";
import { UsageError } from "../../../errors.ts";
import type { OptionSpec } from "../../command.ts";
import type { Factory } from "../../factory.ts";

export const dbOption = {
  flags: "--db <url>",
  description: `Store: sqlite:///path or postgres://... (env BEAKER_SERVER_DB; default ${defaultDbUrl})`,
  kind: "string",
} as const satisfies OptionSpec;

/** `--db`, else BEAKER_SERVER_DB, else the default store. */
export function dbUrl(db: string | undefined, factory: Factory): string {
  return db ?? factory.env.BEAKER_SERVER_DB ?? defaultDbUrl;
}

/** The server's code (store, API, pages) loads for the server commands alone, not at every CLI start. */
export const loadServer = () => import("../../../server/run.ts");

/** Runs an admin action against the store at `--db` and closes it, whatever happens. */
export async function withStore<T>(db: string | undefined, factory: Factory, action: (store: Store) => Promise<T>): Promise<T> {
  const { openStore } = await loadServer();
  const store = await openStore(dbUrl(db, factory));
  try {
    return await action(store);
  } finally {
    await store.db.close();
  }
}

export function need(value: string | undefined, what: string): string {
  if (!value) throw new UsageError(`missing argument: ${what}`);
  return value;
}
