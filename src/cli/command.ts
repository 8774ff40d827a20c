import type { Factory } from "./factory.ts";

/** One flag of a command, in cac's notation (`--gpus <n>`, `-d, --detach`). */
export interface OptionSpec {
  flags: string;
  description: string;
  default?: string | number | boolean;
  /** `number` values are checked and converted; `list` may repeat; everything else stays the string typed. */
  kind?: "string" | "number" | "list" | "boolean";
}

/** A flag's key in the parsed options: `--shared-memory <size>` -> `sharedMemory`; `--no-wait` -> `wait`. */
type LongName<F extends string> = F extends `${string}--${infer Rest}` ? (Rest extends `${infer Name} ${string}` ? Name : Rest) : never;
type Positive<N extends string> = N extends `no-${infer Kept}` ? Kept : N;
type Camel<S extends string> = S extends `${infer Head}-${infer Tail}` ? `${Head}${Capitalize<Camel<Tail>>}` : S;
export type FlagKey<F extends string> = Camel<Positive<LongName<F>>>;

type FlagValue<O extends OptionSpec> = O["kind"] extends "number" ? number : O["kind"] extends "list" ? string[] : O["kind"] extends "boolean" ? boolean : string;
/** Always present: a flag with a default, a list (empty when not given), a `--no-x` switch (true unless given). */
type AlwaysSet<O extends OptionSpec> = O extends { default: string | number | boolean } ? true : O["kind"] extends "list" ? true : O["flags"] extends `--no-${string}` ? true : false;

/** The options a command's flags parse into, derived from its flag spec: the frame fills in defaults from the spec. */
export type FlagsOf<Options extends readonly OptionSpec[]> = {
  [O in Options[number] as AlwaysSet<O> extends true ? FlagKey<O["flags"]> : never]: FlagValue<O>;
} & {
  [O in Options[number] as AlwaysSet<O> extends true ? never : FlagKey<O["flags"]>]?: FlagValue<O> | undefined;
};

export interface CommandContext<Flags = Record<string, unknown>> {
  args: string[];
  flags: Flags;
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
  options?: readonly OptionSpec[];
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

/**
 * A command whose `run` gets typed flags, derived from its `options` (declared `as const`-like by the `const` type
 * parameter). The frame has parsed, checked and defaulted every value to that type (`parseFlags`).
 */
export function defineCommand<const Options extends readonly OptionSpec[] = []>(
  spec: Omit<CommandSpec, "options" | "run"> & { options?: Options; run(ctx: CommandContext<FlagsOf<Options>>): Promise<number | void> },
): CommandSpec {
  return spec;
}

export const jsonOption = { flags: "--json", description: "Print JSON", kind: "boolean" } as const satisfies OptionSpec;
