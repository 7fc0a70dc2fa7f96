// One Python worker process: spawn (never fork), the framed channel on fd 3, the
// requests it holds in order, heartbeats, and its exit. It decides nothing: the pool
// (the arbiter) reads its state and tells it what to do.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { FrameType, type FrameTypeValue, type StackLocation, type StackReport, type WorkerDebugInfo, type WorkerInfo, type WorkerState } from '../protocol';
import type { BodyReader, ResponseSink, UpstreamRequest } from '../upstream/types';
import { FrameDecoder, FrameWriter } from './frames';
import { decodeResponseHead } from './heads';

/** One request as the pool holds it: what the proxy submitted, and the pool's bookkeeping. */
export interface Job {
  request: UpstreamRequest;
  /** Serialized head (latin-1 text, heads.ts), built once even if the job is revoked and re-sent. */
  headText: string;
  sink: ResponseSink;
  /** Set while the body streams to the worker. */
  bodyReader: BodyReader | undefined;
  worker: WorkerProcess | undefined;
  requestId: number;
  enqueuedAt: number;
  startedAt: number; // when it reached a slot the worker runs (0 = still queued in the worker)
  responseStarted: boolean;
  /**
   * A Start whose sink takes whole answers, held while the rest of the same read may
   * complete it: its status (0: nothing held), headers and body chunks (the first on its
   * own, as there is one chunk or none in almost every answer).
   */
  heldStatus: number;
  heldHeaders: [string, string][] | undefined;
  heldBody: Buffer | undefined;
  heldMore: Buffer[] | undefined;
  revoking: boolean;
  /** How often it was taken back from a worker; after twice it waits for a free slot. */
  takenBack: number;
  done: boolean;
}

/** A WebSocket session on a worker (server/pool/websocket.ts): its frames, and the worker's end. */
export interface WorkerSession {
  onFrame(type: number, payload: Buffer): void;
  workerGone(): void;
}

export interface LoadFailure {
  message: string;
  traceback: string;
  file?: string | null;
  line?: number | null;
}

export interface WorkerEvents {
  onReady(worker: WorkerProcess): void;
  onJobDone(worker: WorkerProcess, job: Job): void;
  onRevoked(worker: WorkerProcess, job: Job): void;
  onExit(worker: WorkerProcess, code: number | null, signal: NodeJS.Signals | null): void;
  onOutput(worker: WorkerProcess, stream: 'stdout' | 'stderr', line: string): void;
  onSpawnError(worker: WorkerProcess, error: Error): void;
  /** A StackReport (the answer to DumpStack) or a DebugState arrived; pool/debug.ts reads them. */
  onDebugFrame?(worker: WorkerProcess, type: number, requestId: number, payload: Buffer): void;
}

export interface WorkerSpawnSpec {
  id: number;
  pool: string;
  generation: number;
  python: string;
  script: string; // path of servestack_worker.py
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Run under debugpy (pool/debug.ts): its request timeout and heartbeat checks are off. */
  debug?: WorkerDebugInfo;
}

export class WorkerProcess {
  readonly id: number;
  readonly pool: string;
  readonly generation: number;
  readonly startedAt = Date.now();
  state: WorkerState = 'booting';
  pid: number | undefined;
  capacity = 1;
  requests = 0;
  lastHeartbeat = Date.now();
  loadFailure: LoadFailure | undefined;
  exitCode: number | null | undefined;
  rssBytes: number | undefined;
  /** What the runtime chose (it reports it when ready); interface "auto" is decided there. */
  interface: 'wsgi' | 'asgi' | undefined;
  /** Jobs sent to this worker, in the order it runs them; the first `capacity` are running. */
  readonly jobs: Job[] = [];
  /** Set when the arbiter asked it to go (drain, scale down, kill): its exit is expected. */
  retiring = false;
  /** Under debugpy: the arbiter never times it out or kills it for missing heartbeats. */
  debug: WorkerDebugInfo | undefined;
  lastTimeout: StackLocation | undefined;

  private readonly child: ChildProcess;
  /** fd 3: requests, bodies and Stop, in order; and everything the worker sends back. */
  private readonly writer: FrameWriter;
  /** fd 4: Abort, Pause, Resume, Revoke, DumpStack, read by the worker while its app is busy. */
  private readonly control: FrameWriter;
  /** Jobs whose head waits for the rest of the current read (heldStatus). */
  private readonly held: Job[] = [];
  /** "pool:id", as the access log shows who answered. */
  private readonly label: string;
  /** Open WebSocket sessions by id; each is one of the worker's connections (its load). */
  readonly sessions = new Map<number, WorkerSession>();

  constructor(spec: WorkerSpawnSpec, private readonly events: WorkerEvents) {
    this.id = spec.id;
    this.pool = spec.pool;
    this.generation = spec.generation;
    this.debug = spec.debug;
    this.label = `${spec.pool}:${spec.id}`;
    // Frozen stdlib modules make debugpy warn that it may miss breakpoints (Python 3.11+).
    this.child = spawn(spec.python, ['-u', ...(spec.debug ? ['-Xfrozen_modules=off'] : []), spec.script, ...spec.args], {
      cwd: spec.cwd,
      env: spec.env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    this.pid = this.child.pid;
    const channel = this.child.stdio[3] as Socket;
    const control = this.child.stdio[4] as Socket;
    this.writer = new FrameWriter(channel);
    this.control = new FrameWriter(control);
    control.on('error', () => undefined);
    const decoder = new FrameDecoder((type, id, payload) => this.onFrame(type, id, payload));
    channel.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      // A head whose End was not in this read goes on now: a stream is never held back.
      const held = this.held;
      if (held.length) {
        for (let i = 0; i < held.length; i++) this.releaseHeld(held[i]);
        held.length = 0;
      }
    });
    // The worker may already be gone when we write; its exit event tells the story.
    channel.on('error', () => undefined);
    // Body streams and WebSocket sessions each wait for 'drain' while the channel is full.
    channel.setMaxListeners(0);
    this.pipeLines(this.child.stdout!, 'stdout');
    this.pipeLines(this.child.stderr!, 'stderr');
    this.child.on('error', (error) => this.events.onSpawnError(this, error));
    this.child.on('exit', (code, signal) => {
      this.exitCode = code;
      this.state = 'exited';
      for (const session of [...this.sessions.values()]) session.workerGone();
      this.sessions.clear();
      this.events.onExit(this, code, signal);
    });
  }

  get inFlight(): number {
    return this.jobs.length + this.sessions.size;
  }

  get accepting(): boolean {
    return (this.state === 'idle' || this.state === 'busy') && !this.retiring;
  }

  info(): WorkerInfo {
    return {
      id: this.id,
      pool: this.pool,
      pid: this.pid,
      state: this.state,
      requests: this.requests,
      inFlight: this.inFlight,
      startedAt: this.startedAt,
      rssBytes: this.rssBytes,
      generation: this.generation,
      exitCode: this.exitCode,
      ...(this.debug ? { debug: { ...this.debug } } : {}),
      ...(this.lastTimeout ? { lastTimeout: this.lastTimeout } : {}),
    };
  }

  assign(job: Job): void {
    this.jobs.push(job);
    job.worker = this;
    if (this.jobs.length <= this.capacity) job.startedAt = Date.now();
    this.state = 'busy';
    this.writer.sendText(FrameType.Request, job.requestId, job.headText);
    job.sink.assigned(this.label);
    if (job.request.body) this.streamBody(job);
  }

  /** Body frames follow the head; a full channel pauses the body until it drains. */
  private streamBody(job: Job): void {
    const requestId = job.requestId;
    const channel = this.child.stdio[3] as Socket;
    let waiting = false;
    const reader = job.request.body!.open({
      chunk: (data) => {
        this.writer.send(FrameType.Body, requestId, data);
        if (this.writer.congested && !waiting) {
          waiting = true;
          reader.pause();
          channel.once('drain', () => {
            waiting = false;
            reader.resume();
          });
        }
      },
      end: () => {
        job.bodyReader = undefined;
        this.writer.send(FrameType.BodyEnd, requestId);
      },
      error: () => {
        job.bodyReader = undefined;
        this.abort(requestId);
      },
    });
    job.bodyReader = reader;
  }
  addSession(id: number, session: WorkerSession): void {
    this.sessions.set(id, session);
    if (this.state === 'idle') this.state = 'busy';
  }
  removeSession(id: number): void {
    this.sessions.delete(id);
    if (this.jobs.length === 0 && this.sessions.size === 0 && this.state === 'busy') this.state = 'idle';
  }
  /** A held head (and what came after it in the same read) goes to the sink the usual way. */
  private releaseHeld(job: Job): void {
    const status = job.heldStatus;
    if (status === 0) return;
    const headers = job.heldHeaders!;
    const body = job.heldBody;
    const more = job.heldMore;
    clearHeld(job);
    if (job.done) return;
    job.sink.start(status, headers);
    if (body) job.sink.data(body);
    if (more) for (const chunk of more) job.sink.data(chunk);
  }

  /** A whole answer to its sink: in one piece when the sink takes one, else as start, data and end. */
  private deliverWhole(job: Job, status: number, headers: [string, string][], body: Buffer | undefined): void {
    if (job.sink.complete) return job.sink.complete(status, headers, body);
    job.sink.start(status, headers);
    if (body) job.sink.data(body);
    job.sink.end();
  }

  /** A session's frame: messages and close on the data channel (in order), Pause/Resume on the control one. */
  sendSessionFrame(type: FrameTypeValue, id: number, payload?: Buffer): void {
    if (!this.sessions.has(id)) return;
    if (type === FrameType.Pause || type === FrameType.Resume) this.control.send(type, id);
    else this.writer.send(type, id, payload);
  }
  /** Calls back once the data channel has room again, or now when it has. */
  whenChannelDrains(callback: () => void): boolean {
    if (!this.writer.congested) return false;
    (this.child.stdio[3] as Socket).once('drain', callback);
    return true;
  }
  abort(requestId: number): void {
    if (this.jobFor(requestId)) this.control.send(FrameType.Abort, requestId);
  }
  pause(requestId: number): void {
    if (this.jobFor(requestId)) this.control.send(FrameType.Pause, requestId);
  }
  resume(requestId: number): void {
    if (this.jobFor(requestId)) this.control.send(FrameType.Resume, requestId);
  }
  revoke(job: Job): void {
    // An ASGI worker runs every request it gets at once: it has nothing to give back.
    if (this.interface === 'asgi' || job.revoking) return;
    job.revoking = true;
    this.control.send(FrameType.Revoke, job.requestId);
  }
  /** Finish what it holds, then exit by itself. */
  askToStop(): void {
    this.retiring = true;
    if (this.state !== 'exited') this.state = this.state === 'booting' ? 'booting' : 'draining';
    this.writer.send(FrameType.Stop, 0);
  }
  /** The worker writes every stack to stderr and answers with a StackReport carrying `token`. */
  dumpStack(token = 0): void {
    this.control.send(FrameType.DumpStack, token);
  }
  kill(): void {
    this.retiring = true;
    if (this.state !== 'exited') this.child.kill('SIGKILL');
  }

  /** Removes and returns the jobs that never got a response, for the pool to settle. */
  takeUnfinishedJobs(): Job[] {
    return this.jobs.splice(0);
  }

  /**
   * The job a frame is about. A scan, not a Map: a worker holds a few jobs (its slots and
   * prefetch) and answers them nearly in order, and a Map's set and delete on every
   * request cost the front about 350 bytes of garbage each (its table is rebuilt).
   */
  private jobFor(requestId: number): Job | undefined {
    const jobs = this.jobs;
    for (let i = 0; i < jobs.length; i++) if (jobs[i].requestId === requestId) return jobs[i];
    return undefined;
  }

  private onFrame(type: number, requestId: number, payload: Buffer): void {
    switch (type) {
      case FrameType.Start: {
        const job = this.jobFor(requestId);
        if (!job || job.done) return;
        const [status, headers] = decodeResponseHead(payload);
        job.responseStarted = true;
        if (job.sink.complete) {
          job.heldStatus = status;
          job.heldHeaders = headers;
          this.held.push(job);
        } else job.sink.start(status, headers);
        return;
      }
      case FrameType.Chunk: {
        const job = this.jobFor(requestId);
        if (!job || job.done) return;
        if (job.heldStatus === 0) job.sink.data(payload);
        else if (!job.heldBody) job.heldBody = payload;
        else (job.heldMore ??= []).push(payload);
        return;
      }
      case FrameType.End: {
        const job = this.jobFor(requestId);
        if (!job) return;
        this.removeJob(job);
        this.requests++;
        if (job.heldStatus !== 0 && !job.done && payload.length === 0) {
          // The whole answer came in one read: it goes out in one piece.
          const status = job.heldStatus;
          const headers = job.heldHeaders!;
          const body = job.heldMore ? Buffer.concat([job.heldBody!, ...job.heldMore]) : job.heldBody;
          clearHeld(job);
          job.done = true;
          this.deliverWhole(job, status, headers, body);
          this.events.onJobDone(this, job);
          return;
        }
        this.releaseHeld(job);
        if (!job.done) {
          job.done = true;
          if (payload.length > 0) job.sink.fail({ code: 'BROKEN', message: `the app failed after its answer started (worker ${this.id}); its traceback is in the log` });
          else job.sink.end();
        }
        this.events.onJobDone(this, job);
        return;
      }
      case FrameType.Answer: {
        // A whole response in one frame (the runtime had all of it): no head is held, nothing follows.
        const job = this.jobFor(requestId);
        if (!job) return;
        this.removeJob(job);
        this.requests++;
        if (!job.done) {
          job.done = true;
          job.responseStarted = true;
          const headEnd = 4 + payload.readUInt32BE(0);
          const [status, headers] = decodeResponseHead(payload, 4, headEnd);
          this.deliverWhole(job, status, headers, payload.length > headEnd ? payload.subarray(headEnd) : undefined);
        }
        this.events.onJobDone(this, job);
        return;
      }
      case FrameType.Revoked: {
        const job = this.jobFor(requestId);
        if (!job) return;
        this.removeJob(job);
        job.revoking = false;
        this.events.onRevoked(this, job);
        return;
      }
      case FrameType.Heartbeat:
        this.lastHeartbeat = Date.now();
        return;
      case FrameType.Ready: {
        const ready = JSON.parse(payload.toString('utf8')) as { pid: number; capacity: number; interface?: 'wsgi' | 'asgi'; debug?: { port: number; debugpy: string } };
        if (this.debug && ready.debug) Object.assign(this.debug, ready.debug);
        this.capacity = Math.max(1, ready.capacity);
        this.interface = ready.interface;
        this.lastHeartbeat = Date.now();
        if (this.state === 'booting') this.state = this.retiring ? 'draining' : 'idle';
        this.events.onReady(this);
        return;
      }
      case FrameType.StackReport:
      case FrameType.DebugState:
        this.events.onDebugFrame?.(this, type, requestId, payload);
        return;
      case FrameType.LoadFailed:
        this.loadFailure = JSON.parse(payload.toString('utf8')) as LoadFailure;
        return;
      default:
        if (type >= FrameType.WsConnect) this.sessions.get(requestId)?.onFrame(type, payload);
        return;
    }
  }

  private removeJob(job: Job): void {
    const index = this.jobs.indexOf(job);
    if (index < 0) return;
    removeAt(this.jobs, index);
    // The job that moved into a running slot starts its clock now.
    const promoted = this.jobs[this.capacity - 1];
    if (promoted && promoted.startedAt === 0) promoted.startedAt = Date.now();
    if (this.jobs.length === 0 && this.sessions.size === 0 && this.state === 'busy') this.state = 'idle';
  }

  private pipeLines(stream: NodeJS.ReadableStream, name: 'stdout' | 'stderr'): void {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => {
      const lines = (rest + text).split(/\r?\n/);
      rest = lines.pop() ?? '';
      for (const line of lines) this.events.onOutput(this, name, line);
    });
    stream.on('end', () => {
      if (rest) this.events.onOutput(this, name, rest);
      rest = '';
    });
  }
}

/** Removes one item; the head by shift(), which makes no array of what it removes (splice does, on every answer). */
export function removeAt<T>(list: T[], at: number): void {
  if (at === 0) list.shift();
  else list.splice(at, 1);
}

/** Nothing held for the job any more. */
function clearHeld(job: Job): void {
  job.heldStatus = 0;
  job.heldHeaders = job.heldBody = job.heldMore = undefined;
}
