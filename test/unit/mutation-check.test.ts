import { describe, expect, test } from "bun:test";
import { checkSurvivors, codeDigest } from "../../scripts/mutation.ts";
import { modules } from "../mutation/modules.ts";

/** A recorded run for every module, current and complete, that each case then breaks in one way. */
function currentRecords() {
  return Object.fromEntries(
    modules.map((m) => [m.file, { sha256: `sha-of-${m.file}`, mutants: 10, detected: 9, score: 90, survivors: [{ line: 1, mutator: "BooleanLiteral", original: "true", replacement: "false", reason: "equivalent: only a log line differs" }] }]),
  );
}
const digest = (file: string) => `sha-of-${file}`;

describe("mutation --check", () => {
  test("a current file with a reason for every survivor and every score at 90% passes", () => {
    expect(checkSurvivors(currentRecords(), digest)).toEqual([]);
  });
  test("a module whose source changed since its run is named with the command to run again", () => {
    const file = modules[0]!.file;
    expect(checkSurvivors(currentRecords(), (f) => (f === file ? "new" : digest(f)))).toEqual([`${file} changed since its mutation run: npm run test:mutation -- ${file}, then give each new survivor its reason`]);
  });
  test("a survivor without a reason, a score under 90%, a module never run and one no longer listed each fail", () => {
    const records = currentRecords();
    const [a, b, c] = modules.map((m) => m.file);
    records[a!]!.survivors[0]!.reason = " ";
    records[b!]!.score = 89.9;
    delete records[c!];
    (records as Record<string, unknown>)["src/gone.ts"] = records[a!];
    expect(checkSurvivors(records, digest)).toEqual([
      `${a}: 1 surviving mutants without a reason in test/mutation/survivors.json`,
      `${b}: mutation score 89.9% is under 90%`,
      `${c} has no mutation run in test/mutation/survivors.json: npm run test:mutation -- ${c}`,
      "test/mutation/survivors.json lists src/gone.ts, which test/mutation/modules.ts does not",
    ]);
  });
});

describe("the code digest a mutation run is recorded against", () => {
  const module = [
    "/** Whether n is even. */",
    'import { twice } from "../util/math.ts";',
    'import type { Size } from "./types.ts";',
    "export function even(n: number): boolean {",
    "  return n % 2 === 0; // the last bit",
    "}",
    "export const size: Size = twice(1);",
    "",
  ].join("\n");
  const digest = (source: string) => codeDigest("src/a/mod.ts", source);

  test("comments, types and a move to another folder keep it", () => {
    expect(digest(module.replace("Whether n is even", "True for even n").replace(" // the last bit", ""))).toBe(digest(module));
    expect(digest(module.replace("n: number", "n: bigint | number").replace('"./types.ts"', '"../types.ts"'))).toBe(digest(module));
    expect(codeDigest("src/b/c/mod.ts", module.replace('"../util/math.ts"', '"../../util/math.ts"'))).toBe(digest(module));
  });

  test("a change to the code that runs, or to which module it imports, changes it", () => {
    expect(digest(module.replace("=== 0", "!== 0"))).not.toBe(digest(module));
    expect(digest(module.replace("n % 2", "n % 3"))).not.toBe(digest(module));
    expect(digest(module.replace('"../util/math.ts"', '"../util/maths.ts"'))).not.toBe(digest(module));
    expect(digest(`${module}export const extra = 1;\n`)).not.toBe(digest(module));
  });
});
