import { isNoun, type CommandSpec, type NounSpec } from "./command.ts";
import type { Program } from "./app.ts";

function columns(rows: Array<[string, string]>): string {
  const width = Math.max(0, ...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`.trimEnd()).join("\n");
}

export function formatRootHelp(program: Program): string {
  const rows: Array<[string, string]> = [
    ...program.nouns.map((n): [string, string] => [n.name, n.summary]),
    ...program.commands.filter((c) => !c.hidden).map((c): [string, string] => [c.name, c.summary]),
  ];
  return [
    "Beaker sessions: interactive GPU sessions on your cluster's nodes.",
    "",
    "Usage:",
    "  beaker <command> <subcommand> [flags]",
    "",
    "Commands:",
    columns(rows),
    "",
    "Global flags:",
    columns([
      ["--help", "Show help for a command"],
      ["--version", "Show the version"],
      ["--debug", "Show stack traces and debug logs"],
    ]),
    "",
    "Run 'beaker <command> --help' for more about a command.",
    "",
  ].join("\n");
}

export function formatNounHelp(noun: NounSpec, path = `beaker ${noun.name}`): string {
  return [
    noun.summary,
    "",
    "Usage:",
    `  ${path} <subcommand> [flags]`,
    "",
    "Subcommands:",
    columns(noun.commands.map((c): [string, string] => [c.name, c.summary])),
    "",
    `Run '${path} <subcommand> --help' for more.`,
    "",
  ].join("\n");
}

export function formatCommandHelp(path: string, command: CommandSpec): string {
  const usage = `${path}${command.options?.length ? " [flags]" : ""}${command.args ? ` ${command.args}` : ""}${
    command.passthrough ? " [-- CMD ARGS...]" : ""
  }`;
  const lines = [command.summary, "", "Usage:", `  ${usage}`, ""];
  const flags: Array<[string, string]> = (command.options ?? []).map((o) => [
    o.flags,
    o.default === undefined ? o.description : `${o.description} (default ${o.default})`,
  ]);
  flags.push(["-h, --help", "Show this help"]);
  lines.push("Flags:", columns(flags), "");
  if (command.examples?.length) lines.push("Examples:", ...command.examples.map((e) => `  $ ${e}`), "");
  return lines.join("\n");
}

/** The usage printed after a usage error: the help of the command (or noun, or root) the error came from. */
export function formatUsage(program: Program, path: string | undefined): string {
  const words = (path ?? "beaker").split(" ").slice(1);
  const lone = words.length === 1 ? program.commands.find((c) => c.name === words[0]) : undefined;
  if (lone) return formatCommandHelp(path!, lone);
  let entry: CommandSpec | NounSpec | undefined = program.nouns.find((n) => n.name === words[0]);
  for (const word of words.slice(1)) entry = entry && isNoun(entry) ? entry.commands.find((c) => c.name === word) : undefined;
  if (!entry) return formatRootHelp(program);
  return isNoun(entry) ? formatNounHelp(entry, `beaker ${words.join(" ")}`) : formatCommandHelp(path!, entry);
}
