// What the front writes in reply to one event-loop turn's reads, held to the turn's end
// and written in two phases: first each worker's batch of frames (pool/frames.ts), then
// the small answers for clients (proxy/forward.ts). A write wakes whoever reads the other
// end, and Linux puts the woken process on the writer's core when the writer looks about
// to sleep; written in this order, the workers wake while the clients still wait, so they
// find a free core instead of queueing behind the front (bench/RESULTS.md, 2026-12-02).
const workerWrites: Array<() => void> = [];
const clientWrites: Array<() => void> = [];
let scheduled = false;

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(runTurnEnd);
}

/** Runs every write queued so far; one that throws does not keep the rest from their sockets. */
function runAll(writes: Array<() => void>): unknown {
  let failure: unknown;
  // Live length: a write may queue another of its phase (it runs in this turn too).
  for (let i = 0; i < writes.length; i++) {
    try {
      writes[i]();
    } catch (error) {
      failure ??= error;
    }
  }
  writes.length = 0;
  return failure;
}

function runTurnEnd(): void {
  scheduled = false;
  const workerFailure = runAll(workerWrites);
  const clientFailure = runAll(clientWrites);
  // A worker write queued by a client write waits for the next turn's end (schedule() set it up).
  if (workerFailure !== undefined) throw workerFailure;
  if (clientFailure !== undefined) throw clientFailure;
}

/** A worker's batch of frames, written at this turn's end, before any client's answer. */
export function atTurnEndForWorkers(write: () => void): void {
  workerWrites.push(write);
  schedule();
}

/** A client's answer, written at this turn's end, after every worker's batch. */
export function atTurnEndForClients(write: () => void): void {
  clientWrites.push(write);
  schedule();
}
