/**
 * Sessions from the browser (issue 28): start one on a node's page, use its terminal (xterm.js from the binary, over
 * the node link), resize it, reload and find the same shell, stop it from the page. Headless Chromium (Debian's).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chromium, type Browser, type Page } from "playwright-core";
import { eventually, removeDir, tempDir, testNodeName } from "../harness.ts";
import { TestExecutor } from "../executor-harness.ts";
import { TestServer } from "../server-harness.ts";

const node = testNodeName(import.meta.file);
// The Beaker account is a local account too: the executor runs the relayed requests as it.
const user = "beaker-test-user";
const server = new TestServer();
const tokenDir = tempDir("beaker-web-sessions-");
let executor: TestExecutor;
let browser: Browser;
let token: string;

beforeAll(async () => {
  token = await server.createUser(user);
  await server.admin(["cluster", "create", "lab"]);
  const tokenFile = await server.addNode(node, "lab", tokenDir);
  await server.start();
  executor = new TestExecutor({ nodeName: node, extra: `server: ${server.url}\ntokenFile: ${tokenFile}\n` });
  executor.removeLeftovers();
  await executor.start();
  browser = await chromium.launch({
    executablePath: process.env.BEAKER_TEST_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
afterAll(async () => {
  await browser?.close();
  await executor.cleanup();
  await server.cleanup();
  removeDir(tokenDir);
});

/** Everything the terminal shows now, its lines joined (kept in `shown` for failure messages). */
let shown = "";
const screenScript = `(() => { const t = window.beakerTerminal; if (!t) return ""; const b = t.buffer.active; const out = [];
  for (let i = 0; i < b.length; i++) out.push(b.getLine(i)?.translateToString(true) ?? ""); return out.join("\\n"); })()`;
const screen = async (page: Page) => (shown = (await page.evaluate(screenScript)) as string);
const sizeOf = async (page: Page) => (await page.evaluate("({ cols: window.beakerTerminal.cols, rows: window.beakerTerminal.rows })")) as { cols: number; rows: number };

async function typeLine(page: Page, line: string): Promise<void> {
  await page.locator("#terminal").click();
  await page.keyboard.type(line);
  await page.keyboard.press("Enter");
}

test("start a session from the node's page, use its terminal, resize it, reload into the same shell, stop it", async () => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${server.url}/login`);
  await page.fill("input[name=token]", token);
  await page.click("button[type=submit]");
  await eventually(async () => (await page.goto(`${server.url}/nodes/${node}`), (await page.locator("form#create").count()) === 1), 30_000, { what: "the node's create form (the node linked)" });
  await page.fill("input[name=gpus]", "1");
  await page.fill("input[name=time]", "1h");
  await page.click("form#create button[type=submit]");
  expect(page.url()).toMatch(new RegExp(`/sessions/[0-9a-f]{12}$`));
  const id = page.url().split("/").at(-1)!;
  expect(page.url()).not.toContain(token.slice(4, 14));
  await eventually(async () => (await page.textContent("#term-state"))?.includes("attached") ?? false, 60_000, { what: "the terminal attached", detail: () => shown });
  expect(await page.textContent("#status")).toBe("running");
  expect(await page.textContent("#gpus")).toBe("1");

  await typeLine(page, "id -un; echo $((6*7))");
  await eventually(async () => /\nbeaker-test-user\s*\n42\b/.test(await screen(page)), 15_000, { what: "the user and 42", detail: () => shown });

  const before = await sizeOf(page);
  await page.setViewportSize({ width: 800, height: 700 });
  await eventually(async () => (await sizeOf(page)).cols < before.cols, 5000, { what: "xterm to fit the narrower window" });
  const after = await sizeOf(page);
  await typeLine(page, "clear; stty size");
  await eventually(async () => (await screen(page)).includes(`${after.rows} ${after.cols}`), 15_000, { what: `stty size to say ${after.rows} ${after.cols}`, detail: () => shown });

  await typeLine(page, "echo shell=$$");
  let pid = "";
  await eventually(async () => ((pid = /shell=(\d+)/.exec(await screen(page))?.[1] ?? ""), pid !== ""), 10_000, { what: "the shell's pid" });
  await page.reload();
  await eventually(async () => (await page.textContent("#term-state"))?.includes("attached") ?? false, 30_000, { what: "attached again after the reload" });
  await typeLine(page, "echo again=$$");
  await eventually(async () => (await screen(page)).includes(`again=${pid}`), 15_000, { what: `the same shell (pid ${pid}) after the reload`, detail: () => shown });

  await page.click("#stop");
  expect(await page.textContent("h1")).toContain("Stop session");
  await page.click("#confirm-stop");
  expect(page.url()).toBe(`${server.url}/sessions/${id}`);
  await eventually(async () => (await page.reload(), ["exited", "ended"].includes((await page.textContent("#status")) ?? "")), 30_000, { what: "the session stopped" });
  await context.close();
}, 180_000);
