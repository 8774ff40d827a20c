import { expect, test } from "bun:test";
import { createTestIO } from "../../src/cli/io.ts";
import { printable, printTable } from "../../src/cli/output.ts";

test("control characters from elsewhere never reach the terminal: they print as ?", () => {
  expect(printable("a\u001b[2Jb\u0007")).toBe("a?[2Jb?");
  expect(printable("\u009b31mred\r\n\u007f")).toBe("?31mred???");
  expect(printable("plain ünïcode ✓")).toBe("plain ünïcode ✓");
});

test("table cells are made printable before they are measured and written", () => {
  const io = createTestIO();
  printTable(io, ["ID", "IMAGE"], [["abc", "evil\u001b]0;title\u0007:latest"], ["def", "debian"]]);
  const text = io.stdout();
  expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  expect(text).toBe("ID    IMAGE\nabc   evil?]0;title?:latest\ndef   debian\n");
});
