/** A stand-in for a session's web app (Jupyter's shape: HTTP and a WebSocket), that says what reached it. */
import { createHash } from "node:crypto";
import type { Server } from "bun";

export function startSessionApp(): Server<unknown> {
  return Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req, server) {
      const url = new URL(req.url);
      if (url.pathname === "/ws") {
        const protocol = (req.headers.get("sec-websocket-protocol") ?? "").split(",")[0]?.trim();
        const headers = protocol ? { "sec-websocket-protocol": protocol } : undefined;
        if (server.upgrade(req, { data: { headers: Object.fromEntries(req.headers) }, headers })) return undefined;
      }
      if (url.pathname === "/upload") {
        const hash = createHash("sha256");
        let bytes = 0;
        for await (const chunk of req.body as unknown as AsyncIterable<Uint8Array>) {
          bytes += chunk.byteLength;
          hash.update(chunk);
        }
        return Response.json({ bytes, sha256: hash.digest("hex") });
      }
      if (url.pathname === "/stream") {
        let n = 0;
        return new Response(
          new ReadableStream({
            async pull(controller) {
              await Bun.sleep(30);
              controller.enqueue(new TextEncoder().encode(`tick ${n}\n`));
              if (++n === 5) controller.close();
            },
          }),
          { headers: { "content-type": "text/plain" } },
        );
      }
      if (url.pathname === "/big") return new Response(new Uint8Array(24 * 1024 * 1024).fill(7));
      if (url.pathname === "/cookie") return new Response("ok", { headers: { "set-cookie": "app=1; Domain=localhost; Path=/" } });
      if (url.pathname === "/redirect") return new Response(null, { status: 302, headers: { location: "/echo" } });
      return Response.json({ method: req.method, path: url.pathname + url.search, headers: Object.fromEntries(req.headers) });
    },
    websocket: {
      open(ws) {
        ws.send(JSON.stringify({ hello: (ws.data as { headers: Record<string, string> }).headers }));
      },
      message(ws, message) {
        ws.send(message);
      },
    },
  });
}
