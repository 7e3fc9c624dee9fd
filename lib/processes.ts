/**
 * Child processes of `npm start`: the embedded endpoint and the worker pool. Children are forked
 * with the parent's Node flags (so TypeScript loads the same way) and report readiness over IPC.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ServiceError } from './errors.js';
import type { Logger } from './log.js';

export type ChildMessage =
  | { type: 'ready'; [key: string]: unknown }
  | { type: 'fatal'; error: Record<string, unknown> };

export class ChildProcessError extends ServiceError<
  'CHILD_FAILED' | 'CHILD_NOT_READY' | 'CHILD_EXITED' | 'CHILD_BAD_REPORT' | 'KEEPS_FAILING'
> {
  override readonly name = 'ChildProcessError';
}

/** The main modules of this machine's child processes. */
export const WORKER_MAIN = new URL('../pipeline/worker/main.ts', import.meta.url);
export const ENDPOINT_MAIN = new URL('../endpoint/main.ts', import.meta.url);

/** Forks a main module on this very Node binary (`process.execPath`) with this process's Node flags. */
export function forkMain(main: URL, env: NodeJS.ProcessEnv): ChildProcess {
  return fork(fileURLToPath(main), [], {
    env,
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** Resolves with the child's `ready` message; rejects if it reports `fatal`, exits, or takes too long. */
export function waitUntilReady(
  child: ChildProcess,
  name: string,
  timeoutMs: number,
): Promise<Extract<ChildMessage, { type: 'ready' }>> {
  return new Promise((resolveReady, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (message: ChildMessage) => {
      if (message.type === 'ready') {
        cleanup();
        resolveReady(message);
      } else if (message.type === 'fatal') {
        cleanup();
        reject(
          new ChildProcessError('CHILD_FAILED', `${name} failed to start: ${String(message.error.message)}`, {
            name,
            error: message.error,
          }),
        );
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      cleanup();
      reject(
        new ChildProcessError('CHILD_EXITED', `${name} exited before it was ready (code ${code}, signal ${signal})`, {
          name,
          code,
          signal,
        }),
      );
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new ChildProcessError('CHILD_NOT_READY', `${name} was not ready within ${timeoutMs} ms`, { name, timeoutMs }),
      );
    }, timeoutMs);
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the child is gone. */
export function terminate(child: ChildProcess, graceMs: number, log?: Logger): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveExit) => {
    const timer = setTimeout(() => {
      log?.warn('child did not stop in time; killing it', { pid: child.pid, graceMs });
      child.kill('SIGKILL');
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolveExit();
    });
    child.kill('SIGTERM');
  });
}
