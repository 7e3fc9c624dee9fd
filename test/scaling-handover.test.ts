/**
 * One scaling authority: the controller's heartbeat ledger on a virtual clock (no wall clock). It
 * acts only once every period the CloudWatch policies could still look at holds a heartbeat, from
 * its own unbroken run or read back; it stops as soon as its heartbeat goes stale.
 */
import test from 'ava';
import { HANDOVER, HeartbeatLedger, validateHandoverTiming } from '../scaling/core/handover.js';

/** Beats every 20 s from `from` up to `to` (inclusive), as a controller would; returns the ledger. */
function beating(ledger: HeartbeatLedger, from: number, to: number, every = 20): HeartbeatLedger {
  for (let t = from; t <= to; t += every) if (ledger.due(t)) ledger.beaten(t);
  return ledger;
}

test('a controller that starts holds until its own heartbeats fill the last clearPeriods whole periods', (t) => {
  const ledger = new HeartbeatLedger();
  t.false(ledger.clear(0), 'no heartbeat yet');
  t.true(ledger.due(0));
  // First heartbeat at 30 s (inside period [0, 60)): the window before 30 s is [-180, 0), none of it ours.
  beating(ledger, 30, 30);
  t.false(ledger.clear(30));
  // Clear once periods [0, 60), [60, 120), [120, 180) are complete and all hold a heartbeat: from 180 s.
  beating(ledger, 50, 170);
  t.false(ledger.clear(179.9));
  beating(ledger, 180, 180);
  t.true(ledger.clear(180));
  t.deepEqual(ledger.window(185), { start: 0, end: 180 });
});

test('a copy taking over is clear at once when the heartbeats read back fill the window (another copy was alive)', (t) => {
  const ledger = new HeartbeatLedger();
  beating(ledger, 1_000, 1_000);
  t.false(ledger.clear(1_000));
  ledger.verify(1_000, [3, 3, 2]); // [780, 840), [840, 900), [900, 960)
  t.true(ledger.clear(1_000));
  // A window with a period without heartbeat does not clear: the policies may have armed.
  const other = beating(new HeartbeatLedger(), 1_000, 1_000);
  other.verify(1_000, [3, 0, 3]);
  t.false(other.clear(1_000));
  other.verify(1_000, [3, 3]); // fewer periods than the window: not enough
  t.false(other.clear(1_000));
});

test('a heartbeat that goes stale stops the controller before any period can go without one', (t) => {
  const ledger = beating(new HeartbeatLedger(), 0, 400);
  t.true(ledger.clear(400));
  // Sends fail from 420 s on: the last heartbeat is at 400 s.
  t.true(ledger.clear(400 + HANDOVER.maxGapSeconds));
  t.false(ledger.clear(400 + HANDOVER.maxGapSeconds + 1), 'stale: the next period may have none');
  // A heartbeat after the gap starts a new run, and the read-back of the old one no longer counts.
  ledger.verify(455, [3, 3, 3]);
  ledger.beaten(470);
  t.false(ledger.clear(470), 'a new run: the gap broke the old one');
  beating(ledger, 490, 720);
  t.true(ledger.clear(720), 'its own run (from 470 s) covers the window [540, 720)');
  t.false(new HeartbeatLedger().clear(720));
});

test('a ledger that has run since long ago, and the timing rules', (t) => {
  const ledger = HeartbeatLedger.running(-600, -10);
  t.true(ledger.clear(0));
  t.false(ledger.due(5));
  t.true(ledger.due(10));
  t.throws(() => validateHandoverTiming({ ...HANDOVER, maxGapSeconds: 60 }), { instanceOf: RangeError });
  t.throws(() => validateHandoverTiming({ ...HANDOVER, beatSeconds: 50 }), { instanceOf: RangeError });
  t.throws(() => validateHandoverTiming({ ...HANDOVER, clearPeriods: 0 }), { instanceOf: RangeError });
  t.notThrows(() => validateHandoverTiming(HANDOVER));
});
