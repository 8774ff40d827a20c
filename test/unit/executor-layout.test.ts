/**
 * The executor's rooms (docs/ARCHITECTURE.md "Layout"): each concern in its folder, imports going one way only, and no
 * circle between any two files, type imports included. A file that reaches back up (the lifecycle importing the GPU-use
 * monitor, say) fails here with the path it closes.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = resolve(import.meta.dir, "../..");
const executor = join(root, "src/executor");

/** Each room and the rooms it may import; the files at the top (daemon, routes, client) may import any room. */
const rooms: Record<string, string[]> = {
  network: [],
  claims: [],
  sessions: ["claims", "network"],
  gpu: ["claims", "sessions"],
  slurm: ["claims", "sessions"],
  terminals: ["sessions"],
  link: ["sessions", "terminals", "claims"],
};
/** Top-level files every room may use: the wire's types and their checks. */
const shared = new Set(["api-types.ts", "validate.ts"]);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
}

/** The executor files a file imports (values and types), as paths relative to src/executor. */
function importsOf(file: string, text = readFileSync(file, "utf8")): string[] {
  const specs = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.\.?\/[^"']+)["']/g)].map((m) => m[1]!);
  return specs.map((s) => relative(executor, resolve(dirname(file), s))).filter((p) => !p.startsWith(".."));
}

const roomOf = (path: string) => (path.includes("/") ? path.split("/")[0]! : null);

/** Every circle of imports, each as the path that closes it. */
function circles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, "open");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "open") found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return found;
}

const graph = new Map(sources(executor).map((f) => [relative(executor, f), importsOf(f)]));

describe("the executor's layout", () => {
  test("every file lies in a room or is one of the top files, and every room is known", () => {
    const unknown = [...graph.keys()].map(roomOf).filter((r): r is string => r !== null && !(r in rooms));
    expect(unknown).toEqual([]);
  });

  test("rooms import only the rooms below them, and the wire's types", () => {
    const wrong: string[] = [];
    for (const [file, imports] of graph) {
      const room = roomOf(file);
      if (room === null) continue;
      for (const target of imports) {
        const other = roomOf(target);
        const allowed = other === room || (other === null ? shared.has(target) : rooms[room]!.includes(other));
        if (!allowed) wrong.push(`${file} -> ${target}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  test("no two files import each other, directly or around a circle", () => {
    expect(circles(graph).map((c) => c.join(" -> "))).toEqual([]);
  });

  test("the checks see a circle and a wrong-way import when there is one", () => {
    expect(circles(new Map([["a.ts", ["b.ts"]], ["b.ts", ["c.ts"]], ["c.ts", ["a.ts"]]]))).toEqual([["a.ts", "b.ts", "c.ts", "a.ts"]]);
    expect(circles(new Map([["a.ts", ["b.ts"]], ["b.ts", []]]))).toEqual([]);
    expect(importsOf(join(executor, "sessions/x.ts"), 'import type { G } from "../gpu/gpu-use.ts";\nimport { e } from "../../errors.ts";')).toEqual(["gpu/gpu-use.ts"]);
  });
});
