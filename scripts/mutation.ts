#!/usr/bin/env bun
/**
 * Mutation testing of the modules that decide security and correctness (StrykerJS, its command runner on `bun test`).
 *
 *   npm run test:mutation                       every module below, then test/mutation/survivors.json is rewritten
 *   npm run test:mutation -- src/executor/claims/claims.ts [more.ts]   just those modules
 *   bun scripts/mutation.ts --check             no mutants run: is survivors.json current? (scripts/test runs this)
 *
 * Each module is mutated on its own and every mutant runs only the unit tests that pin that module, so one module
 * takes seconds to a few minutes. A mutant that no test kills is a survivor: survivors.json lists each one with the
 * reason it is equivalent or not worth a test. A survivor without a reason, a module under 90%, or a module whose
 * code changed since its run fails --check, which names the command to run again. "Its code" is what runs: the
 * SHA-256 of the module as Bun transpiles it (no comments, no types), each relative import named by its file name
 * alone. A comment, a type or a move to another folder leaves the mutants as they were and needs no new run (what a
 * module imports was never part of its digest: a change there is caught by the tests of that module, if listed).
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { modules, type MutationModule } from "../test/mutation/modules.ts";

const root = resolve(import.meta.dir, "..");
const survivorsPath = join(root, "test/mutation/survivors.json");
const minimumScore = 90;

interface Survivor {
  line: number;
  mutator: string;
  /** The source the mutant replaced, and what it put there: with the mutator, they name the mutant across edits. */
  original: string;
  replacement: string;
  reason: string;
}
interface ModuleRecord {
  sha256: string;
  mutants: number;
  detected: number;
  score: number;
  survivors: Survivor[];
}
type SurvivorFile = Record<string, ModuleRecord>;

/** The parts of Stryker's JSON report (mutation-testing-report-schema) read here. */
interface StrykerReport {
  files: Record<string, { source: string; mutants: Array<{ mutatorName: string; replacement?: string; status: string; location: { start: { line: number; column: number }; end: { line: number; column: number } } }> }>;
}

const transpiler = new Bun.Transpiler({ loader: "ts" });

/** The digest a module's mutation run is recorded against: its code as it runs, its relative imports by file name. */
export function codeDigest(file: string, source = readFileSync(join(root, file), "utf8")): string {
  const code = transpiler
    .transformSync(source)
    .replace(/(\bfrom\s*|\bimport\s*\(?\s*)(["'])(\.\.?\/[^"']*)\2/g, (_, lead: string, quote: string, spec: string) => `${lead}${quote}${basename(spec)}${quote}`);
  return createHash("sha256").update(code).digest("hex");
}
const survivorKey = (s: Pick<Survivor, "mutator" | "original" | "replacement">) => `${s.mutator}\0${s.original}\0${s.replacement}`;

function readSurvivors(): SurvivorFile {
  return existsSync(survivorsPath) ? (JSON.parse(readFileSync(survivorsPath, "utf8")) as SurvivorFile) : {};
}

/** Text between two 1-based line / 0-based column positions of `source`. */
function sliceSource(source: string, start: { line: number; column: number }, end: { line: number; column: number }): string {
  const lines = source.split("\n");
  if (start.line === end.line) return lines[start.line - 1]!.slice(start.column - 1, end.column - 1);
  const middle = lines.slice(start.line, end.line - 1);
  return [lines[start.line - 1]!.slice(start.column - 1), ...middle, lines[end.line - 1]!.slice(0, end.column - 1)].join("\n");
}

/** Runs Stryker on one module; returns its record, keeping the reasons already written for survivors it still has. */
function runModule(mod: MutationModule, previous: ModuleRecord | undefined, concurrency: number): ModuleRecord {
  const slug = mod.file.replace(/[/.]/g, "-");
  const reportDir = join(root, "reports/mutation");
  mkdirSync(reportDir, { recursive: true });
  const reportFile = join(reportDir, `${slug}.json`);
  const env = Object.entries(mod.env ?? {}).map(([k, v]) => `${k}=${v}`).join(" ");
  const config = {
    testRunner: "command",
    // One `bun test --bail` per file, in the listed order (one bun run orders its files its own way): a mutant is killed
    // by its first failing test, so the slow tests listed last (the simulation) run only for the few the fast ones miss.
    commandRunner: { command: mod.tests.map((t) => `${env ? `env ${env} ` : ""}node_modules/.bin/bun test --bail ${t}`).join(" && ") },
    mutate: [mod.file],
    coverageAnalysis: "off",
    concurrency,
    reporters: ["json", "progress"],
    jsonReporter: { fileName: reportFile },
    tempDirName: ".stryker-tmp",
    ignorePatterns: ["dist", ".cache", "reports", "bench"],
    timeoutMS: 20000,
    cleanTempDir: "always",
  };
  const configFile = join(reportDir, `${slug}.stryker.json`);
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const run = Bun.spawnSync([join(root, "node_modules/.bin/stryker"), "run", configFile], { cwd: root, stdout: "inherit", stderr: "inherit" });
  if (run.exitCode !== 0) throw new Error(`stryker failed on ${mod.file} (exit ${run.exitCode})`);

  const report = JSON.parse(readFileSync(reportFile, "utf8")) as StrykerReport;
  const entry = report.files[mod.file];
  if (!entry) throw new Error(`stryker's report has no ${mod.file}`);
  const valid = entry.mutants.filter((m) => !["CompileError", "RuntimeError", "Ignored"].includes(m.status));
  const detected = valid.filter((m) => m.status === "Killed" || m.status === "Timeout").length;
  const reasons = new Map((previous?.survivors ?? []).map((s) => [survivorKey(s), s.reason]));
  const survivors = valid
    .filter((m) => m.status === "Survived" || m.status === "NoCoverage")
    .map((m) => {
      const s = { line: m.location.start.line, mutator: m.mutatorName, original: sliceSource(entry.source, m.location.start, m.location.end), replacement: m.replacement ?? "", reason: "" };
      return { ...s, reason: reasons.get(survivorKey(s)) ?? "" };
    })
    .sort((a, b) => a.line - b.line);
  const score = valid.length === 0 ? 100 : Math.round((1000 * detected) / valid.length) / 10;
  return { sha256: codeDigest(mod.file), mutants: valid.length, detected, score, survivors };
}

/** What is wrong with the recorded run of each module: one line each. */
export function checkSurvivors(recorded: SurvivorFile, digest: (file: string) => string): string[] {
  const problems: string[] = [];
  for (const mod of modules) {
    const rec = recorded[mod.file];
    const rerun = `npm run test:mutation -- ${mod.file}`;
    if (!rec) problems.push(`${mod.file} has no mutation run in test/mutation/survivors.json: ${rerun}`);
    else if (rec.sha256 !== digest(mod.file)) problems.push(`${mod.file} changed since its mutation run: ${rerun}, then give each new survivor its reason`);
    else {
      const unexplained = rec.survivors.filter((s) => s.reason.trim() === "").length;
      if (unexplained > 0) problems.push(`${mod.file}: ${unexplained} surviving mutants without a reason in test/mutation/survivors.json`);
      if (rec.score < minimumScore) problems.push(`${mod.file}: mutation score ${rec.score}% is under ${minimumScore}%`);
    }
  }
  for (const file of Object.keys(recorded)) {
    if (!modules.some((m) => m.file === file)) problems.push(`test/mutation/survivors.json lists ${file}, which test/mutation/modules.ts does not`);
  }
  return problems;
}

function main(argv: string[]): number {
  if (argv.includes("--check")) {
    const problems = checkSurvivors(readSurvivors(), (file) => codeDigest(file));
    for (const p of problems) console.error(`mutation: ${p}`);
    if (problems.length === 0) console.error(`mutation: survivors.json is current for ${modules.length} modules`);
    return problems.length === 0 ? 0 : 1;
  }
  const concurrencyFlag = argv.indexOf("--concurrency");
  const concurrency = concurrencyFlag >= 0 ? Number(argv[concurrencyFlag + 1]) : 2;
  const named = argv.filter((a, i) => a.startsWith("src/") && argv[i - 1] !== "--concurrency");
  const unknown = named.filter((f) => !modules.some((m) => m.file === f));
  if (unknown.length > 0) {
    console.error(`mutation: not a mutation-tested module: ${unknown.join(", ")} (the list is test/mutation/modules.ts)`);
    return 2;
  }
  const selected = named.length > 0 ? modules.filter((m) => named.includes(m.file)) : modules;
  const recorded = readSurvivors();
  for (const mod of selected) {
    recorded[mod.file] = runModule(mod, recorded[mod.file], concurrency);
    const ordered = Object.fromEntries(modules.filter((m) => recorded[m.file]).map((m) => [m.file, recorded[m.file]!]));
    writeFileSync(survivorsPath, `${JSON.stringify(ordered, null, 2)}\n`);
  }
  console.log("\nmodule                                   mutants  score  survivors (without a reason)");
  for (const mod of selected) {
    const r = recorded[mod.file]!;
    const open = r.survivors.filter((s) => s.reason === "").length;
    console.log(`${mod.file.padEnd(40)} ${String(r.mutants).padStart(7)} ${r.score.toFixed(1).padStart(6)}%  ${r.survivors.length} (${open})`);
  }
  const problems = checkSurvivors(recorded, (file) => codeDigest(file)).filter((p) => selected.some((m) => p.startsWith(m.file)));
  for (const p of problems) console.error(`mutation: ${p}`);
  return problems.length === 0 ? 0 : 1;
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
