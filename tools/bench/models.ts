/**
 * Per model and backend, on one thread: top-1 / top-5 on the sample photos, decode cost, and
 * inference ms per image at batch 1 and at each batch size tried.
 */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { loadClassifier } from '../../models/index.js';
import type { RgbImage } from '../../models/types.js';
import { decodeImage } from '../../pipeline/images.js';
import type { Photo } from './photos.js';

export interface ModelBench {
  readonly id: string;
  readonly backend: string;
  readonly resize: string;
  readonly top1: number;
  readonly top5: number;
  /** sharp decode + resize to the model input, ms per photo, one thread. */
  readonly decodeMs: number;
  /** Inference ms per image at each batch size. */
  readonly inferMs: Readonly<Record<number, number>>;
  readonly bestBatch: number;
  readonly bestInferMs: number;
}

const now = () => performance.now();

export async function benchModel(
  id: string,
  photos: readonly Photo[],
  options: { modelsDir: string; batches: readonly number[] },
): Promise<ModelBench> {
  sharp.concurrency(1);
  sharp.cache(false);
  const classifier = await loadClassifier(id, { modelsDir: options.modelsDir, threads: 1 });
  try {
    const files = await Promise.all(photos.map((p) => readFile(p.path)));
    let started = now();
    const images: RgbImage[] = [];
    for (const bytes of files) images.push(await decodeImage(bytes, classifier.manifest.input));
    const decodeMs = (now() - started) / images.length;

    // Accuracy and batch-1 speed over every photo.
    let top1 = 0;
    let top5 = 0;
    started = now();
    for (const [i, image] of images.entries()) {
      const [prediction] = await classifier.classify([image]);
      const truth = photos[i]!.classIndex;
      if (prediction!.top5[0]!.index === truth) top1++;
      if (prediction!.top5.some((c) => c.index === truth)) top5++;
    }
    const inferMs: Record<number, number> = { 1: (now() - started) / images.length };

    // Larger batches over the same images (at least ~128 images each).
    for (const batch of options.batches.filter((b) => b > 1)) {
      const rounds = Math.max(1, Math.ceil(128 / images.length));
      let count = 0;
      started = now();
      for (let r = 0; r < rounds; r++) {
        for (let i = 0; i + batch <= images.length; i += batch) {
          await classifier.classify(images.slice(i, i + batch));
          count += batch;
        }
      }
      inferMs[batch] = (now() - started) / count;
    }
    const [bestBatch, bestInferMs] = Object.entries(inferMs)
      .map(([b, ms]) => [Number(b), ms] as const)
      .sort((a, b) => a[1] - b[1])[0]!;
    return {
      id,
      backend: classifier.backend,
      resize: classifier.manifest.input.resize,
      top1: top1 / images.length,
      top5: top5 / images.length,
      decodeMs,
      inferMs,
      bestBatch,
      bestInferMs,
    };
  } finally {
    await classifier.dispose();
  }
}
