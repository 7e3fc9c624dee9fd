/** Runtime-independent pre- and post-processing shared by every backend. */
import { ModelError } from './errors.js';
import type { Classifier, ClassScore, ModelManifest, Prediction, RgbImage } from './types.js';

export const TOP_K = 5;

/** Text before the first comma: `goldfish, Carassius auratus` → `goldfish`. */
export function shortLabel(label: string): string {
  const comma = label.indexOf(',');
  return (comma === -1 ? label : label.slice(0, comma)).trim();
}

/** Numerically stable softmax of `values[start, end)`, written to a new array. */
export function softmax(values: ArrayLike<number>, start = 0, end = values.length): Float32Array {
  const out = new Float32Array(end - start);
  let max = -Infinity;
  for (let i = start; i < end; i++) max = Math.max(max, values[i]!);
  let sum = 0;
  for (let i = start; i < end; i++) {
    const e = Math.exp(values[i]! - max);
    out[i - start] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i]! /= sum;
  return out;
}

/** Indices of the `k` largest values, largest first (ties: lower index first). */
export function topK(values: ArrayLike<number>, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (best.length === k && v <= values[best[k - 1]!]!) continue;
    let at = best.length;
    while (at > 0 && v > values[best[at - 1]!]!) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}

/** Throws `INVALID_INPUT` unless every image has the manifest's size and `w*h*3` bytes. */
export function checkImages(manifest: ModelManifest, images: readonly RgbImage[]): void {
  if (!Array.isArray(images)) {
    throw new ModelError('INVALID_INPUT', 'classify() expects an array of images', { id: manifest.id });
  }
  const { width, height } = manifest.input;
  images.forEach((image, index) => {
    const ok =
      image !== null &&
      typeof image === 'object' &&
      image.data instanceof Uint8Array &&
      image.width === width &&
      image.height === height &&
      image.data.length === width * height * 3;
    if (!ok) {
      throw new ModelError(
        'INVALID_INPUT',
        `image ${index} must be ${width}x${height} RGB (${width * height * 3} bytes), got ` +
          `${image?.width}x${image?.height} with ${image?.data?.length} bytes`,
        {
          id: manifest.id,
          index,
          expected: { width, height, bytes: width * height * 3 },
          got: { width: image?.width, height: image?.height, bytes: image?.data?.length },
        },
      );
    }
  });
}

/**
 * The whole batch as one float32 tensor buffer in the manifest's layout and normalization, in a
 * single pass over the bytes. `(p / scale - mean) / std` is folded into `p * a + b` per channel.
 */
export function toInputBuffer(manifest: ModelManifest, images: readonly RgbImage[]): Float32Array {
  const { width, height, layout, normalization: n } = manifest.input;
  const pixels = width * height;
  const a = [0, 1, 2].map((c) => 1 / (n.scale * n.std[c]!)) as [number, number, number];
  const b = [0, 1, 2].map((c) => -n.mean[c]! / n.std[c]!) as [number, number, number];
  const out = new Float32Array(images.length * pixels * 3);
  for (let i = 0; i < images.length; i++) {
    const data = images[i]!.data;
    const base = i * pixels * 3;
    if (layout === 'NHWC') {
      for (let p = 0, j = 0; p < pixels; p++, j += 3) {
        out[base + j] = data[j]! * a[0] + b[0];
        out[base + j + 1] = data[j + 1]! * a[1] + b[1];
        out[base + j + 2] = data[j + 2]! * a[2] + b[2];
      }
    } else {
      for (let p = 0, j = 0; p < pixels; p++, j += 3) {
        out[base + p] = data[j]! * a[0] + b[0];
        out[base + pixels + p] = data[j + 1]! * a[1] + b[1];
        out[base + 2 * pixels + p] = data[j + 2]! * a[2] + b[2];
      }
    }
  }
  return out;
}

/** Number of output columns the manifest implies: its labels plus the leading non-class outputs. */
export function expectedOutputWidth(manifest: ModelManifest): number {
  return manifest.labels.length + manifest.output.offset;
}

/**
 * Turns the raw `[n, columns]` output into predictions: drop the `offset` leading columns, then
 * softmax for logits, so the scores of the labelled classes sum to 1 (as tfjs-models' mobilenet does
 * with the background logit).
 */
export function toPredictions(manifest: ModelManifest, output: Float32Array, batch: number): Prediction[] {
  const columns = expectedOutputWidth(manifest);
  if (output.length !== batch * columns) {
    throw new ModelError(
      'MODEL_MISMATCH',
      `model '${manifest.id}' returned ${output.length} values for ${batch} images; the manifest implies ${columns} per image ` +
        `(${manifest.labels.length} labels + offset ${manifest.output.offset})`,
      { id: manifest.id, values: output.length, batch, expectedColumns: columns },
    );
  }
  const { offset, kind } = manifest.output;
  const predictions: Prediction[] = [];
  for (let i = 0; i < batch; i++) {
    const start = i * columns + offset;
    const end = (i + 1) * columns;
    const classes = kind === 'logits' ? softmax(output, start, end) : output.subarray(start, end);
    const top5: ClassScore[] = topK(classes, TOP_K).map((index) => ({
      label: manifest.labels[index]!,
      score: classes[index]!,
      index,
    }));
    const best = top5[0]!;
    predictions.push({ label: shortLabel(best.label), score: best.score, top5 });
  }
  return predictions;
}

/** One black image through the full path: pays for kernel setup now and checks the output width against the labels. */
export async function warmUp(classifier: Classifier): Promise<void> {
  const { width, height } = classifier.manifest.input;
  await classifier.classify([{ data: new Uint8Array(width * height * 3), width, height }]);
}
