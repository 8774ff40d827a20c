/**
 * A caller proof counts only as a fresh, small, regular file with one link that only its owner could have written; it
 * is consumed whether it counts or not. Time is given to verifyProof, so staleness is checked without waiting.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, linkSync, mkdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AuthError } from "../../src/errors.ts";
import { createProof, proofDirFor, sweepProofs, verifyProof } from "../../src/executor/proof.ts";
import { scopedDir } from "../harness.ts";

const secretOf = (header: string) => header.split(":")[1]!;

describe("verifyProof", () => {
  test("a proof up to a minute old either way counts; past a minute it is stale", () => {
    using dir = scopedDir("beaker-proof-");
    const at = (offsetMs: number) => {
      const proof = createProof(dir.path);
      const changed = statSync(proof.path).ctimeMs;
      try {
        return verifyProof(dir.path, proof.header, changed + offsetMs);
      } catch (err) {
        expect(existsSync(proof.path)).toBe(false);
        return (err as Error).message;
      }
    };
    expect(at(59_000)).toBe(process.getuid!());
    expect(at(-59_000)).toBe(process.getuid!());
    expect(at(61_000)).toBe("caller proof is stale");
    expect(at(-61_000)).toBe("caller proof is stale");
  });

  test("a hard-linked proof is refused, and the name sent is consumed", () => {
    using dir = scopedDir("beaker-proof-");
    const proof = createProof(dir.path);
    linkSync(proof.path, join(dir.path, "elsewhere"));
    expect(() => verifyProof(dir.path, proof.header)).toThrow(new AuthError("caller proof has other links"));
    expect(existsSync(proof.path)).toBe(false);
  });

  test("a symlink, a folder and an oversized file are refused", () => {
    using dir = scopedDir("beaker-proof-");
    const real = createProof(dir.path);
    const name = (c: string) => c.repeat(32);
    symlinkSync(real.path, join(dir.path, name("a")));
    expect(() => verifyProof(dir.path, `${name("a")}:${secretOf(real.header)}`)).toThrow(new AuthError("caller proof is not a regular file"));
    mkdirSync(join(dir.path, name("b")));
    expect(() => verifyProof(dir.path, `${name("b")}:${"0".repeat(64)}`)).toThrow(new AuthError("caller proof is not a regular file"));
    writeFileSync(join(dir.path, name("c")), Buffer.alloc(129, "0"), { mode: 0o600 });
    expect(() => verifyProof(dir.path, `${name("c")}:${"0".repeat(64)}`)).toThrow(new AuthError("caller proof is too large"));
    // A file of exactly the secret's length and content, at the size limit's edge, still counts.
    writeFileSync(join(dir.path, name("d")), "1".repeat(64), { mode: 0o600 });
    expect(verifyProof(dir.path, `${name("d")}:${"1".repeat(64)}`)).toBe(process.getuid!());
  });

  test("a wrong secret, a longer file and a malformed header are refused", () => {
    using dir = scopedDir("beaker-proof-");
    const proof = createProof(dir.path);
    const [name, secret] = proof.header.split(":") as [string, string];
    const wrong = `${name}:${secret.slice(0, -1)}${secret.endsWith("0") ? "1" : "0"}`;
    expect(() => verifyProof(dir.path, wrong)).toThrow(new AuthError("caller proof does not match"));
    writeFileSync(join(dir.path, name), `${secret}0`, { mode: 0o600 });
    expect(() => verifyProof(dir.path, proof.header)).toThrow(new AuthError("caller proof does not match"));
    for (const header of [null, "", `${name}:${secret}x`, `${name.slice(1)}:${secret}`, `../${name.slice(3)}:${secret}`, `${name}:${secret}\n`]) {
      expect(() => verifyProof(dir.path, header)).toThrow(new AuthError("missing or malformed caller proof"));
    }
  });

  test("the proof folder is beside the socket", () => {
    expect(proofDirFor("/run/beaker/executor.sock")).toBe("/run/beaker/proofs");
  });
});

describe("sweepProofs", () => {
  test("a fresh small file stays; stale ones go (by the time given), and so do folders", () => {
    using dir = scopedDir("beaker-proof-");
    const proof = createProof(dir.path);
    mkdirSync(join(dir.path, "folder"));
    const changed = statSync(proof.path).ctimeMs;
    expect(sweepProofs(dir.path, changed + 59_000)).toBe(1);
    expect(existsSync(proof.path)).toBe(true);
    expect(sweepProofs(dir.path, changed + 61_000)).toBe(1);
    expect(existsSync(proof.path)).toBe(false);
  });
  test("a file of exactly 128 bytes stays, one of 129 goes", () => {
    using dir = scopedDir("beaker-proof-");
    writeFileSync(join(dir.path, "edge"), Buffer.alloc(128));
    writeFileSync(join(dir.path, "over"), Buffer.alloc(129));
    expect(sweepProofs(dir.path)).toBe(1);
    expect(existsSync(join(dir.path, "edge"))).toBe(true);
  });
});
