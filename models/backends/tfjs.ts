import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describeError, ModelError } from '../errors.js';
import { checkImages, toInputBuffer, toPredictions, warmUp } from '../processing.js';
import { readTfjsModel } from '../source.js';
import type { Classifier, ModelManifest, Prediction, RgbImage } from '../types.js';

export type TfjsRuntime = 'tfjs-node' | 'tfjs-wasm';

const TFJS_NODE = '@tensorflow/tfjs-node';
const TFJS_WASM = '@tensorflow/tfjs-backend-wasm';

let runtime: Promise<TfjsRuntime> | undefined;

/**
 * Picks the tfjs backend once per process (tfjs' engine is global): the native `tfjs-node` when the
 * user has it installed, else the wasm backend (SIMD, single-threaded: we run one process per core).
 */
export function initTfjsRuntime(): Promise<TfjsRuntime> {
  runtime ??= chooseRuntime().catch((error: unknown) => {
    runtime = undefined; // let a later call retry instead of caching the failure forever
    throw error;
  });
  return runtime;
}

async function chooseRuntime(): Promise<TfjsRuntime> {
  if (await importTfjsNode()) {
    if (!(await tf.setBackend('tensorflow'))) {
      throw new ModelError(
        'BACKEND_UNAVAILABLE',
        `${TFJS_NODE} is installed but its 'tensorflow' backend failed to initialize`,
        {
          backend: 'tensorflow',
        },
      );
    }
    return 'tfjs-node';
  }

  let wasm: typeof import('@tensorflow/tfjs-backend-wasm');
  let distDir: string;
  try {
    wasm = await import(TFJS_WASM);
    // The package's node entry lives in dist/, next to the .wasm binaries.
    distDir = path.dirname(createRequire(import.meta.url).resolve(TFJS_WASM));
  } catch (error) {
    throw new ModelError(
      'BACKEND_UNAVAILABLE',
      `no tfjs backend: neither ${TFJS_NODE} nor ${TFJS_WASM} can be loaded (${describeError(error)})`,
      {
        tried: [TFJS_NODE, TFJS_WASM],
      },
      { cause: error },
    );
  }
  wasm.setWasmPaths(distDir + path.sep);
  // Node already reports no wasm threads; set it anyway so a future tfjs cannot start a thread pool
  // per process behind our back.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  if (!(await tf.setBackend('wasm'))) {
    throw new ModelError('BACKEND_UNAVAILABLE', `the tfjs wasm backend failed to initialize (binaries in ${distDir})`, {
      backend: 'wasm',
      distDir,
    });
  }
  await tf.ready();
  return 'tfjs-wasm';
}

/** True when tfjs-node was imported (it registers itself); false only when it is not installed. */
async function importTfjsNode(): Promise<boolean> {
  try {
    // A variable specifier keeps TypeScript from requiring the (optional, absent) package's types.
    const specifier: string = TFJS_NODE;
    await import(specifier);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (
      (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
      describeError(error).includes(`'${TFJS_NODE}'`)
    ) {
      return false;
    }
    // Installed but broken (e.g. its native library is missing): say so rather than silently run several times slower.
    throw new ModelError(
      'BACKEND_UNAVAILABLE',
      `${TFJS_NODE} is installed but cannot be loaded: ${describeError(error)}`,
      {
        backend: 'tensorflow',
      },
      { cause: error },
    );
  }
}

/**
 * tfjs' `file://` loader needs tfjs-node; this reads model.json and its weight files from disk.
 * Weight files are returned as separate buffers (tfjs concatenates them lazily).
 */
export function fileSystemHandler(modelJsonPath: string): tf.io.IOHandler {
  return {
    load: async () => {
      const { modelJson, weights } = await readTfjsModel(modelJsonPath);
      return tf.io.getModelArtifactsForJSON(modelJson as tf.io.ModelJSON, async (weightsManifest) => [
        tf.io.getWeightSpecs(weightsManifest),
        weights.map((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer),
      ]);
    },
  };
}

type Runner = (input: tf.Tensor4D) => tf.Tensor;

export async function loadTfjsClassifier(manifest: ModelManifest, modelJsonPath: string): Promise<Classifier> {
  if (manifest.format !== 'tfjs-layers' && manifest.format !== 'tfjs-graph') {
    throw new ModelError('INVALID_OPTIONS', `tfjs backend cannot run format '${manifest.format}'`, {
      id: manifest.id,
      format: manifest.format,
    });
  }
  const backend = await initTfjsRuntime();
  const handler = fileSystemHandler(modelJsonPath);

  let model: tf.LayersModel | tf.GraphModel;
  let run: Runner;
  try {
    if (manifest.format === 'tfjs-layers') {
      const layers = await tf.loadLayersModel(handler);
      model = layers;
      run = (x) => single(manifest, layers.predict(x));
    } else {
      const graph = await tf.loadGraphModel(handler);
      model = graph;
      const inputName = manifest.input.name ?? graph.inputs[0]?.name;
      const outputName = manifest.output.name ?? graph.outputs[0]?.name;
      if (inputName === undefined || outputName === undefined) {
        throw new ModelError('MODEL_MISMATCH', `graph model '${manifest.id}' has no input or output node`, {
          id: manifest.id,
        });
      }
      run = (x) => single(manifest, graph.execute({ [inputName]: x }, outputName));
    }
  } catch (error) {
    if (error instanceof ModelError) throw error;
    throw new ModelError(
      'MODEL_LOAD_FAILED',
      `tfjs could not load '${manifest.id}' from ${modelJsonPath}: ${describeError(error)}`,
      {
        id: manifest.id,
        path: modelJsonPath,
      },
      { cause: error },
    );
  }

  checkInputShape(manifest, model.inputs[0]?.shape);
  let disposed = false;
  const classifier: Classifier = {
    manifest,
    backend,
    classify: async (images: readonly RgbImage[]): Promise<Prediction[]> => {
      if (disposed) throw new ModelError('DISPOSED', `classifier '${manifest.id}' was disposed`, { id: manifest.id });
      checkImages(manifest, images);
      if (images.length === 0) return [];
      const { width, height, layout } = manifest.input;
      const shape: [number, number, number, number] =
        layout === 'NHWC' ? [images.length, height, width, 3] : [images.length, 3, height, width];
      const input = toInputBuffer(manifest, images);
      let output: tf.Tensor;
      try {
        output = tf.tidy(() => run(tf.tensor4d(input, shape, 'float32')));
      } catch (error) {
        if (error instanceof ModelError) throw error;
        throw new ModelError(
          'INFERENCE_FAILED',
          `tfjs inference failed for '${manifest.id}': ${describeError(error)}`,
          {
            id: manifest.id,
            batch: images.length,
          },
          { cause: error },
        );
      }
      try {
        const values = await output.data();
        return toPredictions(
          manifest,
          values instanceof Float32Array ? values : Float32Array.from(values),
          images.length,
        );
      } finally {
        output.dispose();
      }
    },
    dispose: async () => {
      if (disposed) return;
      disposed = true;
      model.dispose();
    },
  };

  try {
    await warmUp(classifier);
  } catch (error) {
    await classifier.dispose();
    throw error;
  }
  return classifier;
}

function single(manifest: ModelManifest, result: tf.Tensor | tf.Tensor[] | tf.NamedTensorMap): tf.Tensor {
  if (result instanceof tf.Tensor) return result;
  throw new ModelError(
    'MODEL_MISMATCH',
    `model '${manifest.id}' returned several outputs; name one in manifest.output.name`,
    {
      id: manifest.id,
    },
  );
}

/** Compares the model's declared input shape (where known) with the manifest's size and layout. */
function checkInputShape(manifest: ModelManifest, shape: readonly (number | null)[] | undefined): void {
  if (shape === undefined || shape.length !== 4) return;
  const { width, height, layout } = manifest.input;
  const expected = layout === 'NHWC' ? [height, width, 3] : [3, height, width];
  const actual = shape.slice(1);
  if (actual.some((dim, i) => dim !== null && dim > 0 && dim !== expected[i])) {
    throw new ModelError(
      'MODEL_MISMATCH',
      `model '${manifest.id}' takes input [n,${actual.join(',')}], manifest says ${layout} [n,${expected.join(',')}]`,
      {
        id: manifest.id,
        modelShape: shape,
        expected,
      },
    );
  }
}
