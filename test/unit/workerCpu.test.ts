// Worker CPU from /proc/<pid>/stat: the tick fields after a command name with spaces and parentheses.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CpuSampler, cpuTicks } from '../../server/control/workerCpu';

const stat = (utime: number, stime: number) =>
  `4242 (python3 (my app)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 ${utime} ${stime} 0 0 20 0 1 0 123456 26214400 6400 18446744073709551615`;

describe('worker CPU', () => {
  it('reads utime + stime after a command name holding spaces and parentheses', () => {
    assert.equal(cpuTicks(stat(150, 50)), 200);
    assert.equal(cpuTicks('garbage'), undefined);
  });

  it('gives percent of one core between two samples, and forgets pids that are gone', () => {
    let ticks = 0;
    const sampler = new CpuSampler(() => stat(ticks, 0));
    sampler.sample([4242], 0);
    assert.equal(sampler.percentOf(4242), undefined, 'one sample says nothing yet');
    ticks = 50; // 0.5 s of CPU in 1 s
    sampler.sample([4242], 1000);
    assert.equal(sampler.percentOf(4242), 50);
    sampler.sample([], 2000);
    assert.equal(sampler.percentOf(4242), undefined);
  });
});
