// Control commands: check a message's shape, carry it out on the target, build the reply.
// A malformed or unknown command is an error reply, never a dropped connection.
import { ServeStackError, type ErrorCode } from '../errors';
import type { ControlCommand, ControlEvent, ControlReplyError, ReplayEdit } from '../protocol';
import type { RequestInspector } from './inspector';
import type { ControlTarget } from './target';

export const DEFAULT_LOG_LINES = 200;
export const MAX_LOG_LINES = 10_000;
export const MAX_WORKERS = 1024;
export const MAX_REQUESTS_LISTED = 1000;

type Reply = Extract<ControlEvent, { type: 'reply' }>;

export interface HandledCommand {
  reply: Reply;
  /** Work to start only after the reply is on its way (stop: the reply must not race the channel's close). */
  afterReply?: () => Promise<void>;
}

class BadCommand extends Error {}

function fail(message: string): never {
  throw new BadCommand(message);
}

function optionalPool(o: Record<string, unknown>): string | undefined {
  if (o.pool === undefined || o.pool === null) return undefined;
  if (typeof o.pool !== 'string' || o.pool.length === 0) fail('"pool" must be a pool name (a non-empty string) or absent');
  return o.pool;
}

function integerField(o: Record<string, unknown>, name: string, min: number, max: number): number {
  const v = o[name];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(`"${name}" must be an integer from ${min} to ${max}`);
  }
  return v;
}

function replayEdit(v: unknown): ReplayEdit | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) fail('"edit" must be an object with method, url, headers or body');
  const o = v as Record<string, unknown>;
  const out: ReplayEdit = {};
  for (const key of ['method', 'url', 'body'] as const) {
    if (o[key] === undefined) continue;
    if (typeof o[key] !== 'string') fail(`"edit.${key}" must be a string`);
    out[key] = o[key] as string;
  }
  if (o.headers !== undefined) {
    const ok = Array.isArray(o.headers) && o.headers.every((h) => Array.isArray(h) && h.length === 2 && typeof h[0] === 'string' && typeof h[1] === 'string' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(h[0]) && !/[\r\n]/.test(h[1]));
    if (!ok) fail('"edit.headers" must be a list of [name, value] pairs with valid header names and one-line values');
    out.headers = o.headers as [string, string][];
  }
  return out;
}

function debugOptions(o: Record<string, unknown>): Omit<Extract<ControlCommand, { type: 'debugWorkers' }>, 'id' | 'type'> {
  for (const key of ['all', 'pin'] as const) if (o[key] !== undefined && typeof o[key] !== 'boolean') fail(`"${key}" must be true or false`);
  for (const key of ['pinRoute', 'debugpyPath'] as const) if (o[key] !== undefined && (typeof o[key] !== 'string' || o[key] === '')) fail(`"${key}" must be a non-empty string`);
  if (typeof o.pinRoute === 'string' && !o.pinRoute.startsWith('/')) fail('"pinRoute" must be a route path starting with /');
  return {
    pool: optionalPool(o),
    worker: o.worker === undefined ? undefined : integerField(o, 'worker', 0, Number.MAX_SAFE_INTEGER),
    all: o.all === true,
    pin: o.pin === true,
    pinRoute: o.pinRoute as string | undefined,
    port: o.port === undefined ? undefined : integerField(o, 'port', 0, 65535),
    debugpyPath: o.debugpyPath as string | undefined,
  };
}

/** The command in a parsed message, or a BadCommand naming what is wrong. */
export function parseCommand(message: unknown): ControlCommand {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) fail('a command is a JSON object');
  const o = message as Record<string, unknown>;
  const id = integerField(o, 'id', 0, Number.MAX_SAFE_INTEGER);
  switch (o.type) {
    case 'scale':
      return { id, type: 'scale', pool: optionalPool(o), workers: integerField(o, 'workers', 0, MAX_WORKERS) };
    case 'reload':
      return { id, type: 'reload', pool: optionalPool(o) };
    case 'restartWorker':
      return { id, type: 'restartWorker', worker: integerField(o, 'worker', 0, Number.MAX_SAFE_INTEGER) };
    case 'killWorker':
      return { id, type: 'killWorker', worker: integerField(o, 'worker', 0, Number.MAX_SAFE_INTEGER) };
    case 'applyConfig':
      if (typeof o.text !== 'string') fail('"text" must be the config file\'s text');
      return { id, type: 'applyConfig', text: o.text };
    case 'status':
      return { id, type: 'status' };
    case 'logs':
      return { id, type: 'logs', lines: o.lines === undefined ? undefined : integerField(o, 'lines', 1, MAX_LOG_LINES) };
    case 'stop':
      return { id, type: 'stop' };
    case 'requests':
      return { id, type: 'requests', limit: o.limit === undefined ? undefined : integerField(o, 'limit', 1, MAX_REQUESTS_LISTED) };
    case 'inspectRequest':
      if (o.reveal !== undefined && typeof o.reveal !== 'boolean') fail('"reveal" must be true or false');
      return { id, type: 'inspectRequest', request: integerField(o, 'request', 1, Number.MAX_SAFE_INTEGER), reveal: o.reveal === true };
    case 'replayRequest':
      return { id, type: 'replayRequest', request: integerField(o, 'request', 1, Number.MAX_SAFE_INTEGER), edit: replayEdit(o.edit) };
    case 'debugWorkers':
      return { id, type: 'debugWorkers', ...debugOptions(o) };
    case 'stopDebugging':
      return { id, type: 'stopDebugging', pool: optionalPool(o) };
    case 'dumpStack':
      return { id, type: 'dumpStack', worker: integerField(o, 'worker', 0, Number.MAX_SAFE_INTEGER) };
    default:
      fail(
        typeof o.type === 'string'
          ? `unknown command "${o.type}"; known: scale, reload, restartWorker, killWorker, applyConfig, status, logs, stop, requests, inspectRequest, replayRequest, debugWorkers, stopDebugging, dumpStack`
          : 'a command needs a "type"',
      );
  }
}

/** The id to answer a message with, even when the message is malformed (0 when it has none). */
function replyId(message: unknown): number {
  const id = (message as { id?: unknown } | null)?.id;
  return typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? id : 0;
}

export function errorReply(id: number, code: ErrorCode, message: string, hint?: string): Reply {
  const error: ControlReplyError = hint ? { code, message, hint } : { code, message };
  return { type: 'reply', id, ok: false, error };
}

function replyForError(id: number, err: unknown): Reply {
  if (err instanceof ServeStackError) return errorReply(id, err.code, err.message, err.hint);
  if (err instanceof BadCommand) return errorReply(id, 'CONTROL_BAD_COMMAND', err.message);
  return errorReply(id, 'CONTROL_COMMAND_FAILED', err instanceof Error ? err.message : String(err));
}

async function run(command: ControlCommand, target: ControlTarget): Promise<HandledCommand> {
  const ok = (result?: unknown): Reply =>
    result === undefined ? { type: 'reply', id: command.id, ok: true } : { type: 'reply', id: command.id, ok: true, result };
  switch (command.type) {
    case 'scale':
      await target.scale(command.pool, command.workers);
      return { reply: ok() };
    case 'reload':
      await target.reload(command.pool);
      return { reply: ok() };
    case 'restartWorker':
      await target.restartWorker(command.worker);
      return { reply: ok() };
    case 'killWorker':
      await target.killWorker(command.worker);
      return { reply: ok() };
    case 'applyConfig': {
      const { applied, diagnostics, restartNeeded } = await target.applyConfigText(command.text);
      return { reply: ok({ applied, diagnostics, ...(restartNeeded?.length ? { restartNeeded } : {}) }) };
    }
    case 'status':
      return { reply: ok(target.snapshot()) };
    case 'logs':
      return { reply: ok({ lines: target.recentLogs(command.lines ?? DEFAULT_LOG_LINES) }) };
    case 'stop':
      return { reply: ok(), afterReply: () => target.stop() };
    case 'requests': {
      const inspector = target.requestInspector?.();
      inspector?.watch();
      return { reply: ok({ enabled: inspector !== undefined, requests: inspector?.list(command.limit) ?? [] }) };
    }
    case 'inspectRequest':
      return { reply: ok(inspectorOf(target).inspect(command.request, command.reveal)) };
    case 'replayRequest':
      return { reply: ok(await inspectorOf(target).replay(command.request, command.edit)) };
    case 'debugWorkers': {
      const { id: _id, type: _type, ...options } = command;
      return { reply: ok(await target.debugWorkers(options)) };
    }
    case 'stopDebugging':
      await target.stopDebugging(command.pool);
      return { reply: ok() };
    case 'dumpStack':
      return { reply: ok(await target.dumpStack(command.worker)) };
  }
}

function inspectorOf(target: ControlTarget): RequestInspector {
  const inspector = target.requestInspector?.();
  if (!inspector) {
    throw new ServeStackError('CONTROL_INSPECTOR_OFF', 'the request inspector is off: the server listens beyond loopback, or runs with NODE_ENV=production or SERVESTACK_INSPECTOR=0', {
      hint: 'serve on loopback in development, or set SERVESTACK_INSPECTOR=1',
    });
  }
  inspector.watch();
  return inspector;
}

/** Handle one text message from a client. Never throws. */
export async function handleCommandText(text: string, target: ControlTarget): Promise<HandledCommand> {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch (err) {
    return { reply: errorReply(0, 'CONTROL_BAD_COMMAND', `a command must be JSON: ${(err as Error).message}`) };
  }
  let command: ControlCommand;
  try {
    command = parseCommand(message);
  } catch (err) {
    return { reply: replyForError(replyId(message), err) };
  }
  try {
    return await run(command, target);
  } catch (err) {
    return { reply: replyForError(command.id, err) };
  }
}
