/**
 * Retrying through an outage: exponential backoff with jitter until the work succeeds, fails with
 * an error not worth retrying, or the time budget is spent (then the last error is thrown).
 */
import { isTransientAwsError } from './aws/errors.js';
import type { Logger } from './log.js';

export interface RetryOptions {
  /** Give up once this much time has passed since the first attempt. */
  readonly budgetMs: number;
  readonly retryIf?: (err: unknown) => boolean;
  readonly log?: Logger;
  readonly what?: string;
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
}

export async function retry<T>(attempt: () => Promise<T>, options: RetryOptions): Promise<T> {
  const retryIf = options.retryIf ?? isTransientAwsError;
  const deadline = Date.now() + options.budgetMs;
  let delay = options.initialDelayMs ?? 200;
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (err) {
      if (!retryIf(err) || Date.now() + delay > deadline) throw err;
      if (options.log && (tries === 1 || tries % 5 === 0))
        options.log.warn(`retrying ${options.what ?? 'operation'}`, { tries, error: err });
      await new Promise((r) => setTimeout(r, delay * (0.75 + Math.random() / 2)));
      delay = Math.min(delay * 2, options.maxDelayMs ?? 2_000);
    }
  }
}
