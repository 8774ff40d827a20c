/**
 * Beaker's git credential file (~/.beaker/git-credentials): what it keeps and in which order, what erase takes away,
 * and that a file it cannot trust is refused, never half read. Each test on its own file in a temp dir.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../../src/errors.ts";
import { BeakerCredentialStore, credentialMatches, credentialToKeep } from "../../src/git/store.ts";
import { removeDir, tempDir } from "../harness.ts";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));
const fresh = () => {
  const dir = tempDir("beaker-git-store-");
  dirs.push(dir);
  return new BeakerCredentialStore(join(dir, "nested", ".beaker", "git-credentials"));
};
const ada = { protocol: "https", host: "github.com", username: "ada", password: "p1" };
const bob = { protocol: "https", host: "github.com", username: "bob", password: "p2" };

describe("keeping credentials", () => {
  test("no file: nothing kept, nothing found, and nothing written by looking", () => {
    const store = fresh();
    expect(store.get({ protocol: "https", host: "github.com" })).toBeNull();
    expect(store.hosts()).toEqual([]);
    expect(existsSync(store.path)).toBe(false);
  });
  test("the first credential makes the file: version 2, 0600, in a 0700 directory", async () => {
    const store = fresh();
    await store.store(ada);
    expect(JSON.parse(readFileSync(store.path, "utf8"))).toEqual({ version: 2, credentials: [ada] });
    expect(statSync(store.path).mode & 0o777).toBe(0o600);
    expect(statSync(join(store.path, "..")).mode & 0o777).toBe(0o700);
    expect(store.get({ protocol: "https", host: "GitHub.com" })).toEqual(ada);
  });
  test("newest first; the same protocol, host and username replaces, another username does not", async () => {
    const store = fresh();
    await store.store(ada);
    await store.store(bob);
    expect(store.get({ protocol: "https", host: "github.com" })).toEqual(bob);
    expect(store.get({ protocol: "https", host: "github.com", username: "ada" })).toEqual(ada);
    await store.store({ ...ada, password: "p3" });
    expect(store.hosts()).toEqual([{ ...ada, password: "p3" }, bob]);
  });
  test("a credential for one path leaves the host's own in place, and keeps no path where git sent none", async () => {
    const store = fresh();
    await store.store(ada);
    await store.store({ ...ada, path: "org/repo.git", password: "p4" });
    expect(store.hosts()).toEqual([{ ...ada, path: "org/repo.git", password: "p4" }, ada]);
    expect(Object.keys(store.hosts()[1]!)).toEqual(["protocol", "host", "username", "password"]);
    expect(Object.keys(credentialToKeep(ada)!)).toEqual(["protocol", "host", "username", "password"]);
  });
  test("what git's store would refuse is not kept: no file is made", async () => {
    const store = fresh();
    await store.store({ protocol: "https", host: "github.com", username: "ada" });
    expect(existsSync(store.path)).toBe(false);
  });
  test("usernames compare as they are; only hosts ignore case", () => {
    expect(credentialMatches({ username: "Ada" }, { ...ada, username: "Ada" })).toBe(true);
    expect(credentialMatches({ protocol: "HTTPS" }, ada)).toBe(false);
  });
});

describe("erasing", () => {
  test("every credential the query matches goes, and the answer counts them", async () => {
    const store = fresh();
    await store.store(ada);
    await store.store(bob);
    await store.store({ ...ada, host: "gitlab.com" });
    expect(await store.erase({ protocol: "https", host: "github.com" })).toBe(2);
    expect(store.hosts()).toEqual([{ ...ada, host: "gitlab.com" }]);
  });
  test("a query that names nothing erases nothing", async () => {
    const store = fresh();
    await store.store(ada);
    expect(await store.erase({ password: "p1" })).toBe(0);
    expect(store.hosts()).toEqual([ada]);
  });
  test("no file: nothing to erase, and no file made", async () => {
    const store = fresh();
    expect(await store.erase({ host: "github.com" })).toBe(0);
    expect(existsSync(store.path)).toBe(false);
  });
});

describe("a file it cannot trust", () => {
  const written = async (text: string) => {
    const store = fresh();
    await store.store(ada);
    writeFileSync(store.path, text);
    return store;
  };
  test("not JSON: refused, saying what to do", async () => {
    const store = await written("{");
    expect(() => store.hosts()).toThrow(ConfigError);
    expect(() => store.get({ host: "github.com" })).toThrow(new RegExp(`^cannot read ${store.path}: .+; fix or remove it, then run 'beaker git setup' again$`));
  });
  test.each([
    ["null", "null"],
    ["no list", '{"credentials":"x"}'],
    ["an entry that is null", '{"credentials":[null]}'],
    ["an entry that is a string", '{"credentials":["x"]}'],
    ["an entry without a protocol", JSON.stringify({ credentials: [{ ...ada, protocol: undefined }] })],
    ["an entry without a host", JSON.stringify({ credentials: [{ ...ada, host: undefined }] })],
    ["an entry without a username", JSON.stringify({ credentials: [{ ...ada, username: undefined }] })],
    ["an entry without a password", JSON.stringify({ credentials: [{ ...ada, password: undefined }] })],
    ["a path that is no string", JSON.stringify({ credentials: [{ ...ada, path: 5 }] })],
    ["one good entry and one bad", JSON.stringify({ credentials: [ada, { ...ada, password: 5 }] })],
  ])("%s: not a credential file", async (_, text) => {
    const store = await written(text);
    expect(() => store.hosts()).toThrow(ConfigError);
    expect(() => store.hosts()).toThrow(`${store.path} is not a Beaker git credential file; fix or remove it, then run 'beaker git setup' again`);
  });
  test("a file from before version 2 (no paths) reads as it is", async () => {
    const store = await written(JSON.stringify({ credentials: [ada, { ...bob, path: "o/r.git" }] }));
    expect(store.hosts()).toEqual([ada, { ...bob, path: "o/r.git" }]);
  });
});
