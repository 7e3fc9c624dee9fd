/**
 * The full results the workers stored (`results/<id>.json`), read through the service's S3
 * endpoint: they carry what the HTTP answer leaves out, the size of the inference batch that held
 * each image, the worker process that ran it and when that worker finished it (`completedAt`, taken
 * as the batch's inference ends).
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { createAwsClients } from '../../../lib/aws/clients.js';
import type { Config } from '../../../lib/config.js';
import { resultKey } from '../../../pipeline/contract/keys.js';
import { isObject } from '../../../scaling/core/values.js';
import { ValidateError } from './errors.js';

export interface StoredResult {
  readonly id: string;
  /** Images in the inference batch that held this one. */
  readonly batch: number;
  /** `<host>:<pid>` of the worker process that classified it. */
  readonly worker: string;
  /** Stage timings in ms (queueWait, s3Get, decode, infer, persist...). */
  readonly timings: Readonly<Record<string, number>>;
  /** Epoch seconds when the worker finished the image: right after its batch's inference, before persisting. */
  readonly completedAt: number;
}

function parseStored(id: string, text: string): StoredResult {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new ValidateError('CALIBRATION', `${resultKey(id)} is not JSON`, { id }, { cause: err });
  }
  if (!isObject(body) || typeof body.batch !== 'number' || !isObject(body.timings)) {
    throw new ValidateError('CALIBRATION', `${resultKey(id)} has no batch size or timings`, { id });
  }
  const worker = body.worker;
  if (typeof worker !== 'string' || worker === '') {
    // Results from before the field existed cannot be attributed to a worker.
    throw new ValidateError('CALIBRATION', `${resultKey(id)} does not name its worker`, { id, worker });
  }
  const completedAt = typeof body.completedAt === 'string' ? Date.parse(body.completedAt) : Number.NaN;
  if (!Number.isFinite(completedAt)) {
    throw new ValidateError('CALIBRATION', `${resultKey(id)} has no valid completedAt`, {
      id,
      completedAt: body.completedAt,
    });
  }
  const timings: Record<string, number> = {};
  for (const [k, v] of Object.entries(body.timings)) if (typeof v === 'number') timings[k] = v;
  return { id, batch: body.batch, worker, timings, completedAt: completedAt / 1000 };
}

/** Reads `results/<id>.json` for every id, 16 at a time. */
export async function readStoredResults(config: Config, ids: readonly string[]): Promise<StoredResult[]> {
  const clients = createAwsClients(config);
  try {
    const out: StoredResult[] = new Array<StoredResult>(ids.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(16, ids.length) }, async () => {
        while (next < ids.length) {
          const i = next++;
          const id = ids[i]!;
          try {
            const object = await clients.s3.send(
              new GetObjectCommand({ Bucket: config.names.outputBucket, Key: resultKey(id) }),
            );
            out[i] = parseStored(id, await object.Body!.transformToString());
          } catch (err) {
            if (err instanceof ValidateError) throw err;
            throw new ValidateError(
              'CALIBRATION',
              `cannot read ${resultKey(id)}: ${(err as Error).message}`,
              { id, bucket: config.names.outputBucket },
              { cause: err },
            );
          }
        }
      }),
    );
    return out;
  } finally {
    clients.destroy();
  }
}
