/** Issue 26 finding 1, the pure parts: where --mount sources may come from, and which paths runc would make inside a bind mount. */
import { describe, expect, test } from "bun:test";
import { ForbiddenError } from "../../src/errors.ts";
import { checkMount, isForbiddenSource, sourceAllowed, sourcePolicy } from "../../src/executor/sessions/mounts.ts";
import { planNestedPaths } from "../../src/executor/sessions/mountpoints.ts";

const ada = { uid: 1000, home: "/home/ada" };
const node = { mountPaths: ["/net", "/opt/datasets", "/missing"], refused: ["/srv/beaker/state", "/srv/beaker/run"] };
/** Paths as they resolve on this imaginary node: /net is a link to /mnt/net, /missing does not exist. */
const resolve = (path: string) => (path === "/missing" ? null : path === "/net" ? "/mnt/net" : path);

describe("--mount sources", () => {
  const user = sourcePolicy(node, ada, resolve);
  const root = sourcePolicy(node, { uid: 0, home: "/root" }, resolve);
  test.each([
    ["/home/ada/data", true, true],
    ["/home/ada", true, true],
    ["/home/adam", false, true],
    ["/home/bob/x", false, true],
    ["/net/proj", true, true],
    ["/mnt/net/proj", true, true],
    ["/opt/datasets/imagenet", true, true],
    ["/opt/other", false, false],
    ["/opt", false, false],
    ["/var", false, false],
    ["/var/tmp", false, false],
    ["/usr/local", false, false],
    ["/srv/data", false, false],
    ["/tmp/x", false, true],
    ["/missing/x", false, true],
    ["/etc", false, false],
    ["/srv/beaker/state/mounts", false, false],
    ["/srv/beaker", false, false],
    ["/", false, false],
  ])("%s: a user %p, root %p", (path, forUser, forRoot) => {
    expect(sourceAllowed(path, user)).toBe(forUser);
    expect(sourceAllowed(path, root)).toBe(forRoot);
  });
  test.each([
    ["/var", "--mount /var: not allowed in a session (only your home and this node's mountPaths: /net, /opt/datasets)"],
    ["/home/ada/../bob/x", "--mount /home/ada/../bob/x: /home/bob/x is not allowed in a session (only your home and this node's mountPaths: /net, /opt/datasets)"],
  ])("%s is refused by name, before anything is opened", (source, message) => {
    const caller = { ...ada, name: "ada", gid: 1000, groups: [1000], gecos: "" };
    expect(() => checkMount({ source, target: "/data", readOnly: false }, caller, user)).toThrow(new ForbiddenError(message));
  });
  test("only the mountPaths that exist are listed", () => {
    expect(user.listed).toEqual(["/net", "/opt/datasets"]);
  });
  test.each(["/", "/usr", "/var", "/opt"])("a home of %s gives no folder of its own", (home) => {
    const policy = sourcePolicy({ mountPaths: [], refused: [] }, { uid: 1, home }, resolve);
    expect(policy.roots).toEqual([]);
    expect(sourceAllowed(`${home === "/" ? "" : home}/x`, policy)).toBe(false);
  });
  test.each([
    ["/var/lib", true],
    ["/var", true],
    ["/var/lib/dockerx", false],
    ["/data", false],
  ])("a folder that holds a control path is one: %s %p", (path, forbidden) => {
    expect(isForbiddenSource(path)).toBe(forbidden);
  });
});

describe("paths runc would make inside a bind mount", () => {
  const home = { Source: "/home/ada", Target: "/home/ada" };
  const staged = { Source: "/var/lib/beaker/mounts/s1/0", Target: "/data" };
  test("nothing nested, the working directory the home: nothing to make", () => {
    expect(planNestedPaths([home, staged, { Source: "/b", Target: "/usr/local/bin/beaker" }], "/home/ada")).toEqual([]);
  });
  test("a working directory inside the home, or a mount's own target: only the first", () => {
    expect(planNestedPaths([home, staged], "/home/ada/w/x")).toEqual([
      { path: "/home/ada/w/x", flag: "--workdir", parentTarget: "/home/ada", hostDir: "/home/ada", parts: ["w", "x"], source: null },
    ]);
    expect(planNestedPaths([home, staged], "/data")).toEqual([]);
    expect(planNestedPaths([home, staged], "/tmp/x")).toEqual([]);
  });
  test("a target is made in the deepest mount above it, at its host folder", () => {
    const inner = { Source: "/var/lib/beaker/mounts/s1/1", Target: "/data/a/b" };
    const innermost = { Source: "/home/ada/f", Target: "/data/a/b/c/file" };
    expect(planNestedPaths([innermost, home, inner, staged], "/home/ada")).toEqual([
      { path: "/data/a/b/c/file", flag: "--mount", parentTarget: "/data/a/b", hostDir: "/var/lib/beaker/mounts/s1/1", parts: ["c", "file"], source: "/home/ada/f" },
      { path: "/data/a/b", flag: "--mount", parentTarget: "/data", hostDir: "/var/lib/beaker/mounts/s1/0", parts: ["a", "b"], source: "/var/lib/beaker/mounts/s1/1" },
    ]);
  });
  test("Beaker's own mounts count: the home inside a user's mount at /home", () => {
    const overHome = { Source: "/var/lib/beaker/mounts/s1/0", Target: "/home" };
    expect(planNestedPaths([home, overHome], "/home/ada")).toEqual([
      { path: "/home/ada", flag: "--mount", parentTarget: "/home", hostDir: "/var/lib/beaker/mounts/s1/0", parts: ["ada"], source: "/home/ada" },
    ]);
  });
  test("a sibling whose name starts the same is not inside", () => {
    expect(planNestedPaths([staged, { Source: "/x", Target: "/database" }], "/")).toEqual([]);
  });
});
