import { cac } from "cac";
import { UsageError } from "../errors.ts";
import { buildInfo, formatVersion } from "../version.ts";
import { isNoun, type CommandSpec, type NounSpec, type OptionSpec } from "./command.ts";
import type { Factory } from "./factory.ts";
import { formatCommandHelp, formatNounHelp, formatRootHelp } from "./help.ts";
import { suggest } from "../util/suggest.ts";
import { withExecutorLogin } from "./login.ts";

export interface Program {
  nouns: NounSpec[];
  /** Commands without a noun: `beaker version`, `beaker upgrade`. */
  commands: CommandSpec[];
}

const helpFlags = new Set(["-h", "--help"]);

/** Runs one command line (argv without the program name) and returns the exit code. Throws typed errors. */
export async function runCli(program: Program, argv: string[], factory: Factory): Promise<number> {
  const io = factory.io;
  const [first, ...afterFirst] = argv;
  if (first === undefined || helpFlags.has(first) || first === "help") {
    io.out.write(formatRootHelp(program));
    return first === undefined ? 2 : 0;
  }
  if (first === "--version" || first === "-v") {
    io.out.write(`${formatVersion(buildInfo)}\n`);
    return 0;
  }
  const lone = program.commands.find((c) => c.name === first);
  if (lone) return runCommand(lone, "", afterFirst, factory);

  const noun = program.nouns.find((n) => n.name === first);
  if (!noun) {
    const names = [...program.nouns.map((n) => n.name), ...program.commands.map((c) => c.name)];
    throw new UsageError(unknownMessage("command", first, names, "beaker"));
  }
  return runNoun(noun, [noun.name], afterFirst, factory);
}

async function runNoun(noun: NounSpec, words: string[], argv: string[], factory: Factory): Promise<number> {
  const parent = `beaker ${words.join(" ")}`;
  const [verb, ...rest] = argv;
  if (verb === undefined || helpFlags.has(verb) || verb === "help") {
    factory.io.out.write(formatNounHelp(noun, parent));
    return verb === undefined ? 2 : 0;
  }
  const entry = noun.commands.find((c) => c.name === verb);
  if (!entry) throw new UsageError(unknownMessage("command", verb, noun.commands.map((c) => c.name), parent), parent);
  if (isNoun(entry)) return runNoun(entry, [...words, entry.name], rest, factory);
  return runCommand(entry, words.join(" "), rest, factory);
}

function unknownMessage(what: string, input: string, candidates: string[], parent: string): string {
  const near = suggest(input, candidates);
  const hint = near ? `; did you mean "${near}"?` : `; run '${parent} --help' for the list`;
  return `unknown ${what} "${input}" for "${parent}"${hint}`;
}

async function runCommand(command: CommandSpec, noun: string, argv: string[], factory: Factory): Promise<number> {
  const path = noun ? `beaker ${noun} ${command.name}` : `beaker ${command.name}`;
  if (argv.some((a, i) => helpFlags.has(a) && !argv.slice(0, i).includes("--"))) {
    factory.io.out.write(formatCommandHelp(path, command));
    return 0;
  }
  const dashDash = argv.indexOf("--");
  if (dashDash !== -1 && !command.passthrough) {
    throw new UsageError(`"${path}" takes no command after "--"`, path);
  }
  const parsed = parseFlags(command, argv, path);
  try {
    const run = () => command.run({ args: parsed.args, flags: parsed.flags, rest: parsed.rest, factory });
    const code = command.usesExecutor ? await withExecutorLogin(factory, run) : await run();
    return code ?? 0;
  } catch (err) {
    if (err instanceof UsageError && err.usageFor === undefined) throw new UsageError(err.message, path);
    throw err;
  }
}

interface ParsedFlags {
  args: string[];
  flags: Record<string, unknown>;
  rest: string[];
}

/** Parses with cac (unknown flags, missing values, extra arguments), then restores typed values cac guesses at. */
export function parseFlags(command: CommandSpec, argv: string[], path: string): ParsedFlags {
  const cli = cac(path);
  cli.option("--debug", "Show stack traces and debug logs");
  const c = cli.command(`${command.name}${command.args ? ` ${command.args}` : ""}`, command.summary);
  for (const option of command.options ?? []) {
    c.option(option.flags, option.description, option.kind === "list" ? { type: [String] } : {});
  }
  let captured: unknown[] = [];
  c.action((...values: unknown[]) => {
    captured = values;
  });
  // mri reads a lone "-" (stdin, by convention) as a flag with no name; keep it an argument.
  const stdinMarker = "\u0000stdin";
  try {
    cli.parse(["beaker", path, command.name, ...argv.map((a) => (a === "-" ? stdinMarker : a))]);
  } catch (err) {
    throw new UsageError(describeCacError(err as Error, command), path);
  }
  const flags = { ...(captured[captured.length - 1] as Record<string, unknown>) };
  const rest = (flags["--"] as string[] | undefined) ?? [];
  delete flags["--"];
  const args = captured
    .slice(0, -1)
    .flatMap((v) => (Array.isArray(v) ? v : v === undefined ? [] : [v]))
    .map(String)
    .map((a) => (a === stdinMarker ? "-" : a));
  const head = argv.indexOf("--") === -1 ? argv : argv.slice(0, argv.indexOf("--"));
  for (const option of command.options ?? []) {
    restoreType(option, flags, head);
    applyDefault(option, flags);
  }
  return { args, flags, rest };
}

function longName(option: OptionSpec): string {
  const long = option.flags.split(/[ ,]+/).find((p) => p.startsWith("--"));
  return (long ?? option.flags).replace(/^--/, "");
}

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, ch: string) => ch.toUpperCase());
}

/** The spec's default (the one place it is written), or an empty list: commands get every such value set. */
function applyDefault(option: OptionSpec, flags: Record<string, unknown>): void {
  const key = camel(longName(option));
  if (flags[key] !== undefined) return;
  if (option.default !== undefined) flags[key] = option.default;
  else if (option.kind === "list") flags[key] = [];
}

/** cac turns `--name 0123` into the number 123; take string values from argv as typed. */
function restoreType(option: OptionSpec, flags: Record<string, unknown>, argv: string[]): void {
  const name = longName(option);
  const key = camel(name);
  const value = flags[key];
  if (value === undefined) return;
  const takesValue = option.flags.includes("<") || option.flags.includes("[");
  if (!takesValue) return;
  const raw = rawValues(argv, option);
  if (option.kind === "list") {
    flags[key] = raw;
    return;
  }
  if (raw.length > 1) throw new UsageError(`--${name} was given ${raw.length} times; give it once`);
  const text = raw[0] ?? String(value);
  if (option.kind === "number") {
    if (!/^-?\d+(\.\d+)?$/.test(text)) throw new UsageError(`--${name} must be a number, not "${text}"`);
    flags[key] = Number(text);
  } else {
    flags[key] = text;
  }
}

function rawValues(argv: string[], option: OptionSpec): string[] {
  const names = option.flags
    .split(/[ ,]+/)
    .filter((p) => p.startsWith("-"))
    .map((p) => p.trim());
  const values: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    for (const name of names) {
      if (arg === name && i + 1 < argv.length) values.push(argv[++i]!);
      else if (arg.startsWith(`${name}=`)) values.push(arg.slice(name.length + 1));
    }
  }
  return values;
}

function describeCacError(err: Error, command: CommandSpec): string {
  const unknown = /^Unknown option `(-{1,2})([^`]+)`/.exec(err.message);
  if (unknown) {
    const names = (command.options ?? []).map(longName);
    const near = suggest(unknown[2]!, [...names, "help"]);
    return `unknown flag ${unknown[1]}${unknown[2]}${near ? `; did you mean --${near}?` : ""}`;
  }
  const unused = /^Unused args: (.*)$/.exec(err.message);
  if (unused) return `unexpected argument ${unused[1]!.replace(/`/g, '"')}`;
  const missing = /^option `([^`]+)` value is missing/.exec(err.message);
  if (missing) return `flag ${missing[1]!.split(" ")[0]!.replace(/,$/, "")} needs a value`;
  const missingArg = /^missing required args for command `([^`]+)`/.exec(err.message);
  if (missingArg) return `missing argument: ${command.args ?? ""}`.trim();
  return err.message;
}
