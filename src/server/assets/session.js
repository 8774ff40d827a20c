// The session page's script (served from the binary as /assets/session.js): follows the session's status while it
// waits, then opens its terminal (xterm.js) over this server's WebSocket, and attaches again after a drop. No token
// ever goes in a URL: the socket and the status fetch carry the page's cookie.
(() => {
  "use strict";
  const table = document.getElementById("session");
  if (!table || table.dataset.linked !== "1") return;
  const id = table.dataset.session;
  const mode = table.dataset.tty === "1" ? "attach" : "exec";
  const state = document.getElementById("term-state");
  const box = document.getElementById("terminal");
  const waiting = new Set(["requested", "queued", "slurm", "pulling", "starting", "unknown"]);
  const encoder = new TextEncoder();
  let term = null;
  let fit = null;
  let socket = null;
  let ended = false;
  let backoff = 1000;

  const say = (text) => (state.textContent = text);
  const show = (view) => {
    for (const [key, value] of [["status", view.status], ["position", view.queuePosition ?? "-"], ["image", view.image], ["line", view.line ?? ""], ["error", view.error ?? ""]]) {
      const el = document.getElementById(key);
      if (el) el.textContent = String(value);
    }
    const gpus = document.getElementById("gpus");
    if (gpus) gpus.textContent = view.gpus.length > 0 ? String(view.gpus.length) : view.requestedGpus !== null ? `${view.requestedGpus} asked for` : "0";
  };

  /** The session as the server sees it now; null when it is gone (or not ours). */
  async function status() {
    const res = await fetch(`/sessions/${id}/status`, { headers: { accept: "application/json" }, cache: "no-store" });
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(`status ${res.status}`);
    const view = await res.json();
    show(view);
    return view;
  }

  /** Polls while the session waits (queue, pull, start); opens the terminal once it runs. */
  async function follow() {
    for (;;) {
      let view = null;
      try {
        view = await status();
      } catch {
        say("cannot reach the server; trying again");
        await new Promise((r) => setTimeout(r, 3000));
        continue;
      }
      if (!view) return say("this session is gone");
      if (view.status === "running") return connect();
      if (!waiting.has(view.status)) return say(view.status === "failed" ? "the session did not start" : `the session is ${view.status}`);
      say(view.status === "queued" ? "waiting in the node's queue" : `waiting for the session (${view.status})`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }

  function setUp() {
    box.hidden = false;
    term = new Terminal({ cursorBlink: true, fontFamily: "ui-monospace, monospace", fontSize: 14, scrollback: 5000 });
    fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(box);
    fit.fit();
    window.beakerTerminal = term;
    const send = (data) => socket && socket.readyState === WebSocket.OPEN && socket.send(data);
    term.onData((data) => send(encoder.encode(data)));
    term.onBinary((data) => send(Uint8Array.from(data, (c) => c.charCodeAt(0))));
    term.onResize(({ cols, rows }) => send(JSON.stringify({ type: "resize", cols, rows })));
    // Ctrl+Shift+C copies the selection, Ctrl+Shift+V pastes (Ctrl+C stays the terminal's interrupt).
    term.attachCustomKeyEventHandler((e) => {
      if (e.type !== "keydown" || !e.ctrlKey || !e.shiftKey) return true;
      if (e.code === "KeyC") {
        if (term.hasSelection()) navigator.clipboard?.writeText(term.getSelection());
        return false;
      }
      if (e.code === "KeyV") {
        navigator.clipboard?.readText().then((text) => term.paste(text));
        return false;
      }
      return true;
    });
    window.addEventListener("resize", () => fit.fit());
  }

  function connect() {
    if (!term) setUp();
    fit.fit();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams({ mode, cols: String(term.cols), rows: String(term.rows) });
    const ws = new WebSocket(`${scheme}//${location.host}/sessions/${id}/terminal?${query}`);
    ws.binaryType = "arraybuffer";
    socket = ws;
    let refused = null;
    ws.onopen = () => {
      backoff = 1000;
      say(mode === "attach" ? "attached to the session's terminal" : "a login shell in the session");
      term.focus();
    };
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") return term.write(new Uint8Array(event.data));
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "notice") term.write(`\r\nbeaker: ${message.message}\r\n`);
      else if (message.type === "exit") {
        ended = true;
        say(mode === "attach" ? `the session ended (${message.reason}, code ${message.code})` : `the shell exited (code ${message.code}); reload to open another`);
      } else if (message.type === "error" && message.code !== "restarting") refused = message.message;
    };
    ws.onclose = (event) => {
      if (socket === ws) socket = null;
      if (ended) return void status().catch(() => {});
      if (refused) {
        ended = true;
        return say(refused);
      }
      // Dropped (network, the server, the node's link) or the executor restarting (1012): the session runs on.
      const wait = backoff;
      backoff = Math.min(backoff * 2, 10000);
      say(`connection lost${event.reason ? ` (${event.reason})` : ""}; attaching again in ${Math.round(wait / 1000)} s`);
      setTimeout(async () => {
        try {
          const view = await status();
          if (!view) return say("this session is gone");
          if (view.status !== "running") return follow();
        } catch {
          // The server itself is away: try the socket again anyway, with the next wait.
        }
        connect();
      }, wait);
    };
  }

  void follow();
})();
