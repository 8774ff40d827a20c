import type { Factory } from "./factory.ts";

/** One flag of a command, in cac's notation (`--gpus <n>`, `-d, --detach`). */
export interface OptionSpec {
  flags: string;
  description: string;
  default?: string | number | boolean;
  /** `number` values are checked and converted; `list` may repeat; everything else stays the string typed. */
  kind?: "string" | "number" | "list" | "boolean";
}

export interface CommandContext {
  args: string[];
  flags: Record<string, unknown>;
  /** Everything after `--`. */
  rest: string[];
  factory: Factory;
}

/** A verb (`session create`) or a lone command (`version`). Its file turns flags into options and calls run. */
export interface CommandSpec {
  name: string;
  /** Positional arguments in cac's notation: `[ID]`, `<NAME>`, `[KEY] [VALUE]`. */
  args?: string;
  summary: string;
  options?: OptionSpec[];
  /** Accepts `-- CMD ARGS...`. */
  passthrough?: boolean;
  /** Internal (run by beaker itself): left out of help. */
  hidden?: boolean;
  /** Talks to this node's executor: on a node with a server, a missing or refused token starts the login. */
  usesExecutor?: boolean;
  examples?: string[];
  run(ctx: CommandContext): Promise<number | void>;
}

/** A group of commands (`session`), which may hold groups of its own (`server user create`). */
export interface NounSpec {
  name: string;
  summary: string;
  commands: Array<CommandSpec | NounSpec>;
}

export function isNoun(entry: CommandSpec | NounSpec): entry is NounSpec {
  return "commands" in entry;
}

/** Every command under a noun, with its words after `beaker` (for help tests and usage lookup). */
export function walkCommands(noun: NounSpec, path: string[] = [noun.name]): Array<{ path: string[]; command: CommandSpec }> {
  return noun.commands.flatMap((entry) =>
    isNoun(entry) ? walkCommands(entry, [...path, entry.name]) : [{ path: [...path, entry.name], command: entry }],
  );
}

export const jsonOption: OptionSpec = { flags: "--json", description: "Print JSON", kind: "boolean" };
