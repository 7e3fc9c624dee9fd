/**
 * The worker alone: what one worker's code costs per image beyond decode and inference, with nothing
 * else competing for its core. In this process, on the same images: the raw decode + inference
 * (in batches of MAX_BATCH, as a worker runs them), then the whole worker pipeline — receive,
 * fetch, decode, classify, persist, answer (to a queue of its own), delete — over the same images queued on an embedded
 * endpoint of its own (its own process, on the other core), alternately, twice each. Both sides
 * are this process's CPU time (`process.cpuUsage`), so the ratio compares like with like; the
 * pipeline bursts measure the same ratio with every process of the service sharing the cores.
 */

import { readFile } from 'node:fs/promises';
import { CreateQueueCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import sharp from 'sharp';
import { createAwsClients } from '../../lib/aws/clients.js';
import type { Config } from '../../lib/config.js';
import { silentLogger } from '../../lib/log.js';
import { type ImageRequest, serializeMessage } from '../../pipeline/contract/messages.js';
import { decodeImage } from '../../pipeline/images.js';
import { ensureResources } from '../../pipeline/resources.js';
import { Store } from '../../pipeline/store.js';
import { loadConfiguredClassifier, workerPipeline } from '../../pipeline/worker/worker.js';
import { startOwnEndpoint } from './endpoints.js';
import type { Photo } from './photos.js';
import { BenchError } from './pipeline.js';

export interface WorkerAlone {
  readonly images: number;
  /** CPU ms per image of decode + inference alone, per round. */
  readonly rawMs: readonly number[];
  /** CPU ms per image of the whole worker pipeline, per round. */
  readonly workerMs: readonly number[];
}

const cpuMs = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};

export async function workerAlone(
  model: string,
  photos: readonly Photo[],
  dataParent: string,
  rounds = 2,
): Promise<WorkerAlone> {
  const endpoint = await startOwnEndpoint(dataParent);
  const base = endpoint.config;
  const config: Config = {
    ...base,
    model: { ...base.model, source: model },
    worker: { ...base.worker, receiveWaitSeconds: 1 },
  };
  const clients = createAwsClients(config);
  sharp.concurrency(1);
  sharp.cache(false);
  try {
    const resources = await ensureResources(clients, config);
    const store = Store.of(clients.s3, config);
    const classifier = await loadConfiguredClassifier(config, clients);
    const log = silentLogger;
    const files = await Promise.all(photos.map((p) => readFile(p.path)));
    const batch = config.worker.maxBatch;
    // Answers go somewhere, as the web tier's would: the worker's respond stage is part of its cost.
    const { QueueUrl: replyTo } = await clients.sqs.send(
      new CreateQueueCommand({ QueueName: 'bench-worker-alone-answers' }),
    );

    const raw = async () => {
      const started = process.cpuUsage();
      for (let i = 0; i < files.length; i += batch) {
        const images = await Promise.all(
          files.slice(i, i + batch).map((bytes) => decodeImage(bytes, classifier.manifest.input)),
        );
        await classifier.classify(images);
      }
      return cpuMs(started) / files.length;
    };

    let round = 0;
    const worker = async (count = files.length) => {
      round++;
      const requests: ImageRequest[] = [];
      for (const [i, bytes] of files.slice(0, count).entries()) {
        const requestId = `00000000-0000-4000-8000-${String(round).padStart(4, '0')}${String(i).padStart(8, '0')}`;
        const { bucket, key } = await store.putInput({
          requestId,
          file: photos[i]!.file,
          bytes,
          contentType: 'image/jpeg',
          protocol: 'api',
        });
        requests.push({
          v: 1,
          requestId,
          bucket,
          key,
          file: photos[i]!.file,
          replyTo: replyTo!,
          enqueuedAt: Date.now(),
          timings: {},
        });
      }
      for (let i = 0; i < requests.length; i += 10) {
        const entries = requests.slice(i, i + 10).map((r, j) => ({ Id: String(j), MessageBody: serializeMessage(r) }));
        await clients.sqs.send(new SendMessageBatchCommand({ QueueUrl: resources.requestQueueUrl, Entries: entries }));
      }
      // Everything queued: from here on this process does only the worker's work.
      const stop = new AbortController();
      const started = process.cpuUsage();
      const { jobs, done } = workerPipeline(
        { config, clients, classifier, log },
        resources.requestQueueUrl,
        stop.signal,
      );
      let finished = 0;
      let failed = 0;
      let ms = 0;
      // At the last answer: the CPU so far, then stop (the drain that follows is not counted).
      await new Promise<void>((resolve, reject) => {
        jobs.subscribe({
          next(job) {
            if (job.failure) failed++;
            done(job);
            if (++finished === requests.length) {
              ms = cpuMs(started) / requests.length;
              stop.abort();
            }
          },
          error: reject,
          complete: resolve,
        });
      });
      if (failed > 0)
        throw new BenchError('BENCH_FAILED', `the worker alone failed ${failed} of ${requests.length} images`);
      return ms;
    };

    // Warm-up: JIT, the model's first runs, the SDK's first calls and connections.
    await raw();
    await worker(Math.min(files.length, 50));
    const rawMs: number[] = [];
    const workerMs: number[] = [];
    for (let r = 0; r < rounds; r++) {
      rawMs.push(await raw());
      workerMs.push(await worker());
    }
    await classifier.dispose();
    return { images: files.length, rawMs, workerMs };
  } finally {
    clients.destroy();
    await endpoint.stop();
  }
}
