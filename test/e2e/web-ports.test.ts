/**
 * A session's Jupyter in the browser, as its owner opens it: the port link on My sessions, the hand-off to the port's
 * own origin (`ID-8888.localhost`, which Chromium resolves to loopback), a notebook whose cell prints 2**10 over the
 * proxied kernel WebSocket. The other user gets the same 404 as for no session, on both origins. Needs the Jupyter
 * image (scripts/lib.sh ensure_jupyter_image); the server reaches the session over the node link.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chownSync, writeFileSync } from "node:fs";
import { chromium, type Browser, type BrowserContext } from "playwright-core";
import { eventually, removeDir, tempDir, testNodeName } from "../harness.ts";
import { otherUser, TestExecutor, testUser } from "../executor-harness.ts";
import { TestServer } from "../server-harness.ts";

const jupyterImage = process.env.BEAKER_TEST_JUPYTER_IMAGE ?? "beaker-test/jupyter:bookworm";
const node = testNodeName(import.meta.file);
const server = new TestServer(undefined, undefined, ["--ports-domain", "localhost"]);
const tokenDir = tempDir("beaker-web-ports-");
const notebook = `/home/${testUser}/beaker-web-ports.ipynb`;
let executor: TestExecutor;
let browser: Browser;
let token: string;
let otherToken: string;
let sessionId: string;

async function signIn(as: string): Promise<BrowserContext> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${server.url}/login`);
  await page.fill("input[name=token]", as);
  await page.click("button[type=submit]");
  expect(page.url()).toBe(`${server.url}/`);
  return context;
}

beforeAll(async () => {
  token = await server.createUser(testUser);
  otherToken = await server.createUser(otherUser);
  await server.admin(["cluster", "create", "lab"]);
  const tokenFile = await server.addNode(node, "lab", tokenDir);
  await server.start();
  executor = new TestExecutor({ nodeName: node, extra: `server: ${server.url}\ntokenFile: ${tokenFile}\n` });
  executor.removeLeftovers();
  await executor.start();
  const cells = [{ id: "c1", cell_type: "code", execution_count: null, metadata: {}, outputs: [], source: [] }];
  writeFileSync(notebook, JSON.stringify({ cells, metadata: { kernelspec: { name: "python3", display_name: "Python 3", language: "python" } }, nbformat: 4, nbformat_minor: 5 }));
  const uid = Number(Bun.spawnSync(["id", "-u", testUser]).stdout.toString());
  chownSync(notebook, uid, uid);
  const created = await executor.run(
    ["session", "create", "--detach", "--json", "--gpus", "0", "--image", jupyterImage, "--port", "8888", "--",
      "jupyter", "notebook", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--NotebookApp.token=", "--NotebookApp.password=", "--NotebookApp.base_url=/"],
    { user: testUser, env: { BEAKER_TOKEN: token } },
  );
  if (created.exitCode !== 0) throw new Error(`session create: ${created.stderr}`);
  sessionId = (JSON.parse(created.stdout) as { id: string }).id;
  browser = await chromium.launch({
    executablePath: process.env.BEAKER_TEST_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--host-resolver-rules=MAP *.localhost 127.0.0.1"],
  });
});
afterAll(async () => {
  await browser?.close();
  await executor?.cleanup();
  await server.cleanup();
  removeDir(tokenDir);
  Bun.spawnSync(["rm", "-f", notebook]);
});

test("the owner opens the session's Jupyter on its own origin and runs a cell", async () => {
  const context = await signIn(token);
  const page = await context.newPage();
  const origin = `http://${sessionId}-8888.localhost:${server.port}`;
  // The node reports the session and its port; then the link leads through the hand-off to Jupyter.
  await eventually(
    async () => {
      await page.goto(`${server.url}/sessions`);
      return (await page.locator(`a.port[href="/sessions/${sessionId}/ports/8888/"]`).count()) === 1;
    },
    60_000,
    { what: "the port link on My sessions" },
  );
  await eventually(
    async () => {
      await page.click(`a.port[href="/sessions/${sessionId}/ports/8888/"]`);
      await page.waitForURL(`${origin}/**`, { timeout: 10_000 });
      const title = await page.title();
      if (!/Jupyter|Home/.test(title)) {
        await page.goto(`${server.url}/sessions`);
        return false;
      }
      return true;
    },
    90_000,
    { what: "Jupyter's page through the proxy", detail: () => executor.log().slice(-1500) },
  );
  const cookies = await context.cookies(origin);
  expect(cookies.find((c) => c.name === "beaker_port")).toMatchObject({ httpOnly: true, sameSite: "Lax" });
  expect(cookies.find((c) => c.name === "beaker_session")).toBeUndefined();

  await page.goto(`${origin}/notebooks/beaker-web-ports.ipynb`);
  await page.waitForSelector(".CodeMirror", { timeout: 30_000 });
  await page.waitForSelector("#kernel_indicator_icon.kernel_idle_icon", { timeout: 60_000 });
  await page.click(".CodeMirror");
  await page.keyboard.type("print(2**10)");
  await page.keyboard.press("Shift+Enter");
  await page.waitForSelector(".output_area pre:has-text('1024')", { timeout: 30_000 });
  await context.close();
});

test("the other user gets 404 on the main path and on the port origin", async () => {
  const context = await signIn(otherToken);
  const page = await context.newPage();
  const main = await page.goto(`${server.url}/sessions/${sessionId}/ports/8888/`);
  expect(main?.status()).toBe(404);
  const none = await page.goto(`${server.url}/sessions/ffffffffffff/ports/8888/`);
  expect(none?.status()).toBe(404);
  const port = await page.goto(`http://${sessionId}-8888.localhost:${server.port}/tree`);
  expect(port?.status()).toBe(404);
  expect(await page.textContent("body")).not.toContain("Jupyter");
  await context.close();
});
