/** The HTML of a session's page and of its stop confirmation. */
import { html } from "./html.ts";
import { page, type SignedIn } from "./web.ts";
import { notLinked } from "./web-creates.ts";

/** What the page (and its status JSON) says of a session: the executor's answer, else the server's records. */
export interface SessionPageView {
  id: string;
  name: string;
  node: string;
  status: string;
  gpus: string[];
  /** GPUs asked for, while it holds none yet (queued). */
  requestedGpus: number | null;
  image: string;
  queuePosition: number | null;
  /** The node's last word on a create waiting in its queue or pulling its image. */
  line: string | null;
  error: string | null;
  tty: boolean;
  /** Whether the node is linked now: the terminal and the stop button need it. */
  linked: boolean;
}

const assets = html`<link rel="stylesheet" href="/assets/xterm.css"><script src="/assets/xterm.js"></script><script src="/assets/addon-fit.js"></script><script src="/assets/session.js"></script>`;

const terminalStyle = html`<style>#terminal{height:30em;background:#000;padding:4px;margin-top:1em}#terminal[hidden]{display:none}#term-state{color:#5b6770}</style>`;

export function sessionPage(viewer: SignedIn, v: SessionPageView): Response {
  const gpus = v.gpus.length > 0 ? String(v.gpus.length) : v.requestedGpus !== null ? `${v.requestedGpus} asked for` : "0";
  return page(
    `Session ${v.name}`,
    viewer,
    html`<h1>Session ${v.name}</h1>
<p><code>${v.id}</code> on node <a href="/nodes/${encodeURIComponent(v.node)}">${v.node}</a></p>
<table id="session" data-session="${v.id}" data-tty="${v.tty ? "1" : "0"}" data-linked="${v.linked ? "1" : "0"}">
<tr><th>Status</th><td id="status">${v.status}</td></tr>
<tr><th>Queue position</th><td id="position">${v.queuePosition ?? "-"}</td></tr>
<tr><th>GPUs</th><td id="gpus">${gpus}</td></tr>
<tr><th>Image</th><td id="image">${v.image}</td></tr></table>
<p id="line">${v.line ?? ""}</p>
<p class="error" role="alert" id="error">${v.error ?? ""}</p>
${
  v.linked
    ? html`<form method="post" action="/sessions/${v.id}/stop"><input type="hidden" name="csrf" value="${viewer.csrf}"><button type="submit" id="stop">Stop session</button></form>
<p id="term-state"></p><div id="terminal" hidden></div>${terminalStyle}${assets}`
    : html`<p class="offline" id="not-linked">${notLinked}</p>`
}`,
  );
}

export function stopConfirmPage(viewer: SignedIn, v: SessionPageView): Response {
  return page(
    `Stop ${v.name}`,
    viewer,
    html`<h1>Stop session ${v.name}?</h1>
<p>Its processes get 10 seconds to end, then they are killed, and its GPUs go back to the node. This cannot be undone.</p>
<form method="post" action="/sessions/${v.id}/stop"><input type="hidden" name="csrf" value="${viewer.csrf}"><input type="hidden" name="confirm" value="yes">
<button type="submit" id="confirm-stop">Stop it</button> <a href="/sessions/${v.id}">Cancel</a></form>`,
  );
}
