// Temp files for bodies that do not fit in memory (NGINX's proxy_temp_path and
// client_body_temp_path), in the server's state folder, readable by the user alone.
// Each file is unlinked as soon as it is open: the open descriptor is all that keeps it,
// so it is gone on every path — a response that ends, a client that leaves, a server
// killed with -9 — without a sweep. (Windows opens files with FILE_SHARE_DELETE through
// libuv, so the unlink works there too; a start-up sweep clears what a crash left anyway.)
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { stateDir } from '../control/stateFile';

export interface TempFile {
  /** Appends in order; positions are assigned at call time, bytes land in call order. */
  append(data: Buffer): void;
  /** Bytes appended so far (the next write position). */
  readonly size: number;
  /** Bytes appended but not on disk yet: they are in memory, and count against its bound. */
  readonly unwritten: number;
  /** Called after each batch lands on disk. */
  onWritten?: () => void;
  /** Reads `length` bytes at `position`, once they are on disk. */
  read(position: number, length: number): Promise<Buffer>;
  /** Starts again from position 0 (every byte was read). */
  reset(): void;
  close(): void;
}

export class TempFiles {
  private counter = 0;
  private ready = false;

  constructor(readonly dir: string) {}

  /** The folder for this server's temp files; leftovers of servers that are gone are removed. */
  static forServer(env: NodeJS.ProcessEnv = process.env): TempFiles {
    return new TempFiles(path.join(stateDir(env), 'tmp'));
  }

  async create(): Promise<TempFile> {
    if (!this.ready) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      sweepLeftovers(this.dir);
      this.ready = true;
    }
    const file = path.join(this.dir, `${process.pid}-${++this.counter}.body`);
    const handle = await open(file, 'wx+', 0o600);
    rmSync(file, { force: true });
    return new SpillFile(handle);
  }
}

function sweepLeftovers(dir: string): void {
  for (const name of readdirSync(dir)) {
    const pid = Number(/^(\d+)-/.exec(name)?.[1]);
    if (pid && pid !== process.pid && !alive(pid)) rmSync(path.join(dir, name), { force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

class SpillFile implements TempFile {
  size = 0;
  onWritten?: () => void;
  /** Bytes known to be on disk. */
  private written = 0;
  private pending: Buffer[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  private waiters: Array<() => void> = [];
  private failure: Error | undefined;

  constructor(private readonly handle: FileHandle) {}

  append(data: Buffer): void {
    this.pending.push(data);
    this.size += data.length;
    if (!this.flushing) this.flushing = this.flush().finally(() => (this.flushing = undefined));
  }

  private async flush(): Promise<void> {
    try {
      while (this.pending.length && !this.closed) {
        const batch = this.pending;
        this.pending = [];
        let position = this.written;
        let total = 0;
        for (const b of batch) total += b.length;
        let done = 0;
        while (done < total) {
          const { bytesWritten } = await this.handle.writev(done === 0 ? batch : [Buffer.concat(batch).subarray(done)], position);
          done += bytesWritten;
          position += bytesWritten;
        }
        this.written += total;
        for (const wake of this.waiters.splice(0)) wake();
        this.onWritten?.();
      }
    } catch (error) {
      this.failure = error as Error;
      for (const wake of this.waiters.splice(0)) wake();
    }
  }

  get unwritten(): number {
    return this.size - this.written;
  }

  async read(position: number, length: number): Promise<Buffer> {
    while (this.written < position + length && !this.failure && !this.closed) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.failure) throw this.failure;
    const buffer = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await this.handle.read(buffer, got, length - got, position + got);
      if (bytesRead === 0) throw new Error('temp file ended early');
      got += bytesRead;
    }
    return buffer;
  }

  reset(): void {
    if (this.pending.length || this.flushing) return; // still landing: keep appending after it
    this.size = 0;
    this.written = 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const wake of this.waiters.splice(0)) wake();
    void (this.flushing ?? Promise.resolve()).then(() => this.handle.close()).catch(() => undefined);
  }
}
