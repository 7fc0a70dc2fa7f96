// The extension's crash budget is pure logic (extension/crashBudget.ts): plain Node covers it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CRASH_BUDGET, recordCrash } from '../../extension/crashBudget';

describe('the crash budget', () => {
  it('stops offering restarts at the 5th crash within 3 minutes, and forgets older ones', () => {
    assert.deepEqual(CRASH_BUDGET, { crashes: 5, windowMs: 180_000 });
    let history: number[] = [];
    const t0 = 1_000_000;
    for (let i = 0; i < 4; i++) {
      const r = recordCrash(history, t0 + i * 10_000);
      assert.equal(r.exhausted, false, `crash ${i + 1}`);
      history = r.recent;
    }
    assert.equal(recordCrash(history, t0 + 40_000).exhausted, true, 'the 5th within the window');
    const later = recordCrash(history, t0 + 185_000);
    assert.equal(later.exhausted, false, 'the first crash fell out of the window');
    assert.equal(later.recent.length, 4);
  });
});
