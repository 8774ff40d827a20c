/** The frame turns argv into a command's typed options: spec defaults filled in once, lists empty, values as typed. */
import { expect, test } from "bun:test";
import { parseFlags } from "../../src/cli/app.ts";
import { defineCommand, jsonOption } from "../../src/cli/command.ts";

const command = defineCommand({
  name: "demo",
  args: "[ID]",
  summary: "demo",
  options: [
    { flags: "--timeout <seconds>", description: "", default: 10, kind: "number" },
    { flags: "--host <host>", description: "", default: "github.com", kind: "string" },
    { flags: "--port <port>", description: "", kind: "list" },
    { flags: "--name <name>", description: "", kind: "string" },
    { flags: "--no-wait", description: "", kind: "boolean" },
    { flags: "-d, --detach", description: "", kind: "boolean" },
    jsonOption,
  ],
  async run() {},
});

test.each([
  [[], { timeout: 10, host: "github.com", port: [], wait: true }],
  [["--timeout", "3", "--host", "example.org"], { timeout: 3, host: "example.org", port: [], wait: true }],
  [["--port", "80", "--port=443", "--no-wait", "-d", "--json"], { timeout: 10, host: "github.com", port: ["80", "443"], wait: false, detach: true, d: true, json: true }],
  [["--name", "0123"], { timeout: 10, host: "github.com", port: [], wait: true, name: "0123" }],
])("%p", (argv, expected) => {
  expect(parseFlags(command, argv, "beaker demo").flags).toEqual(expected);
});

test("a value of the wrong kind, or given twice, is a usage error", () => {
  expect(() => parseFlags(command, ["--timeout", "soon"], "beaker demo")).toThrow('--timeout must be a number, not "soon"');
  expect(() => parseFlags(command, ["--name", "a", "--name", "b"], "beaker demo")).toThrow("--name was given 2 times; give it once");
});
