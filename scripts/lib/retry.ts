import type { Logger } from '../../pipeline/log.js';

/** Calls `attempt` until it resolves or `timeoutMs` has passed (then rethrows its last error). */
export async function retryUntil<T>(attempt: () => Promise<T>, options: { timeoutMs: number; log: Logger; what: string }): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let delay = 250;
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (err) {
      if (Date.now() + delay > deadline) throw err;
      if (tries === 1 || tries % 5 === 0) options.log.warn(`waiting for ${options.what}`, { tries, error: err });
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 2_000);
    }
  }
}
