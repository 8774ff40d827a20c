/** Store tests share one migrated SQLite file per test file and start each test on empty tables (fast: no migration). */
import type { Db } from "../src/server/db.ts";

export async function emptyTables(db: Db): Promise<void> {
  const tables = (await db.sql`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('schema_migrations') AND name NOT LIKE 'sqlite_%'`) as Array<{ name: string }>;
  await db.sql.unsafe("PRAGMA foreign_keys = OFF");
  for (const { name } of tables) await db.sql.unsafe(`DELETE FROM ${name}`);
  await db.sql.unsafe("PRAGMA foreign_keys = ON");
}
