/**
 * What the CLI loads before it knows the command: the modules reached from the entry points by static imports (the
 * bundle evaluates a dynamically imported module only when that import runs). A static import of the server, the SSH
 * server, the upgrade pipeline, the executor daemon or a heavy package anywhere in the CLI makes every start slower.
 */
import { expect, test } from "bun:test";
import { dirname, relative, resolve } from "node:path";

const src = resolve(import.meta.dir, "../../src");
const transpiler = new Bun.Transpiler({ loader: "ts" });

/** The source files and packages `entry` loads at once (type-only imports are dropped by the transpiler). */
async function staticClosure(entry: string): Promise<{ files: Set<string>; packages: Set<string>; lazy: Set<string> }> {
  const files = new Set<string>();
  const packages = new Set<string>();
  const lazy = new Set<string>();
  const walk = async (file: string): Promise<void> => {
    const name = relative(src, file);
    if (files.has(name)) return;
    files.add(name);
    for (const { kind, path } of transpiler.scanImports(await Bun.file(file).text())) {
      const local = path.startsWith(".");
      if (kind === "dynamic-import") lazy.add(local ? relative(src, resolve(dirname(file), path)) : path);
      else if (local) await walk(resolve(dirname(file), path));
      else packages.add(path);
    }
  };
  await walk(resolve(src, entry));
  return { files, packages, lazy };
}

test("--version loads nothing but the version: the entry point imports the CLI lazily", async () => {
  const { files, packages, lazy } = await staticClosure("main.ts");
  expect([...files].sort()).toEqual(["main.ts", "version.ts"]);
  expect([...packages]).toEqual([]);
  expect([...lazy]).toEqual(["cli/main.ts"]);
});

test("the CLI's start loads no server, SSH server, upgrade, executor daemon or package beyond cac", async () => {
  const { files, packages, lazy } = await staticClosure("cli/main.ts");
  for (const heavy of ["server/run.ts", "ssh/server.ts", "update/upgrade.ts", "executor/daemon.ts", "gpu/discover.ts"]) {
    expect(files.has(heavy)).toBe(false);
    expect(lazy.has(heavy)).toBe(true);
  }
  expect(files.has("util/trace.ts")).toBe(true);
  const outside = [...packages].filter((p) => p !== "bun" && !p.startsWith("node:"));
  expect(outside).toEqual(["cac"]);
});
