import * as ort from 'onnxruntime-node';
import { describeError, ModelError } from '../errors.js';
import { modelRuntime } from '../manifest.js';
import { checkImages, toInputBuffer, toPredictions, warmUp } from '../processing.js';
import type { Classifier, ModelManifest, Prediction, RgbImage } from '../types.js';

export interface OnnxOptions {
  /** ONNX Runtime intra-op threads. Default 1: the service runs one worker process per core. */
  readonly threads?: number;
  /** `cpu` (default; ships in the npm package) or `cuda` (ONNX Runtime's CUDA files: docs/configuration.md). */
  readonly device?: 'cpu' | 'cuda';
}

/** How to get the files the CUDA execution provider needs (npm ci skips them by default). */
export const CUDA_INSTALL_HINT =
  "install ONNX Runtime's CUDA 12 files once: ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install";

/**
 * `modelPath`: the `.onnx` file — the model's own, or the conversion of a `tfjs-layers` model whose
 * manifest says `runtime: 'onnxruntime'`.
 */
export async function loadOnnxClassifier(
  manifest: ModelManifest,
  modelPath: string,
  options: OnnxOptions = {},
): Promise<Classifier> {
  if (modelRuntime(manifest) !== 'onnxruntime') {
    throw new ModelError(
      'INVALID_OPTIONS',
      `onnx backend cannot run format '${manifest.format}' on runtime '${modelRuntime(manifest)}'`,
      { id: manifest.id, format: manifest.format },
    );
  }
  const threads = options.threads ?? 1;
  const device = options.device ?? 'cpu';
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelPath, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      executionProviders: device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    });
  } catch (error) {
    if (device === 'cuda') {
      throw new ModelError(
        'BACKEND_UNAVAILABLE',
        `onnxruntime could not start its CUDA execution provider for '${manifest.id}' (${describeError(error).split('\n')[0]}); ${CUDA_INSTALL_HINT}, or set MODEL_DEVICE=cpu`,
        {
          id: manifest.id,
          device,
        },
        { cause: error },
      );
    }
    throw new ModelError(
      'MODEL_LOAD_FAILED',
      `onnxruntime could not load '${manifest.id}' from ${modelPath}: ${describeError(error)}`,
      {
        id: manifest.id,
        path: modelPath,
      },
      { cause: error },
    );
  }

  try {
    const io = resolveIo(manifest, session);
    const classifier = makeClassifier(manifest, session, io);
    await warmUp(classifier);
    return classifier;
  } catch (error) {
    await session.release();
    throw error;
  }
}

interface SessionIo {
  readonly input: string;
  readonly output: string;
  /** Batch size one `run` takes: Infinity for a symbolic batch dimension (`batch_size`), else the fixed size. */
  readonly maxBatch: number;
}

function resolveIo(manifest: ModelManifest, session: ort.InferenceSession): SessionIo {
  const input = manifest.input.name ?? session.inputNames[0];
  const output = manifest.output.name ?? session.outputNames[0];
  if (
    input === undefined ||
    !session.inputNames.includes(input) ||
    output === undefined ||
    !session.outputNames.includes(output)
  ) {
    throw new ModelError(
      'MODEL_MISMATCH',
      `model '${manifest.id}' has inputs [${session.inputNames.join(', ')}] and outputs ` +
        `[${session.outputNames.join(', ')}]; manifest names input '${input}', output '${output}'`,
      {
        id: manifest.id,
        inputs: session.inputNames,
        outputs: session.outputNames,
      },
    );
  }
  const meta = session.inputMetadata.find((m) => m.name === input);
  const shape = meta?.isTensor ? meta.shape : undefined;
  const { width, height, layout } = manifest.input;
  if (shape !== undefined && shape.length === 4) {
    const expected = layout === 'NHWC' ? [height, width, 3] : [3, height, width];
    if (shape.slice(1).some((dim, i) => typeof dim === 'number' && dim > 0 && dim !== expected[i])) {
      throw new ModelError(
        'MODEL_MISMATCH',
        `model '${manifest.id}' input '${input}' is [${shape.join(',')}], manifest says ${layout} [n,${expected.join(',')}]`,
        {
          id: manifest.id,
          modelShape: shape,
          expected,
        },
      );
    }
  }
  // Models exported with a fixed batch (usually 1) reject bigger batches: run those image by image.
  const batchDim = shape?.[0];
  const maxBatch = typeof batchDim === 'number' && batchDim > 0 ? batchDim : Infinity;
  return { input, output, maxBatch };
}

function makeClassifier(manifest: ModelManifest, session: ort.InferenceSession, io: SessionIo): Classifier {
  let disposed = false;
  const { width, height, layout } = manifest.input;
  const blank: RgbImage = { data: new Uint8Array(width * height * 3), width, height };

  const runChunk = async (images: readonly RgbImage[]): Promise<Prediction[]> => {
    const dims = layout === 'NCHW' ? [images.length, 3, height, width] : [images.length, height, width, 3];
    const tensor = new ort.Tensor('float32', toInputBuffer(manifest, images), dims);
    let result: ort.InferenceSession.OnnxValueMapType;
    try {
      result = await session.run({ [io.input]: tensor }, [io.output]);
    } catch (error) {
      throw new ModelError(
        'INFERENCE_FAILED',
        `onnxruntime inference failed for '${manifest.id}': ${describeError(error)}`,
        {
          id: manifest.id,
          batch: images.length,
        },
        { cause: error },
      );
    } finally {
      tensor.dispose();
    }
    const out = result[io.output];
    try {
      if (out === undefined || !(out.data instanceof Float32Array)) {
        throw new ModelError('MODEL_MISMATCH', `model '${manifest.id}' output '${io.output}' is not a float32 tensor`, {
          id: manifest.id,
          type: out?.type,
        });
      }
      return toPredictions(manifest, out.data, images.length);
    } finally {
      out?.dispose();
    }
  };

  return {
    manifest,
    backend: manifest.format === 'onnx' ? 'onnxruntime-node' : 'onnxruntime-node (converted from tfjs)',
    classify: async (images: readonly RgbImage[]): Promise<Prediction[]> => {
      if (disposed) throw new ModelError('DISPOSED', `classifier '${manifest.id}' was disposed`, { id: manifest.id });
      checkImages(manifest, images);
      if (images.length === 0) return [];
      if (io.maxBatch === Infinity) return runChunk(images);
      const predictions: Prediction[] = [];
      for (let start = 0; start < images.length; start += io.maxBatch) {
        const chunk = images.slice(start, start + io.maxBatch);
        const real = chunk.length;
        // A fixed batch dimension must be filled exactly: pad with black images, drop their results.
        while (chunk.length < io.maxBatch) chunk.push(blank);
        predictions.push(...(await runChunk(chunk)).slice(0, real));
      }
      return predictions;
    },
    dispose: async () => {
      if (disposed) return;
      disposed = true;
      await session.release();
    },
  };
}
