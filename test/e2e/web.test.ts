/** The server's web pages in headless Chromium (Debian's), as a researcher uses them to pick a node. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { eventually, fixture, removeDir, tempDir, testNodeName } from "../harness.ts";
import { TestExecutor } from "../executor-harness.ts";
import { TestServer } from "../server-harness.ts";

const node = testNodeName(import.meta.file);

const server = new TestServer();
const tokenDir = tempDir("beaker-web-");
let executor: TestExecutor;
let browser: Browser;
let alice: string;

beforeAll(async () => {
  alice = await server.createUser("alice");
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

test("sign in with a token (no JavaScript needed), see the cluster, and the node's free GPUs go down when a session starts", async () => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(server.url);
  expect(page.url()).toBe(`${server.url}/login`);

  await page.fill("input[name=token]", "bkr_0123456789_" + "C".repeat(43));
  await page.click("button[type=submit]");
  expect(await page.textContent("[role=alert]")).toContain("That token is not valid");

  await page.fill("input[name=token]", alice);
  await page.click("button[type=submit]");
  expect(page.url()).toBe(`${server.url}/`);
  const cookie = (await context.cookies()).find((c) => c.name === "beaker_session")!;
  expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Lax" });
  expect(cookie.value).not.toContain(alice.slice(15));

  const freeGpus = async () => {
    await page.goto(`${server.url}/clusters/lab`);
    return (await page.textContent(`tr[data-node=${node}] td.gpus`))?.trim();
  };
  await page.click("text=lab");
  expect(page.url()).toBe(`${server.url}/clusters/lab`);
  await eventually(async () => (await freeGpus()) === "8 / 8", 30_000, { what: "8 / 8 free on the page" });
  const row = page.locator(`tr[data-node=${node}]`);
  expect(await row.locator("td").nth(3).textContent()).toBe("online");
  expect(await row.locator("textarea").inputValue()).toBe(`ssh ${node}\nbeaker session create --gpus 1`);

  const created = await executor.run(["session", "create", "--detach", "--json", "--gpus", "3", "--", "sleep", "300"], { env: { BEAKER_TOKEN: alice } });
  expect(created.exitCode).toBe(0);
  await eventually(async () => (await freeGpus()) === "5 / 8", 30_000, { what: "5 / 8 free on the page" });

  await page.click(`text=${node}`);
  expect(await page.textContent("h1")).toBe(`Node ${node}`);
  const held = await page.locator("td", { hasText: "session" }).count();
  expect(held).toBe(3);
  // Once the session runs (the next heartbeat says so), its row gives the line to SSH into it from anywhere.
  const { id, name } = JSON.parse(created.stdout) as { id: string; name: string };
  const sessionRow = async () => (await page.locator("tr:not([data-gpu])", { hasText: id }).textContent()) ?? "";
  await eventually(async () => (await page.reload(), (await sessionRow()).includes("running")), 30_000, { what: "the session's row to say running" });
  expect(await sessionRow()).toContain(`ssh ${name}.${node}.beaker`);
  await page.click("text=My sessions");
  expect(await page.locator("tbody tr").count()).toBe(1);
  expect(await page.textContent("tbody tr")).toContain("alice");
  expect(await page.textContent("tbody tr")).toContain(`ssh ${name}.${node}.beaker`);

  await page.click("text=Sign out");
  expect(page.url()).toBe(`${server.url}/login`);
  await page.goto(`${server.url}/clusters/lab`);
  expect(page.url()).toBe(`${server.url}/login`);
  await context.close();
  await executor.run(["session", "stop", "--timeout", "0", id]);
}, 90_000);

test("what nodes report is escaped on the pages; the copy button works with JavaScript", async () => {
  const evil = `<img src=x onerror="document.title='pwned'">`;
  const evilDir = join(tokenDir, "evil-node");
  mkdirSync(evilDir);
  const nodeToken = (await Bun.file(await server.addNode("evil-node", "lab", evilDir)).text()).trim();
  const beat = {
    cpus: 1,
    memoryBytes: 1,
    version: evil,
    gpus: [{ index: 0, uuid: "GPU-evil", name: evil, memoryMiB: 1, claimedBy: "s1", healthy: true }],
    sessions: [{ id: "s1", name: evil, user: "alice", gpus: ["GPU-evil"], image: evil, status: "running", createdAt: new Date().toISOString(), startedAt: null }],
  };
  expect((await server.api("/nodes/evil-node/heartbeat", nodeToken, { method: "PUT", body: JSON.stringify(beat) })).status).toBe(200);
  const context = await browser.newContext();
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
  const page = await context.newPage();
  await page.goto(`${server.url}/login`);
  await page.fill("input[name=token]", alice);
  await page.click("button[type=submit]");
  for (const path of ["/clusters/lab", "/nodes/evil-node", "/sessions"]) {
    await page.goto(`${server.url}${path}`);
    expect(await page.title()).not.toBe("pwned");
    expect(await page.locator("img").count()).toBe(0);
  }
  expect(await page.content()).toContain("&lt;img src=x");
  await page.goto(`${server.url}/clusters/lab`);
  await page.locator(`tr[data-node=${node}] button[data-copy]`).click();
  expect(await page.evaluate("navigator.clipboard.readText()")).toBe(`ssh ${node}\nbeaker session create --gpus 1`);
  await context.close();
}, 60_000);

test("the node and session pages show a bar per GPU with its use, and the time a session has left", async () => {
  // GPU 0 at 40% with 10 GiB in use, GPU 1 at 60%, the rest idle; sampled every second.
  const dir = tempDir("beaker-use-");
  const side = new TestExecutor({
    nodeName: "use-node",
    utilization: ["40/10240 60/2048 0 0 0 0 0 0"],
    extra: `server: ${server.url}\ntokenFile: ${await server.addNode("use-node", "lab", dir)}\ngpuSampleInterval: 1s\nmaxDuration: 2h\n`,
  });
  await side.start();
  try {
    const created = await side.run(["session", "create", "--detach", "--json", "--gpus", "2", "--name", "trainer", "--", "sleep", "300"], { env: { BEAKER_TOKEN: alice } });
    expect(created.exitCode).toBe(0);
    const { id, gpus } = JSON.parse(created.stdout) as { id: string; gpus: string[] };
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${server.url}/login`);
    await page.fill("input[name=token]", alice);
    await page.click("button[type=submit]");
    const meters = async (path: string, row: string) => {
      await page.goto(`${server.url}${path}`);
      return page.locator(`${row} meter.use`).evaluateAll((all) => all.map((m) => (m as unknown as { value: number }).value));
    };
    let last: number[] = [];
    await eventually(async () => (last = await meters("/sessions", `tr[data-session="${id}"]`)).join() === "40,60", 20_000, {
      what: "the session's bars at 40 and 60",
      detail: () => `last: ${last.join(",")}`,
    });
    expect(last).toEqual([40, 60]);
    expect(await page.locator(`tr[data-session="${id}"] .limits`).textContent()).toMatch(/^1h5\dm left$/);
    expect(await meters("/nodes/use-node", `tr[data-gpu="${gpus[0]}"]`)).toEqual([40]);
    const row = page.locator(`tr[data-gpu="${gpus[0]}"] td`);
    expect(await row.nth(2).textContent()).toBe("40%");
    expect(await row.nth(3).textContent()).toBe("10 / 32 GiB");
    expect(await meters("/nodes/use-node", `tr[data-gpu="${gpus[1]}"]`)).toEqual([60]);
    await context.close();
  } finally {
    await side.cleanup();
    removeDir(dir);
  }
}, 60_000);

test("a node's page says why a GPU is unavailable: busy with no session (process names and pids for admins only), or unhealthy in the driver's words", async () => {
  // The V100 recording as it is, on GPU 0 a `python` (pid 37305) that no session owns; the other GPUs without
  // processes, and GPU 1 one the driver cannot reach (the line nvidia-smi prints before its XML then).
  const recording = readFileSync(fixture("datakit_tesla-v100s-pcie-32gb_x8_drv460.73_q_x.xml"), "utf8");
  let seen = 0;
  const xml = recording.replace(/<processes>[\s\S]*?<\/processes>/g, (block) => (seen++ === 0 ? block : "<processes>\n\t\t</processes>"));
  const [busy, lost] = [...xml.matchAll(/<uuid>(GPU-[^<]+)<\/uuid>/g)].map((m) => m[1]!);
  const dir = tempDir("beaker-busy-");
  const busyNode = testNodeName(import.meta.file, "busy");
  const side = new TestExecutor({
    nodeName: busyNode,
    nvidiaSmiXml: `Unable to determine the device handle for GPU00000000:00:0E.0: GPU is lost.  Reboot the system to recover this GPU\n${xml}`,
    extra: `server: ${server.url}\ntokenFile: ${await server.addNode(busyNode, "lab", dir)}\n`,
  });
  const ops = await server.createUser("ops", true);
  await side.start();
  try {
    const states = async (token: string) => {
      const context = await browser.newContext({ javaScriptEnabled: false });
      const page = await context.newPage();
      await page.goto(`${server.url}/login`);
      await page.fill("input[name=token]", token);
      await page.click("button[type=submit]");
      await eventually(
        async () => {
          await page.goto(`${server.url}/nodes/${busyNode}`);
          return (await page.locator("tr[data-gpu]").count()) === 8;
        },
        30_000,
        { what: "the node page with its 8 GPUs" },
      );
      const state = async (uuid: string) => page.locator(`tr[data-gpu="${uuid}"] td.state`).textContent();
      const result = { busy: await state(busy!), lost: await state(lost!), free: await page.locator("td.state", { hasText: /^free$/ }).count(), html: await page.content() };
      await context.close();
      return result;
    };
    const asAlice = await states(alice);
    expect(asAlice).toMatchObject({
      busy: "busy, no session",
      lost: "unhealthy: the driver cannot reach this GPU: GPU is lost.  Reboot the system to recover this GPU",
      free: 6,
    });
    expect(asAlice.html).not.toContain("37305");
    expect(await states(ops)).toMatchObject({ busy: "busy, no session: python (pid 37305)", free: 6 });
  } finally {
    await side.cleanup();
    removeDir(dir);
  }
}, 60_000);
