// Small, clear pages for what the proxy answers itself. Each says what happened and
// what to do; a 503 while the app cannot load shows the reason, as a dev server would.
// In development a browser's 502/503/504 page also gets the live-reload script, so it
// turns into the app's page by itself once the app answers again (refreshErrorPage).
import type { ServerResponse } from 'node:http';

const TITLES: Record<number, string> = {
  400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout',
  413: 'Payload Too Large', 414: 'URI Too Long', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large',
  500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable',
  504: 'Gateway Timeout', 505: 'HTTP Version Not Supported',
};

const HINTS: Record<number, string> = {
  502: 'The worker handling this request stopped before it answered. See the ServeStack log for its output.',
  503: 'No worker could take this request. See the ServeStack log; the page can be reloaded once workers are up.',
  504: 'The app did not answer in time. Its worker was replaced; its Python stack is in the ServeStack log.',
  413: 'The request body is larger than the limit. Raise maxBodySize for this route or in limits.',
  429: 'Too many requests for this route. Wait a moment, or raise the route\'s rateLimit.',
  414: 'The request line is longer than the limit. Send long data in the body, or raise limits.maxHeaderLineSize.',
  431: 'The request headers are larger or more than the limits allow. Send fewer or smaller headers (cookies count), or raise limits.maxHeaderLineSize, maxHeaderSize or maxHeaderCount.',
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The page's HTML; `servestack export` writes the same pages for NGINX to answer with. */
export function errorPageHtml(status: number, detail?: string): string {
  const title = `${status} ${TITLES[status] ?? 'Error'}`;
  const hint = HINTS[status];
  return (
    `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>` +
    `<style>body{font:15px/1.5 system-ui,sans-serif;margin:3em auto;max-width:46em;padding:0 1em;color:#222}` +
    `pre{white-space:pre-wrap;background:#f4f4f4;padding:1em;border-radius:4px}small{color:#777}</style></head>` +
    `<body><h1>${title}</h1>${detail ? `<pre>${escapeHtml(detail)}</pre>` : ''}${hint ? `<p>${hint}</p>` : ''}` +
    `<hr><small>ServeStack</small></body></html>\n`
  );
}

/**
 * The same page as a whole HTTP/1.1 response, for a socket that has no ServerResponse: a
 * request the parser refused, a simple (HTTP/0.9) request, CONNECT. The connection closes
 * after it. The body length is returned for the access log.
 */
export function rawErrorResponse(status: number, detail?: string, extraHeaders: Record<string, string> = {}, head = false): { bytes: Buffer; bodyLength: number } {
  const body = Buffer.from(errorPageHtml(status, detail), 'utf8');
  const headers: Record<string, string | number> = {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': body.length,
    'Cache-Control': 'no-store',
    ...extraHeaders,
    Connection: 'close',
  };
  let text = `HTTP/1.1 ${status} ${TITLES[status] ?? 'Error'}\r\n`;
  for (const [name, value] of Object.entries(headers)) text += `${name}: ${value}\r\n`;
  const start = Buffer.from(`${text}\r\n`, 'latin1');
  return head ? { bytes: start, bodyLength: 0 } : { bytes: Buffer.concat([start, body]), bodyLength: body.length };
}

/** The statuses whose page says "the app cannot answer right now": the ones worth a refresh when it can. */
const REFRESHING = new Set([502, 503, 504]);

/** Responses whose error page, if one is sent, gets a tag (development only; see refreshErrorPage). */
const refreshing = new WeakMap<ServerResponse, (status: number) => string>();

/**
 * Development: should `res` end as a 502/503/504 page, `tag(status)` (the live-reload
 * script tag, made when the page is) goes before its `</body>`. The caller offers it only for a
 * browser asking for HTML, so an API client's error answer stays as it is.
 */
export function refreshErrorPage(res: ServerResponse, tag: (status: number) => string): void {
  refreshing.set(res, tag);
}

export function sendErrorPage(res: ServerResponse, status: number, detail?: string, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  let body: Buffer = Buffer.from(errorPageHtml(status, detail), 'utf8');
  const tag = REFRESHING.has(status) ? refreshing.get(res) : undefined;
  if (tag) body = withTagBeforeBodyClose(body, tag(status));
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': body.length,
    'Cache-Control': 'no-store',
    ...extraHeaders,
  });
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

/** The page ends with `</body></html>` (errorPageHtml): the tag goes right before it. */
function withTagBeforeBodyClose(body: Buffer, tag: string): Buffer {
  const at = body.lastIndexOf('</body>');
  return at < 0 ? body : Buffer.concat([body.subarray(0, at), Buffer.from(tag), body.subarray(at)]);
}
