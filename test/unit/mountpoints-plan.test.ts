/** planNestedPaths' edges: a mount over /, mounts with no source, nested parents in either order, untidy paths. */
import { describe, expect, test } from "bun:test";
import { planNestedPaths } from "../../src/executor/sessions/mountpoints.ts";

describe("planNestedPaths", () => {
  test("a mount at / holds every other path", () => {
    expect(planNestedPaths([{ Source: "/h", Target: "/" }], "/work/x")).toEqual([
      { path: "/work/x", flag: "--workdir", parentTarget: "/", hostDir: "/h", parts: ["work", "x"], source: null },
    ]);
  });
  test("a mount without a source or a target (a volume, a tmpfs) holds nothing and needs nothing", () => {
    expect(planNestedPaths([{ Target: "/data" }, { Source: "/s" }], "/data/x")).toEqual([]);
    expect(planNestedPaths([{ Source: "/h", Target: "/data" }, { Target: "/data/t" }], "/data")).toEqual([]);
  });
  test.each([
    ["shallower first", [{ Source: "/h1", Target: "/data" }, { Source: "/h2", Target: "/data/sub" }]],
    ["deeper first", [{ Source: "/h2", Target: "/data/sub" }, { Source: "/h1", Target: "/data" }]],
  ])("the deepest mount above a path is its parent, %s", (_, mounts) => {
    const three = [...mounts, { Source: "/h3", Target: "/data/sub/deeper" }];
    expect(planNestedPaths(three, "/data/sub/w").find((p) => p.flag === "--workdir")).toEqual(
      { path: "/data/sub/w", flag: "--workdir", parentTarget: "/data/sub", hostDir: "/h2", parts: ["w"], source: null },
    );
    expect(planNestedPaths(three.reverse(), "/data/sub/w").find((p) => p.flag === "--workdir")?.hostDir).toBe("/h2");
  });
  test("empty names in a path are not parts", () => {
    expect(planNestedPaths([{ Source: "/h", Target: "/data" }], "/data/a//b/")[0]?.parts).toEqual(["a", "b"]);
  });
  test("a working directory that is the mount itself, written with a slash: nothing to make", () => {
    expect(planNestedPaths([{ Source: "/h", Target: "/data" }], "/data/")).toEqual([]);
    expect(planNestedPaths([{ Source: "/h", Target: "/data" }], "/data//")).toEqual([]);
  });
});
