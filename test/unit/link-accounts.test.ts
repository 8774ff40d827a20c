/** Who a relayed request runs as (src/executor/link/accounts.ts), the linkUsers key, and the dialler's backoff. */
import { describe, expect, test } from "bun:test";
import { parseExecutorConfig } from "../../src/config/executor.ts";
import { ForbiddenError } from "../../src/errors.ts";
import { mapLinkAccount, passwdLookup, type LocalAccount } from "../../src/executor/link/accounts.ts";
import { backoffDelay, linkUrl } from "../../src/executor/link/dialer.ts";

const passwd: Record<string, number> = { root: 0, daemon: 1, nobody: 65534, www: 33, sys999: 999, alice: 1001, bob: 1002, edge: 1000 };
const asked: string[] = [];
const lookup = async (name: string): Promise<LocalAccount | null> => {
  asked.push(name);
  return Object.hasOwn(passwd, name) ? { name, uid: passwd[name]! } : null;
};

describe("mapping a Beaker account to a local one", () => {
  test("the same name, by default; linkUsers maps a name to another", async () => {
    expect(await mapLinkAccount("alice", {}, lookup)).toEqual({ name: "alice", uid: 1001 });
    expect(await mapLinkAccount("alice.smith", { "alice.smith": "alice" }, lookup)).toEqual({ name: "alice", uid: 1001 });
    expect(await mapLinkAccount("edge", {}, lookup)).toEqual({ name: "edge", uid: 1000 });
    // A map for one name leaves the others alone.
    expect(await mapLinkAccount("bob", { "alice.smith": "alice" }, lookup)).toEqual({ name: "bob", uid: 1002 });
  });

  test.each([
    ["root", {}, /uid 0/],
    ["admin", { admin: "root" }, /uid 0/],
    ["daemon", {}, /system account \(uid 1\)/],
    ["sys999", {}, /system account \(uid 999\)/],
    ["www", {}, /system account/],
    ["carol", {}, /no account on this node/],
    ["carol", { carol: "nosuch" }, /looked for nosuch/],
    ["constructor", {}, /no account/],
    ["__proto__", {}, /no account/],
    ["Root", {}, /not a Beaker account name/],
    ["../etc", {}, /not a Beaker account name/],
    ["", {}, /not a Beaker account name/],
  ] as Array<[string, Record<string, string>, RegExp]>)("%s (%o) is refused: 403", async (name, map, why) => {
    const err = await mapLinkAccount(name, map, lookup).catch((e) => e);
    expect(err).toBeInstanceOf(ForbiddenError);
    expect((err as Error).message).toMatch(why);
  });

  test("a name that is not a Beaker account name never reaches the lookup", async () => {
    asked.length = 0;
    for (const name of ["Root", "-x", "a b", "x".repeat(40)]) await mapLinkAccount(name, {}, lookup).catch(() => {});
    expect(asked).toEqual([]);
  });

  test("nobody (uid 65534) is an ordinary uid by number, and is allowed only if the admin maps to it", async () => {
    expect(await mapLinkAccount("nobody", {}, lookup)).toEqual({ name: "nobody", uid: 65534 });
  });

  test("getent's answer counts only for exactly the name asked (a numeric name is not a uid)", async () => {
    const lookupReal = passwdLookup();
    expect(await lookupReal("root")).toEqual({ name: "root", uid: 0 });
    expect(await lookupReal("0")).toBeNull();
    expect(await lookupReal("no-such-user-here")).toBeNull();
  });
});

describe("executor config: linkUsers", () => {
  test("a mapping of Beaker names to local names", () => {
    expect(parseExecutorConfig({ linkUsers: { "alice.smith": "alice", __proto__x: "b" } }, "c.yml").linkUsers).toEqual({ "alice.smith": "alice", __proto__x: "b" });
    expect(parseExecutorConfig({}, "c.yml").linkUsers).toEqual({});
    const own = parseExecutorConfig(JSON.parse('{"linkUsers": {"__proto__": "alice"}}'), "c.yml").linkUsers;
    expect(Object.hasOwn(own, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(own)).toBe(Object.prototype);
  });

  test.each([
    [["alice"], /must be a mapping/],
    [{ Alice: "alice" }, /not a Beaker account name/],
    [{ alice: "root" }, /never run as root/],
    [{ alice: "a b" }, /not a local account name/],
    [{ alice: 5 }, /not a local account name/],
  ])("%o is refused", (value, why) => {
    expect(() => parseExecutorConfig({ linkUsers: value }, "c.yml")).toThrow(why);
  });
});

describe("the dialler", () => {
  test("backoff: 1 s first, doubling, jittered between half and all, never past 30 s nor under 1 s", () => {
    expect(backoffDelay(0, 0)).toBe(1000);
    expect(backoffDelay(0, 0.999)).toBe(1000);
    expect(backoffDelay(1, 0)).toBe(1000);
    expect(backoffDelay(1, 0.999)).toBe(1999);
    expect(backoffDelay(3, 0)).toBe(4000);
    expect(backoffDelay(3, 0.5)).toBe(6000);
    expect(backoffDelay(5, 0.999)).toBeLessThanOrEqual(30_000);
    expect(backoffDelay(5, 0.999)).toBeGreaterThan(29_000);
    expect(backoffDelay(1000, 0)).toBe(15_000);
    expect(backoffDelay(1000, 0.999)).toBeLessThanOrEqual(30_000);
  });

  test("the link's URL: ws for http, wss for https, the node named, no token in it", () => {
    expect(linkUrl("http://srv:8080", "gpu-1")).toBe("ws://srv:8080/api/v1/nodes/link?node=gpu-1");
    expect(linkUrl("https://beaker.example/base/", "n")).toBe("wss://beaker.example/base/api/v1/nodes/link?node=n");
  });
});
