/**
 * `batchUntil(maxSize, maxWaitMs, scheduler?)`: collects items into batches of at most `maxSize`,
 * emitting a batch when it is full or `maxWaitMs` after its first item arrived (whichever comes
 * first), and whatever is left when the source ends. Unlike `bufferTime`, no timer runs while
 * nothing is waiting. Time comes from `scheduler` (default `asyncScheduler`), so tests run it in
 * virtual time.
 */
import { asyncScheduler, Observable, type OperatorFunction, type SchedulerLike, type Subscription } from 'rxjs';

export function batchUntil<T>(
  maxSize: number,
  maxWaitMs: number,
  scheduler: SchedulerLike = asyncScheduler,
): OperatorFunction<T, T[]> {
  return (source) =>
    new Observable<T[]>((subscriber) => {
      let batch: T[] = [];
      let timer: Subscription | undefined;
      const flush = () => {
        timer?.unsubscribe();
        timer = undefined;
        if (batch.length === 0) return;
        const full = batch;
        batch = [];
        subscriber.next(full);
      };
      const subscription = source.subscribe({
        next(item) {
          batch.push(item);
          if (batch.length >= maxSize) flush();
          else timer ??= scheduler.schedule(flush, maxWaitMs);
        },
        error(err) {
          timer?.unsubscribe();
          subscriber.error(err);
        },
        complete() {
          flush();
          subscriber.complete();
        },
      });
      return () => {
        timer?.unsubscribe();
        subscription.unsubscribe();
      };
    });
}
