// A proxy route with several URLs (NGINX's `upstream` block with `server` lines): each
// request goes to one member, in turn or to the one with the fewest requests in flight.
//
// Passive health, NGINX's max_fails/fail_timeout: a member whose attempts fail (refused,
// reset, timed out; before any answer) maxFails times within failTimeout is taken out for
// failTimeout. When that time is up, the next request it would get is its probe: one
// request at a time until one succeeds (back in) or fails (out for another failTimeout).
// With every member out, the first attempt still goes to the one out the longest, so a
// dev server that restarts is found at once rather than after a 502.
//
// Fail-over happens here, where the other members are known, and only before the answer
// has started, so nothing has reached the client: a request that never reached its member
// (connection refused) may go to another whatever its method; one that may have been run
// (reset after sending, timed out) only when its method is idempotent (NGINX's
// proxy_next_upstream error timeout, never non_idempotent). Either way its body must be
// replayable (read whole first), and each member is tried at most once per request.
import type { Socket } from 'node:net';
import type { BalanceConfig } from '../config/types';
import { HttpUpstream } from './http';
import type { ResponseSink, Upstream, UpstreamCall, UpstreamFailure, UpstreamRequest, UpgradeOutcome } from './types';

/** RFC 9110 §9.2.2. */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Whether a request that failed this way may go to another member (nothing has reached the client yet). */
export function mayTryAnother(request: UpstreamRequest, failure: UpstreamFailure): boolean {
  if (request.body && !request.body.replayable) return false;
  if (failure.code === 'UNREACHABLE') return true; // the request never left
  if (failure.code === 'LOST' || failure.code === 'TIMEOUT') return IDEMPOTENT_METHODS.has(request.method);
  return false;
}

export interface MemberHealth {
  url: string;
  /** Requests (and WebSockets) in flight. */
  active: number;
  down: boolean;
  fails: number;
}

interface Member {
  url: string;
  upstream: HttpUpstream;
  active: number;
  fails: number;
  windowStart: number;
  down: boolean;
  downUntil: number;
  /** A request is probing this member after its time out. */
  probing: boolean;
}

export class BalancedUpstream implements Upstream {
  /** NGINX's default: a body read whole can be sent again to another member. */
  readonly buffersRequestsByDefault = true;
  readonly failsOver = true;
  private readonly members: Member[];
  private turn = 0;

  constructor(
    readonly name: string,
    targets: string[],
    private readonly balance: BalanceConfig,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.members = targets.map((url) => ({
      url,
      upstream: new HttpUpstream(url, () => Promise.resolve(url), hostOf(url)),
      active: 0,
      fails: 0,
      windowStart: 0,
      down: false,
      downUntil: 0,
      probing: false,
    }));
  }

  health(): MemberHealth[] {
    return this.members.map(({ url, active, down, fails }) => ({ url, active, down, fails }));
  }

  submit(request: UpstreamRequest, sink: ResponseSink): UpstreamCall {
    const tried = new Set<Member>();
    let call: UpstreamCall | undefined;
    let settleCurrent: (() => void) | undefined;
    let cancelled = false;
    const attempt = (last: UpstreamFailure | undefined): void => {
      const member = this.pick(tried, last === undefined);
      if (!member) {
        sink.fail(last ?? { code: 'UNREACHABLE', message: `none of ${this.members.length} upstreams of ${this.name} can be tried` });
        return;
      }
      tried.add(member);
      member.active++;
      let settled = false;
      let started = false;
      const settle = () => {
        if (settled) return;
        settled = true;
        member.active--;
        member.probing = false;
      };
      settleCurrent = settle;
      call = member.upstream.submit(request, {
        assigned: (who) => sink.assigned(who),
        start: (status, headers) => {
          started = true;
          this.succeeded(member);
          sink.start(status, headers);
        },
        data: (chunk) => sink.data(chunk),
        end: () => {
          settle();
          sink.end();
        },
        fail: (failure) => {
          settle();
          if (!started) {
            this.failed(member);
            if (!cancelled && mayTryAnother(request, failure) && tried.size < this.members.length) return attempt(failure);
          }
          sink.fail(failure);
        },
      });
    };
    attempt(undefined);
    return {
      cancel: () => {
        cancelled = true;
        settleCurrent?.();
        call?.cancel();
      },
      pause: () => call?.pause(),
      resume: () => call?.resume(),
    };
  }

  /** A WebSocket goes to a healthy member too, to the next one when it cannot connect, and counts as in flight while it is open. */
  upgrade(request: UpstreamRequest, socket: Socket, head: Buffer, done?: (outcome: UpgradeOutcome) => void): void {
    const tried = new Set<Member>();
    const attempt = (): void => {
      const member = this.pick(tried, tried.size === 0)!;
      tried.add(member);
      member.active++;
      let open = true;
      const settle = () => {
        if (!open) return;
        open = false;
        member.active--;
        member.probing = false;
      };
      socket.once('close', settle);
      member.upstream.upgrade(request, socket, head, done && ((outcome) => done({ ...outcome, worker: outcome.worker ?? member.url })), (reached) => {
        if (reached) return void this.succeeded(member);
        settle();
        socket.off('close', settle);
        this.failed(member);
        if (socket.destroyed || tried.size >= this.members.length || !this.pick(tried, false, true)) return false;
        attempt();
        return true;
      });
    };
    attempt();
  }

  /**
   * The member for the next attempt, skipping those tried; undefined when none is left.
   * On the first attempt a member out of rotation is taken when no other can be.
   */
  private pick(tried: ReadonlySet<Member>, first: boolean, peek = false): Member | undefined {
    const now = this.now();
    const count = this.members.length;
    let chosen: Member | undefined;
    for (let i = 0; i < count; i++) {
      const index = (this.turn + i) % count;
      const m = this.members[index];
      if (tried.has(m) || !this.usable(m, now)) continue;
      if (this.balance.method === 'round-robin') {
        chosen = m;
        break;
      }
      if (!chosen || m.active < chosen.active) chosen = m;
    }
    if (!chosen && first) {
      for (const m of this.members) if (!tried.has(m) && (!chosen || m.downUntil < chosen.downUntil)) chosen = m;
    }
    if (!chosen || peek) return chosen;
    this.turn = (this.members.indexOf(chosen) + 1) % count;
    if (chosen.down) chosen.probing = true;
    return chosen;
  }

  private usable(m: Member, now: number): boolean {
    return !m.down || (now >= m.downUntil && !m.probing);
  }

  private succeeded(m: Member): void {
    m.down = false;
    m.fails = 0;
  }

  private failed(m: Member): void {
    const { maxFails, failTimeoutMs } = this.balance;
    if (maxFails <= 0 || this.members.length < 2) return; // NGINX ignores max_fails for a single server
    const now = this.now();
    if (m.down) {
      m.downUntil = now + failTimeoutMs; // the probe failed: out again
      return;
    }
    if (now - m.windowStart > failTimeoutMs) {
      m.fails = 0;
      m.windowStart = now;
    }
    m.fails++;
    if (m.fails >= maxFails) {
      m.down = true;
      m.downUntil = now + failTimeoutMs;
    }
  }
}

/** host:port, as the access log names the upstream (NGINX's $upstream_addr). */
function hostOf(url: string): string {
  try {
    const u = new URL(url.replace(/^ws/i, 'http'));
    return u.port ? u.host : `${u.host}:${u.protocol === 'https:' ? 443 : 80}`;
  } catch {
    return url;
  }
}
