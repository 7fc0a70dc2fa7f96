// One client looping one request over one keep-alive connection, for as long as a wrk
// run lasts: the "one client loops a 200 ms request" half of the mixed-200 scenario.
// It runs in the runner's process (a request every 200 ms costs it next to nothing);
// its latencies and count are reported beside wrk's fast requests.
import http from 'node:http';
import { median } from './stats.mjs';

/** Starts looping GET URL; `stop()` waits for the request in flight and returns the figures. */
export function startLooper(url) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const latencies = [];
  let errors = 0;
  let stopping = false;
  const once = () =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      const req = http.get(url, { agent, timeout: 10000 }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - started }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
      req.on('error', reject);
    });
  const loop = (async () => {
    while (!stopping) {
      try {
        const r = await once();
        if (r.status === 200) latencies.push(r.ms);
        else errors += 1;
      } catch {
        errors += 1;
        await new Promise((resolve) => setTimeout(resolve, 50)); // do not spin on a refused connection
      }
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
      agent.destroy();
      return { n: latencies.length, p50Ms: median(latencies), maxMs: latencies.length ? Math.max(...latencies) : NaN, errors };
    },
  };
}
