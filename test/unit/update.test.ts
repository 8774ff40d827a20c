/** Pure pieces of the self-update: version order, target choice, the notifier's schedule, manifest checks. */
import { describe, expect, test } from "bun:test";
import { parseManifest, pickTarget } from "../../src/update/manifest.ts";
import { compareVersions } from "../../src/update/semver.ts";
import { noticeFor, shouldCheck } from "../../src/update/notifier.ts";
import { addHostBlock } from "../../src/git/ssh.ts";
import { helperValue } from "../../src/git/setup.ts";
import { parseCredential, parseHost, tokenShapeProblem } from "../../src/git/protocol.ts";

test.each([
  ["0.1.0", "0.2.0", -1],
  ["0.10.0", "0.9.9", 1],
  ["1.0.0", "1.0.0", 0],
  ["1.0.0-rc.1", "1.0.0", -1],
  ["1.0.0-rc.2", "1.0.0-rc.1", 1],
] as const)("compareVersions(%s, %s) = %d", (a, b, expected) => {
  expect(compareVersions(a, b)).toBe(expected);
});

test.each([
  [{ arch: "arm64", musl: false, avx2: false }, "linux-arm64"],
  [{ arch: "x64", musl: true, avx2: true }, "linux-x64-musl"],
  [{ arch: "x64", musl: false, avx2: true }, "linux-x64"],
  [{ arch: "x64", musl: false, avx2: false }, "linux-x64-baseline"],
  [{ os: "linux", arch: "x64", musl: false, avx2: true }, "linux-x64"],
  [{ os: "darwin", arch: "arm64", musl: false, avx2: false }, "darwin-arm64"],
  [{ os: "darwin", arch: "x64", musl: false, avx2: true }, "darwin-x64"],
])("pickTarget(%p) = %s", (platform, target) => {
  expect(pickTarget(platform)).toBe(target);
});

describe("the notifier's schedule", () => {
  const tty = { tty: true, ci: false, disabled: false };
  const day = 24 * 3600 * 1000;
  const now = 100 * day;
  test("checks when never checked or a day has passed; never off a terminal, in CI, or when disabled", () => {
    expect(shouldCheck(now, null, tty)).toBe(true);
    expect(shouldCheck(now, { lastCheck: now - day + 1, lastNotice: 0, latest: null }, tty)).toBe(false);
    expect(shouldCheck(now, { lastCheck: now - day, lastNotice: 0, latest: null }, tty)).toBe(true);
    expect(shouldCheck(now, null, { ...tty, tty: false })).toBe(false);
    expect(shouldCheck(now, null, { ...tty, ci: true })).toBe(false);
    expect(shouldCheck(now, null, { ...tty, disabled: true })).toBe(false);
  });
  test("the notice: only for a newer version, at most once a day", () => {
    const state = { lastCheck: now, lastNotice: 0, latest: "0.2.0" };
    expect(noticeFor(now, "0.1.0", state, tty)).toMatch(/0\.1\.0 -> 0\.2\.0/);
    expect(noticeFor(now, "0.2.0", state, tty)).toBeNull();
    expect(noticeFor(now, "0.1.0", { ...state, lastNotice: now - 1000 }, tty)).toBeNull();
    expect(noticeFor(now, "0.1.0", state, { ...tty, disabled: true })).toBeNull();
  });
});

test("parseManifest refuses what it cannot trust the shape of", () => {
  const good = { version: "1.2.3", channel: "stable", date: "x", targets: { "linux-x64": { file: "beaker-linux-x64", size: 10, sha256: "a".repeat(64) } } };
  expect(parseManifest(JSON.stringify(good)).version).toBe("1.2.3");
  expect(() => parseManifest("{")).toThrow(/not valid JSON/);
  expect(() => parseManifest(JSON.stringify({ ...good, version: "latest" }))).toThrow(/malformed/);
  expect(() => parseManifest(JSON.stringify({ ...good, targets: { x: { file: "../../etc/passwd", size: 1, sha256: "a".repeat(64) } } }))).toThrow(/malformed/);
});

describe("git helpers", () => {
  test("parseCredential stops at the blank line", () => {
    expect(parseCredential("protocol=https\nhost=github.com\n\npassword=ignored\n")).toEqual({ protocol: "https", host: "github.com" });
  });
  test.each([
    ["github.com", { protocol: "https", host: "github.com" }],
    ["https://Git.Example.com:8443/", { protocol: "https", host: "git.example.com:8443" }],
    ["http://127.0.0.1:9000", { protocol: "http", host: "127.0.0.1:9000" }],
  ])("parseHost(%p)", (input, expected) => {
    expect(parseHost(input)).toEqual(expected);
  });
  test("token shapes", () => {
    expect(tokenShapeProblem(`ghp_${"a".repeat(36)}`, "github.com")).toBeNull();
    expect(tokenShapeProblem("hunter2hunter2", "github.com")).toMatch(/ghp_/);
    expect(tokenShapeProblem("glpat-abcdefgh", "gitlab.example.com")).toBeNull();
    expect(tokenShapeProblem("a b", "x")).toMatch(/spaces/);
  });
  test("helper strings git runs", () => {
    expect(helperValue("cache", 3600, "/usr/local/bin/beaker")).toBe("cache --timeout 3600");
    expect(helperValue("store", 1, "/x")).toBe("store");
    expect(helperValue("beaker", 1, "/usr/local/bin/beaker")).toBe("/usr/local/bin/beaker git credential");
    expect(helperValue("beaker", 1, "/opt/my tools/beaker")).toBe("!'/opt/my tools/beaker' git credential");
  });
  test("addHostBlock adds once, keeps what is there", () => {
    const added = addHostBlock("Host work\n  User me\n", "github.com", "~/.ssh/id_ed25519")!;
    expect(added).toBe("Host work\n  User me\n\nHost github.com\n  HostName github.com\n  User git\n  IdentityFile ~/.ssh/id_ed25519\n  IdentitiesOnly yes\n");
    expect(addHostBlock(added, "github.com", "~/.ssh/id_ed25519")).toBeNull();
    expect(addHostBlock("Host gitlab.com github.com\n", "github.com", "k")).toBeNull();
  });
});
