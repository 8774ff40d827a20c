/** Release versions: what is one, and their order, short versions from old state files included. */
import { expect, test } from "bun:test";
import { compareVersions, isVersion, parseVersion } from "../../src/update/semver.ts";

test.each<[string, ReturnType<typeof parseVersion>]>([
  ["1.2.3", { nums: [1, 2, 3], pre: undefined }],
  ["10.20.30", { nums: [10, 20, 30], pre: undefined }],
  ["1.2.3-rc.10", { nums: [1, 2, 3], pre: "rc.10" }],
  ["v1.2.3", null],
  ["1.2.3x", null],
  ["1.2.3-", null],
  ["1.2.3-rc-1", null],
  ["1.2", null],
])("parseVersion(%p)", (text, expected) => {
  expect(parseVersion(text)).toStrictEqual(expected);
  expect(isVersion(text)).toBe(expected !== null);
});

test.each([
  ["1.0.0-alpha", "1.0.0-beta", -1],
  ["1.0.0-beta", "1.0.0-alpha", 1],
  ["1.0.0-rc.1", "1.0.0-rc.1", 0],
  ["1.0.0", "1.0.0-rc.1", 1],
  ["1.2", "1.2.0", 0],
  ["1.3", "1.2.9", 1],
  ["1.2", "1.2.1", -1],
  ["1.2-rc", "1.2.0", -1],
] as const)("compareVersions(%s, %s) = %d", (a, b, expected) => {
  expect(compareVersions(a, b)).toBe(expected);
});
