// Small, clear pages for what the proxy answers itself. Each says what happened and
// what to do; a 503 while the app cannot load shows the reason, as a dev server would.
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

export function sendErrorPage(res: ServerResponse, status: number, detail?: string, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorPageHtml(status, detail);
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...extraHeaders,
  });
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}
