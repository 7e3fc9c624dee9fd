/**
 * The service as a list of parts, each started in order and stopped in reverse by one loop — the
 * whole of what the composition root needs: `start` one part at a time (each may use what the
 * earlier ones gave back), and `stop` them all, newest first, whatever failed. A part that failed to
 * start is not in the list; everything started before it is stopped by the same loop.
 */
import type { Logger } from '../lib/log.js';

/** What a started part must do: stop (and let go of what it holds). */
export interface Stoppable {
  stop(): Promise<void> | void;
}

export class Composition {
  private readonly started: { readonly name: string; readonly part: Stoppable }[] = [];
  private stopping: Promise<void> | undefined;

  constructor(private readonly log: Logger) {}

  /** Starts one part and keeps it for `stop`; what `start` gives back is returned. */
  async start<T extends Stoppable>(name: string, start: () => Promise<T> | T): Promise<T> {
    if (this.stopping) throw new Error(`cannot start ${name}: the service is stopping`);
    const part = await start();
    this.started.push({ name, part });
    this.log.debug('started', { part: name });
    return part;
  }

  /** Stops every part started, newest first; a part that fails to stop does not keep the others running. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const { name, part } of this.started.reverse()) {
        try {
          await part.stop();
          this.log.debug('stopped', { part: name });
        } catch (err) {
          this.log.error('could not stop a part of the service; stopping the rest', { part: name, error: err });
        }
      }
    })();
    return this.stopping;
  }
}

/** A part with nothing to stop (resources that outlive the process, one-shot work). */
export const NOTHING_TO_STOP: Stoppable = { stop: () => undefined };
