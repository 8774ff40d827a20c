/**
 * The session page's script in headless Chromium against the server's handler in process and a fake node link whose
 * terminal is a tiny line-echoing "shell": the form's create waits in the queue and then attaches, keys and resizes go
 * through, Ctrl+Shift+C copies, a dropped link (1012, the executor restarting) attaches again by itself. What the real
 * link and executor add is in web-sessions.test.ts.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { createApp } from "../../src/server/app.ts";
import { migrate, openDb, type Db } from "../../src/server/db.ts";
import { Store } from "../../src/server/store.ts";
import { eventually, removeDir, tempDir } from "../harness.ts";
import { FakeLink, FakeLinks, FakeSocket } from "../web-fakes.ts";

/** The node's side of a terminal: echoes what is typed and answers `stty size` and `echo $$` like a shell would. */
class ShellSocket extends FakeSocket {
  cols: number;
  rows: number;
  private line = "";
  constructor(user: string, path: string, readonly pid: number) {
    super(user, path);
    const q = new URL(path, "http://node").searchParams;
    this.cols = Number(q.get("cols"));
    this.rows = Number(q.get("rows"));
    setTimeout(() => this.out("$ "), 10);
  }
  private out(text: string) {
    if (!this.closed) this.onmessage?.(new TextEncoder().encode(text));
  }
  override send(message: string | Uint8Array): boolean {
    super.send(message);
    if (typeof message === "string") {
      const m = JSON.parse(message) as { cols: number; rows: number };
      [this.cols, this.rows] = [m.cols, m.rows];
      return true;
    }
    for (const ch of new TextDecoder().decode(message)) {
      if (ch !== "\r") {
        this.line += ch;
        this.out(ch);
        continue;
      }
      const answer = this.line === "stty size" ? `${this.rows} ${this.cols}` : this.line === "echo $$" ? String(this.pid) : this.line;
      this.line = "";
      this.out(`\r\n${answer}\r\n$ `);
    }
    return true;
  }
}

class ShellLink extends FakeLink {
  override socket(user: string, path: string): FakeSocket {
    const socket = new ShellSocket(user, path, 4242);
    this.sockets.push(socket);
    return socket;
  }
}

let dir: string;
let db: Db;
let server: ReturnType<typeof Bun.serve>;
let browser: Browser;
let token: string;
const link = new ShellLink();

beforeAll(async () => {
  dir = tempDir("beaker-web-page-");
  db = openDb(`sqlite://${join(dir, "s.db")}`);
  await migrate(db);
  const store = new Store(db);
  token = (await store.createUser("alice", false)).token;
  await store.createCluster("lab");
  await store.addNode("n1", "lab");
  const gpus = [0, 1].map((i) => ({ index: i, uuid: `GPU-${i}`, name: "H100", memoryMiB: 81920, claimedBy: null, healthy: true }));
  await store.heartbeat("n1", { cpus: 8, memoryBytes: 2 ** 34, version: "0.1.0", gpus, sessions: [] });
  const links = new FakeLinks();
  links.links.set("n1", link);
  const app = createApp({ store, releasesDir: null, log: () => {}, links });
  server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch, websocket: app.websocket });
  browser = await chromium.launch({
    executablePath: process.env.BEAKER_TEST_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
afterAll(async () => {
  await browser?.close();
  await server?.stop(true);
  await db.close();
  removeDir(dir);
});

let shown = "";
const screenScript = `(() => { const t = window.beakerTerminal; if (!t) return ""; const b = t.buffer.active; const out = [];
  for (let i = 0; i < b.length; i++) out.push(b.getLine(i)?.translateToString(true) ?? ""); return out.join("\\n"); })()`;
const screen = async (page: Page) => (shown = (await page.evaluate(screenScript)) as string);
const sizeOf = async (page: Page) => (await page.evaluate("({ cols: window.beakerTerminal.cols, rows: window.beakerTerminal.rows })")) as { cols: number; rows: number };
const state = async (page: Page) => (await page.textContent("#term-state")) ?? "";

test("create from the form, wait in the queue, then a working terminal that resizes, copies and comes back after a drop", async () => {
  const base = server.url.href.replace(/\/$/, "");
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const page = await context.newPage();
  const failures: string[] = [];
  page.on("pageerror", (e) => failures.push(String(e)));
  page.on("response", (r) => r.status() >= 400 && !r.url().endsWith("/favicon.ico") && failures.push(`${r.status()} ${r.url()}`));
  await page.goto(`${base}/login`);
  await page.fill("input[name=token]", token);
  await page.click("button[type=submit]");
  await page.goto(`${base}/nodes/n1`);
  link.createEvents = [{ type: "queued", sessionId: "$ID", position: 2, gpus: 1, free: 0 }];
  await page.fill("input[name=gpus]", "1");
  await page.click("form#create button[type=submit]");
  const id = page.url().split("/").at(-1)!;
  expect(page.url()).toBe(`${base}/sessions/${id}`);
  await eventually(async () => (await page.textContent("#position")) === "2", 10_000, { what: "queue position 2 on the page" });
  await eventually(async () => (await state(page)).includes("waiting in the node's queue"), 5000, { what: "the script following the queue" });

  link.sessions.get(id)!.status = "running";
  await eventually(async () => (await state(page)).includes("attached"), 10_000, { what: "attached once running" });
  const first = link.sockets.at(-1) as ShellSocket;
  expect(first.user).toBe("alice");
  expect(first.path).toMatch(new RegExp(`^/v1/sessions/${id}/attach\\?cols=\\d+&rows=\\d+$`));

  await page.locator("#terminal").click();
  await page.keyboard.type("hello web");
  await page.keyboard.press("Enter");
  await eventually(async () => (await screen(page)).includes("hello web\n$ "), 5000, { what: "the echo", detail: () => shown });

  const before = await sizeOf(page);
  expect([first.cols, first.rows]).toEqual([before.cols, before.rows]);
  await page.setViewportSize({ width: 700, height: 600 });
  await eventually(async () => (await sizeOf(page)).cols < before.cols && first.cols === (await sizeOf(page)).cols, 5000, { what: "the resize sent to the node" });
  const after = await sizeOf(page);
  await page.keyboard.type("stty size");
  await page.keyboard.press("Enter");
  await eventually(async () => (await screen(page)).includes(`${after.rows} ${after.cols}`), 5000, { what: "stty size", detail: () => shown });

  await page.evaluate("window.beakerTerminal.selectAll()");
  await page.keyboard.press("Control+Shift+C");
  await eventually(async () => String(await page.evaluate("navigator.clipboard.readText()")).includes("hello web"), 5000, { what: "the selection copied" });

  // The executor restarts: the node's side closes with 1012; the page attaches again by itself, at its size.
  first.onclose!(1012, "executor restarting");
  await eventually(async () => link.sockets.length === 2 && (await state(page)).includes("attached"), 10_000, { what: "attached again", detail: () => shown });
  const second = link.sockets.at(-1) as ShellSocket;
  expect([second.cols, second.rows]).toEqual([after.cols, after.rows]);
  await page.keyboard.type("echo $$");
  await page.keyboard.press("Enter");
  await eventually(async () => (await screen(page)).includes("4242"), 5000, { what: "the shell answering after the reattach", detail: () => shown });
  expect(failures).toEqual([]);
  await context.close();
}, 60_000);
