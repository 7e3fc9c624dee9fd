/** Worker side: decode and resize each image to the model's input (`decodeImage` in images.ts). */
import type { OperatorFunction } from 'rxjs';
import { PipelineError } from '../../contract/errors.js';
import { type DecodeTarget, decodeImage } from '../../images.js';
import { type Job, stage } from '../job.js';

export function decode(target: DecodeTarget, concurrency: number): OperatorFunction<Job, Job> {
  return stage('decode', 'decode', 'UNDECODABLE_IMAGE', concurrency, async (job) => {
    if (!job.bytes) throw new Error('no bytes fetched');
    try {
      return { image: await decodeImage(job.bytes, target), bytes: undefined };
    } catch (err) {
      throw new PipelineError(
        'UNDECODABLE_IMAGE',
        `${job.request.file} could not be decoded as an image: ${(err as Error).message}`,
        { stage: 'decode', retryable: false, requestId: job.request.requestId, key: job.request.key },
        { cause: err },
      );
    }
  });
}
