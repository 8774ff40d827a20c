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
  examples?: string[];
  run(ctx: CommandContext): Promise<number | void>;
}

export interface NounSpec {
  name: string;
  summary: string;
  commands: CommandSpec[];
}

export const jsonOption: OptionSpec = { flags: "--json", description: "Print JSON", kind: "boolean" };
