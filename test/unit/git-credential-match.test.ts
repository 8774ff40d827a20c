/** Which kept credential answers which query: the rule of git's `store` (every field the query names must be equal). */
import { expect, test } from "bun:test";
import { credentialMatches, credentialToKeep, type StoredCredential } from "../../src/git/store.ts";

const kept: StoredCredential = { protocol: "https", host: "example.com", username: "ada", password: "p" };
const withPath: StoredCredential = { ...kept, path: "org/repo.git" };

test.each([
  ["the same protocol and host", { protocol: "https", host: "example.com" }, kept, true],
  ["the host in another case", { protocol: "https", host: "Example.COM" }, kept, true],
  ["another protocol", { protocol: "http", host: "example.com" }, kept, false],
  ["another host", { protocol: "https", host: "example.org" }, kept, false],
  ["the same username", { protocol: "https", host: "example.com", username: "ada" }, kept, true],
  ["another username", { protocol: "https", host: "example.com", username: "bob" }, kept, false],
  ["an empty username, kept with a name", { protocol: "https", host: "example.com", username: "" }, kept, false],
  ["an empty username, kept empty", { protocol: "https", host: "example.com", username: "" }, { ...kept, username: "" }, true],
  ["a path, kept for the whole host", { protocol: "https", host: "example.com", path: "org/repo.git" }, kept, false],
  ["the same path", { protocol: "https", host: "example.com", path: "org/repo.git" }, withPath, true],
  ["another path", { protocol: "https", host: "example.com", path: "org/other.git" }, withPath, false],
  ["no path, kept with one", { protocol: "https", host: "example.com" }, withPath, true],
] as const)("a query with %s: %p", (_, query, stored, expected) => {
  expect(credentialMatches(query, stored)).toBe(expected);
});

test("what git's store would refuse to keep is not kept; empty values are", () => {
  expect(credentialToKeep({ host: "h", username: "u", password: "p" })).toBeNull();
  expect(credentialToKeep({ protocol: "https", username: "u", password: "p" })).toBeNull();
  expect(credentialToKeep({ protocol: "https", host: "h", password: "p" })).toBeNull();
  expect(credentialToKeep({ protocol: "https", host: "h", username: "u" })).toBeNull();
  expect(credentialToKeep({ protocol: "https", host: "H.example", username: "", password: "" })).toEqual({ protocol: "https", host: "h.example", username: "", password: "" });
  expect(credentialToKeep({ protocol: "cert", path: "/etc/cert.p12", username: "", password: "x" })).toEqual({ protocol: "cert", host: "", path: "/etc/cert.p12", username: "", password: "x" });
});
