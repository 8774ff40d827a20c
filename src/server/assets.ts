/**
 * The files the session page loads, inside the binary (no CDN, nothing read from disk at run time): xterm.js, its fit
 * addon and stylesheet (the pinned @xterm packages, bundled as text by `bun build --compile`), and the page's own script.
 */
import xtermJs from "@xterm/xterm/lib/xterm.js" with { type: "text" };
import xtermCss from "@xterm/xterm/css/xterm.css" with { type: "text" };
import fitJs from "@xterm/addon-fit/lib/addon-fit.js" with { type: "text" };
import sessionJs from "./assets/session.js" with { type: "text" };

const js = "text/javascript; charset=utf-8";
const files: Record<string, { body: string; type: string }> = {
  "xterm.js": { body: xtermJs, type: js },
  "xterm.css": { body: xtermCss, type: "text/css; charset=utf-8" },
  "addon-fit.js": { body: fitJs, type: js },
  "session.js": { body: sessionJs, type: js },
};

/** `/assets/NAME`, or null for a name that is not one of them. */
export function asset(name: string): Response | null {
  const file = Object.hasOwn(files, name) ? files[name]! : null;
  if (!file) return null;
  return new Response(file.body, { headers: { "content-type": file.type, "x-content-type-options": "nosniff", "cache-control": "no-cache" } });
}
