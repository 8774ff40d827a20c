/** git's credential helper protocol, and what `beaker git setup` takes as a host, a token and an email address. */
import { describe, expect, test } from "bun:test";
import { emailProblem, formatCredential, parseCredential, parseHost, tokenShapeProblem } from "../../src/git/protocol.ts";

describe("parseCredential", () => {
  test("CRLF lines, a blank line ends the input", () => {
    expect(parseCredential("protocol=https\r\nhost=github.com\r\n\r\nusername=late\n")).toEqual({ protocol: "https", host: "github.com" });
  });
  test("only a carriage return at the end of a line is dropped; '=' in a value is kept", () => {
    expect(parseCredential("password=a\rb=c\r\n")).toEqual({ password: "a\rb=c" });
  });
  test("lines without a key are ignored", () => {
    expect(parseCredential("junk\n=value\nhost=x\n")).toEqual({ host: "x" });
  });
});

test("formatCredential: key=value lines; a value with a newline or NUL (another line smuggled in) is left out", () => {
  expect(formatCredential({ protocol: "https", host: "x\nusername=evil", password: "a\0b", username: "ada", path: undefined as unknown as string })).toBe("protocol=https\nusername=ada\n");
  expect(formatCredential({})).toBe("");
});

describe("parseHost", () => {
  test.each([
    ["github.com", { protocol: "https", host: "github.com" }],
    ["  http://Git.Example.com:8443/ \n", { protocol: "http", host: "git.example.com:8443" }],
  ])("%p", (input, expected) => {
    expect(parseHost(input)).toEqual(expected);
  });
  test.each(["ftp://github.com", "github.com/org", "git hub.com", ""])("%p is not a host", (input) => {
    expect(() => parseHost(input)).toThrow(`"${input}" is not a host like github.com or https://git.example.com`);
  });
});

describe("token shapes", () => {
  const a = (n: number) => "a".repeat(n);
  test.each([`ghp_${a(36)}`, `gho_${a(36)}`, `github_pat_${a(40)}_${a(41)}`])("%s is a GitHub token", (token) => {
    expect(tokenShapeProblem(token, "github.com")).toBeNull();
  });
  test.each([`ghp_${a(37)}`, `xghp_${a(36)}`, `gho_${a(36)}x`, `github_pat_${a(81)}`, `github_pat_${a(83)}`, `github_pat_${"-".repeat(82)}`, `glpat-${a(20)}`])("%s is not", (token) => {
    expect(tokenShapeProblem(token, "github.com")).toBe("GitHub tokens start with ghp_ (classic) or github_pat_ (fine-grained)");
  });
  test("elsewhere: eight characters at least, no spaces", () => {
    expect(tokenShapeProblem("12345678", "git.example.com")).toBeNull();
    expect(tokenShapeProblem("1234567", "git.example.com")).toBe("that is too short for a token");
    expect(tokenShapeProblem("1234 5678", "git.example.com")).toBe("a token has no spaces");
  });
});

describe("emailProblem", () => {
  test.each(["ada@example.org", "  a.b+c@mail.example.co.uk\n"])("%p is an address", (email) => {
    expect(emailProblem(email)).toBeNull();
  });
  test.each(["a b@c.de", "ada@example.org x", "@example.org", "ada@example", "ada@.org", "ada@example.", "ada@@example.org", "ada@exa mple.org", "ada@example. org"])("%p is not", (email) => {
    expect(emailProblem(email)).toBe("that does not look like an email address");
  });
});
