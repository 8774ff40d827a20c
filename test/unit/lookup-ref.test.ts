/** Session references: a full ID wins over a longer ID it prefixes and over a name that spells it; ownRef is the caller's own. */
import { describe, expect, test } from "bun:test";
import type { SessionInfo } from "../../src/executor/api-types.ts";
import { ownRef, resolveRef } from "../../src/executor/sessions/lookup.ts";
import { NotFoundError } from "../../src/errors.ts";

const info = (id: string, name: string, uid: number, user: string) => ({ id, name, uid, user }) as unknown as SessionInfo;

describe("resolveRef: a full ID among the caller's own", () => {
  const sessions = [
    info("abc123", "train", 1000, "ann"),
    info("abc123old", "train-old", 1000, "ann"),
    info("ff0000", "abc123old", 1000, "ann"),
    info("dd0000", "x", 1001, "bob"),
  ];
  const resolve = (uid: number, ref: string) => resolveRef(sessions, (s) => s, uid, ownRef(ref)).id;

  test("an ID that is also the prefix of another's ID is that session, not an ambiguous prefix", () => {
    expect(resolve(1000, "abc123")).toBe("abc123");
  });
  test("an ID is looked up before names: a session named like another's ID does not capture it", () => {
    expect(resolve(1000, "abc123old")).toBe("abc123old");
  });
});

describe("ownRef", () => {
  test("names the caller's own sessions: no user", () => {
    expect(ownRef("train")).toEqual({ ref: "train", user: null });
  });
  test("through resolveRef, root's own reference does not look among another user's names", () => {
    const sessions = [info("aa0000", "dev", 1001, "bob"), info("bb0000", "dev", 0, "root")];
    expect(resolveRef(sessions, (s) => s, 0, ownRef("dev")).id).toBe("bb0000");
    expect(() => resolveRef([sessions[0]!], (s) => s, 0, ownRef("dev"))).toThrow(new NotFoundError("no session dev of yours on this node"));
  });
});
