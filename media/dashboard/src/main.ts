// The dashboard page: the model (model.ts) fed by control events, drawn as charts and
// tables, with the same commands as the editor's views (scale, reload, restart a worker)
// and the request inspector (inspect, reveal credentials, replay). Every value from the
// server reaches the DOM as text (textContent), never as markup.
import type { InspectedHeader, InspectedRequest, CapturedBody, WorkerInfo } from '../../../server/protocol';
import { Chart, cssColor, paletteColor } from './charts';
import { DashboardModel } from './model';
import { WebSocketTransport, WebviewTransport, type Transport } from './transport';

const model = new DashboardModel();
const transport: Transport = document.body.dataset.transport === 'vscode'
  ? new WebviewTransport()
  : new WebSocketTransport(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/dashboard/control`);

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string | number, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

const charts = {
  traffic: new Chart($('chart-traffic'), { yLabel: 'req/s', y2Label: '% errors', y2Scale: 'pct' }),
  latency: new Chart($('chart-latency'), { yLabel: 'ms' }),
  status: new Chart($('chart-status'), { yLabel: 'per s' }),
  queue: new Chart($('chart-queue'), { yLabel: 'requests' }),
  cpu: new Chart($('chart-cpu'), { yLabel: '%' }),
  rss: new Chart($('chart-rss'), { yLabel: 'MiB' }),
};
/** For the end-to-end tests: the data the charts draw, and the model. */
(window as unknown as { servestackDashboard: unknown }).servestackDashboard = { model, charts };

let selectedRequest: number | undefined;
/** "Show in Dashboard" on a worker of the Workers view: its row stands out. */
let focusedWorker: number | undefined;
let revealed = false;
let inspected: InspectedRequest | undefined;

function showError(error: unknown): void {
  const banner = $('banner');
  banner.hidden = false;
  banner.textContent = error instanceof Error ? error.message : String(error);
  setTimeout(() => { banner.hidden = true; }, 8000);
}

// ── charts ─────────────────────────────────────────────────────────────────────────
function drawCharts(): void {
  charts.traffic.update(
    [{ label: 'requests/s', color: cssColor('--blue', '#3794ff') }, { label: 'error rate %', color: cssColor('--red', '#f14c4c'), scale: 'pct', dash: [4, 3] }],
    model.trafficData(),
  );
  charts.latency.update(
    [{ label: 'p50', color: cssColor('--green', '#89d185') }, { label: 'p95', color: cssColor('--yellow', '#cca700') }, { label: 'p99', color: cssColor('--red', '#f14c4c') }],
    model.latencyData(),
  );
  charts.status.update(
    [
      { label: '2xx', color: cssColor('--green', '#89d185') },
      { label: '3xx', color: cssColor('--blue', '#3794ff') },
      { label: '4xx', color: cssColor('--yellow', '#cca700') },
      { label: '5xx', color: cssColor('--red', '#f14c4c') },
    ],
    model.statusData(),
  );
  charts.queue.update(
    [{ label: 'queued', color: cssColor('--orange', '#d18616') }, { label: 'at busy workers', color: cssColor('--purple', '#b180d7') }],
    model.queueData(),
  );
  const ids = model.workerIds();
  const workerSeries = ids.map((id, i) => ({ label: `w${id}`, color: paletteColor(i) }));
  charts.cpu.update(workerSeries, model.workerData('cpu', ids));
  charts.rss.update(workerSeries, model.workerData('rssMiB', ids));
}

// ── header, toolbar ────────────────────────────────────────────────────────────────
function drawHeader(): void {
  const s = model.server;
  if (s) $('server-info').textContent = `${s.dir} · ${s.url} · pid ${s.pid} · v${s.version}`;
  const scope = $<HTMLSelectElement>('scope');
  const current = scope.value || 'all';
  scope.replaceChildren(...model.scopes().map((o) => { const opt = el('option', o.label); opt.value = o.value; return opt; }));
  scope.value = model.scopes().some((o) => o.value === current) ? current : 'all';
  const poolSelect = $<HTMLSelectElement>('pool');
  const chosen = poolSelect.value;
  const pythonPools = [...model.pools.values()].filter((p) => p.kind === 'python');
  poolSelect.replaceChildren(...pythonPools.map((p) => { const opt = el('option', p.name); opt.value = p.name; return opt; }));
  if (pythonPools.some((p) => p.name === chosen)) poolSelect.value = chosen;
  const pool = model.pools.get(poolSelect.value);
  const input = $<HTMLInputElement>('scale-input');
  if (pool && document.activeElement !== input) input.value = String(pool.wanted);
  const failures = $('pool-failures');
  failures.replaceChildren(...[...model.pools.values()].filter((p) => p.failure).map((p) => {
    const d = p.failureDetail;
    const where = d?.file ? ` (${d.file}${d.line ? `:${d.line}` : ''})` : '';
    return el('div', `Pool ${p.name}: ${d ? `${d.message}${where} [${d.code}]` : p.failure}`, 'banner');
  }));
}

function formatBytes(n?: number): string {
  if (n === undefined) return '–';
  return n < 1048576 ? `${Math.round(n / 1024)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;
}

function drawWorkers(): void {
  const rows = [...model.workers.values()].sort((a, b) => a.id - b.id).map((w: WorkerInfo) => {
    const tr = el('tr');
    tr.dataset.worker = String(w.id);
    if (w.id === focusedWorker) tr.className = 'selected';
    tr.append(el('td', w.id), el('td', w.pool), el('td', w.pid ?? '–', 'pid'), el('td', w.state), el('td', w.requests), el('td', w.inFlight),
      el('td', w.cpuPercent !== undefined ? `${w.cpuPercent.toFixed(1)} %` : '–'), el('td', formatBytes(w.rssBytes)), el('td', w.generation));
    const td = el('td');
    const restart = el('button', 'Restart', 'small');
    restart.title = `Restart worker ${w.id} gracefully`;
    restart.onclick = () => transport.request({ type: 'restartWorker', worker: w.id }).catch(showError);
    td.append(restart);
    tr.append(td);
    return tr;
  });
  $('workers').querySelector('tbody')!.replaceChildren(...rows);
  $('exits').replaceChildren(...[...model.exits].reverse().slice(0, 12).map((e) =>
    el('li', `${new Date(e.time).toLocaleTimeString()} · worker ${e.worker}${e.pid ? ` (pid ${e.pid})` : ''} of ${e.pool}, generation ${e.generation}: ${e.reason}`)));
}

// ── recent requests ────────────────────────────────────────────────────────────────
function statusClass(status: number): string {
  return status >= 500 ? 's5' : status >= 400 ? 's4' : status >= 300 ? 's3' : 's2';
}

function drawRequests(): void {
  const filter = $<HTMLInputElement>('filter').value;
  const rows = model.filteredRequests(filter).slice(0, 200).map((r) => {
    const tr = el('tr');
    tr.dataset.request = String(r.id);
    if (r.id === selectedRequest) tr.className = 'selected';
    tr.append(
      el('td', new Date(r.time).toLocaleTimeString()),
      el('td', r.method),
      el('td', r.url + (r.replayOf !== undefined ? `  (replay of #${r.replayOf})` : ''), 'path'),
      el('td', r.status, statusClass(r.status)),
      el('td', r.ms.toFixed(1)),
      el('td', r.workerId !== undefined ? `${r.pool ?? ''}:${r.workerId}` : r.pool ?? '–'),
    );
    tr.onclick = () => void inspect(r.id, false);
    return tr;
  });
  $('requests').querySelector('tbody')!.replaceChildren(...rows);
}

// ── inspector ──────────────────────────────────────────────────────────────────────
function headerRows(list: InspectedHeader[]): HTMLTableRowElement[] {
  return list.map((h) => {
    const tr = el('tr');
    tr.append(el('td', h.name), el('td', h.value, h.masked ? 'masked' : undefined));
    if (h.masked) tr.dataset.masked = 'true';
    return tr;
  });
}

function bodyText(b: CapturedBody): string {
  if (b.size === 0) return '(empty)';
  const note = b.truncated ? `\n… ${b.size - b.kept} more bytes not kept (${b.size} in all)` : '';
  return b.text !== undefined ? b.text + note : `(binary, ${b.size} bytes; base64 of the first ${b.kept})\n${b.base64 ?? ''}${note}`;
}

function drawTiming(t: InspectedRequest['timing']): void {
  const box = $('timing');
  const parts: [string, number | undefined, string][] = [
    ['queue', t.queueMs, 'queue'],
    ['app', t.appMs, 'app'],
    ['send', t.workerMs !== undefined && t.appMs !== undefined ? Math.max(0, t.workerMs - t.appMs) : undefined, 'send'],
  ];
  const known = parts.filter((p) => p[1] !== undefined);
  box.replaceChildren();
  if (known.length === 0) {
    const d = el('div', `total ${t.totalMs.toFixed(2)} ms (no worker)`, 'other');
    d.style.width = '100%';
    box.append(d);
    return;
  }
  for (const [label, ms, cls] of known) {
    const d = el('div', `${label} ${ms!.toFixed(2)} ms`, cls);
    d.style.width = `${Math.max(8, (ms! / Math.max(t.totalMs, 0.01)) * 100)}%`;
    d.title = `${label}: ${ms!.toFixed(2)} ms of ${t.totalMs.toFixed(2)} ms`;
    box.append(d);
  }
}

async function inspect(id: number, reveal: boolean): Promise<void> {
  try {
    const r = await transport.request({ type: 'inspectRequest', request: id, reveal });
    inspected = r;
    selectedRequest = id;
    revealed = reveal;
    $('inspector').hidden = false;
    $('inspector-title').textContent = `#${r.id} ${r.method} ${r.url} → ${r.status} in ${r.ms.toFixed(1)} ms${r.workerId !== undefined ? ` · worker ${r.pool}:${r.workerId}` : ''}${r.replayOf !== undefined ? ` · replay of #${r.replayOf}` : ''}`;
    $('reveal-button').textContent = reveal ? 'Mask credentials' : 'Reveal credentials';
    drawTiming(r.timing);
    $('request-headers').querySelector('tbody')!.replaceChildren(...headerRows(r.requestHeaders));
    $('response-headers').querySelector('tbody')!.replaceChildren(...headerRows(r.responseHeaders));
    $('request-body').textContent = bodyText(r.requestBody);
    $('response-body').textContent = bodyText(r.responseBody);
    $('request-logs').textContent = r.logs.length
      ? r.logs.map((l) => `${new Date(l.time).toLocaleTimeString()} ${l.level.padEnd(5)} [${l.source}${l.workerId !== undefined ? ` w${l.workerId}` : ''}] ${l.text}`).join('\n')
      : '(no log lines)';
    $('edit-form').hidden = true;
    $('replay-result').textContent = '';
    drawRequests();
  } catch (error) {
    showError(error);
  }
}

async function replay(edit?: { method: string; url: string; headers: [string, string][]; body: string }): Promise<void> {
  if (!inspected) return;
  const result = $('replay-result');
  result.textContent = 'replaying…';
  try {
    const r = await transport.request({ type: 'replayRequest', request: inspected.id, ...(edit ? { edit } : {}) });
    result.textContent = `replayed: ${r.status}${r.request !== undefined ? ` (request #${r.request})` : ''}`;
    result.dataset.status = String(r.status);
    if (r.request !== undefined) result.dataset.request = String(r.request);
  } catch (error) {
    result.textContent = '';
    showError(error);
  }
}

function openEditor(): void {
  if (!inspected) return;
  $('edit-form').hidden = false;
  $<HTMLInputElement>('edit-method').value = inspected.method;
  $<HTMLInputElement>('edit-url').value = inspected.url;
  $<HTMLTextAreaElement>('edit-headers').value = inspected.requestHeaders.map((h) => `${h.name}: ${h.value}`).join('\n');
  $<HTMLTextAreaElement>('edit-body').value = inspected.requestBody.text ?? '';
}

// ── wiring ─────────────────────────────────────────────────────────────────────────
let chartTimer: number | undefined;
function scheduleCharts(): void {
  if (chartTimer !== undefined) return;
  chartTimer = window.setTimeout(() => { chartTimer = undefined; drawCharts(); }, 50);
}

transport.onEvent((event) => {
  const changed = model.apply(event);
  switch (changed) {
    case 'snapshot':
      drawHeader();
      drawWorkers();
      void loadRequests();
      break;
    case 'pools':
    case 'routes':
      drawHeader();
      break;
    case 'workers':
      drawWorkers();
      break;
    case 'metrics':
      scheduleCharts();
      break;
    case 'requests':
      drawRequests();
      break;
    case 'stopping':
      $('connection').textContent = 'stopping';
      break;
  }
});

transport.onStatus((status, detail) => {
  const badge = $('connection');
  badge.textContent = status === 'live' ? 'live' : status === 'down' ? detail ?? 'disconnected' : 'connecting';
  badge.className = `badge ${status === 'live' ? 'live' : status === 'down' ? 'down' : ''}`;
});

// While this page is open the inspector keeps whole requests (headers, bodies); the lease
// it grants lasts a few minutes, so it is renewed every minute.
setInterval(() => {
  transport.request({ type: 'requests', limit: 1 }).catch(() => undefined);
}, 60_000);

async function loadRequests(): Promise<void> {
  try {
    const { enabled, requests } = await transport.request({ type: 'requests' });
    $('inspector-off').hidden = enabled;
    model.addRequests(requests);
    drawRequests();
  } catch (error) {
    showError(error);
  }
}

function wantedWorkers(): number {
  return Number($<HTMLInputElement>('scale-input').value);
}
function scaleTo(n: number): void {
  const pool = $<HTMLSelectElement>('pool').value || undefined;
  if (!Number.isInteger(n) || n < 1 || n > 256) return showError('give a whole number of workers from 1 to 256');
  $<HTMLInputElement>('scale-input').value = String(n);
  transport.request({ type: 'scale', pool, workers: n }).catch(showError);
}
$('scale-button').onclick = () => scaleTo(wantedWorkers());
$('scale-up').onclick = () => scaleTo(wantedWorkers() + 1);
$('scale-down').onclick = () => scaleTo(Math.max(1, wantedWorkers() - 1));
$('reload-button').onclick = () => {
  const pool = $<HTMLSelectElement>('pool').value || undefined;
  transport.request({ type: 'reload', pool }).catch(showError);
};
$<HTMLSelectElement>('pool').onchange = () => drawHeader();
$<HTMLSelectElement>('scope').onchange = (e) => { model.setScope((e.target as HTMLSelectElement).value); drawCharts(); };
$<HTMLInputElement>('filter').oninput = () => drawRequests();
$('replay-button').onclick = () => void replay();
$('edit-button').onclick = () => openEditor();
$('reveal-button').onclick = () => { if (inspected) void inspect(inspected.id, !revealed); };
$<HTMLFormElement>('edit-form').onsubmit = (e) => {
  e.preventDefault();
  const headers = $<HTMLTextAreaElement>('edit-headers').value.split('\n').map((line) => line.trim()).filter(Boolean).map((line): [string, string] => {
    const colon = line.indexOf(':');
    return colon > 0 ? [line.slice(0, colon).trim(), line.slice(colon + 1).trim()] : [line, ''];
  });
  void replay({ method: $<HTMLInputElement>('edit-method').value.trim(), url: $<HTMLInputElement>('edit-url').value.trim(), headers, body: $<HTMLTextAreaElement>('edit-body').value });
};
window.addEventListener('resize', () => drawCharts());
// The editor's "Show in Dashboard": a pool to steer, a worker to point at.
window.addEventListener('message', (e: MessageEvent) => {
  const data = e.data as { type?: string; worker?: number; pool?: string };
  if (data?.type !== 'focus') return;
  if (data.pool && model.pools.has(data.pool)) {
    $<HTMLSelectElement>('pool').value = data.pool;
    drawHeader();
  }
  focusedWorker = data.worker;
  drawWorkers();
  document.querySelector(`#workers tr[data-worker="${focusedWorker}"]`)?.scrollIntoView({ block: 'center' });
});
