import { formatDuration } from "../util/duration.ts";
import { formatAgo } from "../util/time.ts";
import { Html, html } from "./html.ts";
import type { Principal, Store } from "./store.ts";
import type { NodeInfo, NodeSession } from "./types.ts";
import type { CreateFormValues } from "./web-create-form.ts";
import { notLinked } from "./web-creates.ts";

type User = Extract<Principal, { kind: "user" }>;

/** A signed-in viewer and the CSRF token its page's forms carry (src/server/web-security.ts). */
export type SignedIn = User & { csrf: string };

const style = `
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2327;background:#f6f7f8}
header{background:#24303a;color:#fff;padding:.7em 1.5em;display:flex;gap:1.5em;align-items:center}
header a{color:#fff;text-decoration:none}header form{margin-left:auto}
main{max-width:70em;margin:1.5em auto;padding:0 1.5em}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.45em .7em;border-bottom:1px solid #e3e6e8}
th{font-size:.85em;color:#5b6770;text-transform:uppercase}
.online{color:#17803d}.offline{color:#a1262b}.cordoned{color:#8a6100}
textarea.cmd,input.cmd{resize:none;font:13px ui-monospace,monospace;width:100%;border:1px solid #d0d5d9;padding:.25em .4em;background:#fbfbfc}
.error{color:#a1262b}code{font:13px ui-monospace,monospace}
meter.use{width:4.5em;height:.9em;vertical-align:middle;margin-right:.3em}.use-cell{white-space:nowrap}
`;

/** A small bar for one GPU's utilization (a native <meter>: no script, no image), with the figure beside it. */
function useBar(utilization: number | null | undefined): Html {
  if (utilization === null || utilization === undefined) return html`<span class="use-none">-</span>`;
  return html`<meter class="use" min="0" max="100" low="5" high="101" optimum="100" value="${utilization}" title="${utilization}%"></meter>${utilization}%`;
}

/** How long a session's GPUs have been idle and how long it has left, as `session list` says it: "idle 2h05m, 1h10m left". */
function limitsText(s: NodeSession, now: number): string {
  const parts: string[] = [];
  if (s.idleSince) parts.push(`idle ${formatDuration((now - Date.parse(s.idleSince)) / 1000)}`);
  if (s.deadline) parts.push(`${formatDuration((Date.parse(s.deadline) - now) / 1000)} left`);
  return parts.join(", ");
}

/** Copies the command next to a button; the field itself is selectable, so the page works without JavaScript. */
const copyScript = `document.addEventListener("click",e=>{const b=e.target.closest("button[data-copy]");if(!b)return;
const f=document.getElementById(b.dataset.copy);navigator.clipboard?.writeText(f.value).then(()=>{b.textContent="Copied"})})`;

/** Scripts and styles from this server only (xterm.js among them) and inline ones; sockets and fetches to it only. */
const csp = "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'";

export function page(title: string, user: SignedIn | null, body: Html): Response {
  const doc = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title} · Beaker</title><style>${new Html(style)}</style></head>
<body><header><a href="/"><strong>Beaker</strong></a>${
    user ? html`<a href="/">Clusters</a><a href="/sessions">My sessions</a><span>${user.user.name}</span><form method="post" action="/logout"><input type="hidden" name="csrf" value="${user.csrf}"><button>Sign out</button></form>` : ""
  }</header>
<main>${body}</main><script>${new Html(copyScript)}</script></body></html>`;
  return new Response(doc.text, { headers: { "content-type": "text/html; charset=utf-8", "x-content-type-options": "nosniff", "content-security-policy": csp } });
}

export function loginPage(error: string | null): Response {
  return page(
    "Sign in",
    null,
    html`<h1>Sign in</h1>
<p>Paste your Beaker user token. Your admin gives you one (<code>beaker server user create NAME</code>), and
<code>beaker account token rotate</code> replaces it.</p>
${error ? html`<p class="error" role="alert">${error}</p>` : ""}
<form method="post" action="/login"><label>Token <input name="token" type="password" autocomplete="current-password" required size="60"></label>
<button type="submit">Sign in</button></form>`,
  );
}

export async function clustersPage(store: Store, user: SignedIn): Promise<Response> {
  const clusters = await store.listClusters();
  return page(
    "Clusters",
    user,
    html`<h1>Clusters</h1>${
      clusters.length === 0
        ? html`<p>No clusters yet. An admin adds one with <code>beaker server cluster create NAME</code>.</p>`
        : html`<table><thead><tr><th>Cluster</th><th>Nodes online</th><th>GPUs free / total</th></tr></thead><tbody>${clusters.map(
            (c) => html`<tr><td><a href="/clusters/${encodeURIComponent(c.name)}">${c.name}</a></td><td>${c.nodesOnline} / ${c.nodes}</td><td>${c.gpusFree} / ${c.gpusTotal}</td></tr>`,
          )}</tbody></table>`
    }`,
  );
}

function nodeRow(n: NodeInfo, now: number, i: number): Html {
  const ssh = `ssh ${n.hostname}`;
  const create = "beaker session create --gpus 1";
  return html`<tr data-node="${n.hostname}"><td><a href="/nodes/${encodeURIComponent(n.hostname)}">${n.hostname}</a></td><td>${n.gpuType ?? "-"}</td>
<td class="gpus">${n.gpusFree} / ${n.gpusTotal}</td><td class="${n.status}">${n.status}</td><td>${formatAgo(n.lastSeen, now)}</td>
<td><textarea class="cmd" id="cmd-${i}" readonly rows="2" aria-label="commands for ${n.hostname}">${`${ssh}\n${create}`}</textarea> <button type="button" data-copy="cmd-${i}">Copy</button></td></tr>`;
}

export async function clusterPage(store: Store, user: SignedIn, name: string, now: number): Promise<Response> {
  const nodes = await store.listNodes(name);
  return page(
    name,
    user,
    html`<h1>Cluster ${name}</h1>
<p>Pick a node with free GPUs, SSH to it, and start a session there: <code>ssh HOST</code>, then <code>beaker session create</code>.</p>
<table><thead><tr><th>Hostname</th><th>GPU type</th><th>GPUs free / total</th><th>Status</th><th>Last seen</th><th>Commands</th></tr></thead>
<tbody>${nodes.map((n, i) => nodeRow(n, now, i))}</tbody></table>`,
  );
}

/**
 * A session's ports as links to their hand-off page, and a form to open any other port the session listens on (no
 * JavaScript needed); the owner's own running sessions only.
 */
function portLinks(s: NodeSession): Html {
  return html`${(s.ports ?? []).map((p) => html`<a class="port" href="/sessions/${s.id}/ports/${p}/">${p}</a> `)}<form class="open-port" method="get" action="/sessions/${s.id}/ports"><input name="port" type="number" min="1" max="65535" required aria-label="another port of ${s.name}" placeholder="port"> <button type="submit">Open</button></form>`;
}

/** Sessions as rows; the viewer's own link to their pages (terminal, stop), and `ports`' cell when given. */
function sessionsTable(sessions: Array<NodeSession & { node: string }>, now: number, showNode: boolean, viewer: string, ports?: (s: NodeSession) => Html): Html {
  if (sessions.length === 0) return html`<p>No sessions.</p>`;
  return html`<table><thead><tr><th>Session</th><th>User</th>${showNode ? html`<th>Node</th>` : ""}<th>GPUs</th><th>GPU use</th><th>Image</th><th>Status</th><th>Age</th>${ports ? html`<th>Ports</th>` : ""}</tr></thead><tbody>${sessions.map(
    (s) =>
      html`<tr data-session="${s.id}"><td>${s.user === viewer ? html`<a href="/sessions/${encodeURIComponent(s.id)}">${s.name}</a>` : s.name} <code>${s.id}</code>${s.status === "running" ? html`<br><code>ssh ${s.name}.${s.node}.beaker</code>` : ""}</td><td>${s.user}</td>${showNode ? html`<td><a href="/nodes/${encodeURIComponent(s.node)}">${s.node}</a></td>` : ""}<td>${s.gpus.length}</td><td class="use-cell">${s.gpus.map((_, i) => html`${i > 0 ? html`<br>` : ""}${useBar(s.utilization?.[i])}`)}</td><td>${s.image}</td><td>${s.status}${limitsText(s, now) ? html`<br><small class="limits">${limitsText(s, now)}</small>` : ""}</td><td>${formatAgo(s.startedAt ?? s.createdAt, now).replace(" ago", "")}</td>${ports ? html`<td>${ports(s)}</td>` : ""}</tr>`,
  )}</tbody></table>`;
}

/** A node's page; `form` is the create form's state: whether the node is linked, and a refused try's values and error. */
export async function nodePage(store: Store, user: SignedIn, hostname: string, now: number, form: { linked: boolean; values?: CreateFormValues; error?: string }): Promise<Response> {
  const node = await store.getNode(hostname, user.user);
  return page(
    hostname,
    user,
    html`<h1>Node ${node.hostname}</h1>
<p>Cluster <a href="/clusters/${encodeURIComponent(node.cluster)}">${node.cluster}</a> · <span class="${node.status}">${node.status}</span> · last seen ${formatAgo(node.lastSeen, now)} ·
${node.cpus} CPUs · ${(node.memoryBytes / 2 ** 30).toFixed(0)} GiB · <span class="gpus">${node.gpusFree} / ${node.gpusTotal}</span> GPUs free</p>
<p><input class="cmd" id="cmd-node" readonly value="${`ssh ${node.hostname}`}" aria-label="ssh command"> <button type="button" data-copy="cmd-node">Copy</button></p>
<h2>GPUs</h2><table><thead><tr><th>Index</th><th>Name</th><th>Use</th><th>Memory used</th><th>UUID</th><th>State</th></tr></thead><tbody>${node.gpus.map(
      (g) =>
        html`<tr data-gpu="${g.uuid}"><td>${g.index ?? "-"}</td><td>${g.name ?? "-"}</td><td class="use-cell">${useBar(g.utilization)}</td><td>${
          g.memoryUsedMiB === null || g.memoryUsedMiB === undefined ? "-" : `${Math.round(g.memoryUsedMiB / 1024)}`
        } / ${g.memoryMiB === null ? "-" : `${Math.round(g.memoryMiB / 1024)} GiB`}</td><td><code>${g.uuid}</code></td><td class="state">${
          g.claimedBy ? html`session <code>${g.claimedBy}</code>${g.reason ? ` · ${g.reason}` : ""}` : (g.reason ?? "free")
        }</td></tr>`,
    )}</tbody></table>
${createForm(node, user.csrf, form.linked, form.values ?? null, form.error ?? null)}
<h2>Sessions</h2>${sessionsTable(node.sessions, now, false, user.user.name)}`,
  );
}

/**
 * `portsOff`: the line that says ports in the browser are off (no `portsDomain`), or null: they are on, and the
 * user's own running sessions link their ports.
 */
export async function mySessionsPage(store: Store, user: SignedIn, now: number, portsOff: Html | null): Promise<Response> {
  const sessions = await store.listSessions(user.user);
  const own = (s: NodeSession) => s.user === user.user.name && s.status === "running";
  const withPorts = sessions.some((s) => own(s) && (s.ports ?? []).length > 0);
  const ports = portsOff ? undefined : (s: NodeSession) => (own(s) ? portLinks(s) : html``);
  return page(
    "My sessions",
    user,
    html`<h1>${user.user.admin ? "All sessions" : "My sessions"}</h1>${portsOff && withPorts ? portsOff : ""}${sessionsTable(sessions, now, true, user.user.name, ports)}`,
  );
}

/** The create form on a node's page; `error` is the last try's refusal, shown above it with the values kept. */
function createForm(node: { hostname: string; gpusFree: number; gpusTotal: number }, csrf: string, linked: boolean, values: CreateFormValues | null, error: string | null): Html {
  if (!linked) return html`<h2>Start a session</h2><p class="offline" id="not-linked">${notLinked}</p>`;
  const v = values ?? { image: "", gpus: node.gpusTotal > 0 ? "1" : "0", time: "", name: "" };
  return html`<h2>Start a session</h2>
${error ? html`<p class="error" role="alert">${error}</p>` : ""}
<form method="post" action="/nodes/${encodeURIComponent(node.hostname)}/sessions" id="create"><input type="hidden" name="csrf" value="${csrf}">
<p><label>Image <input name="image" value="${v.image}" placeholder="the node's default image" size="40"></label></p>
<p><label>GPUs <input name="gpus" type="number" min="0" max="${node.gpusTotal}" value="${v.gpus}"></label> <small>${node.gpusFree} free now; asking for more waits in the node's queue</small></p>
<p><label>Time limit <input name="time" value="${v.time}" placeholder="4h, 90m or 1-12:00:00; empty: the node's limit"></label></p>
<p><label>Name <input name="name" value="${v.name}" placeholder="a name of the node's choosing"></label></p>
<p><button type="submit">Start session</button></p></form>`;
}
