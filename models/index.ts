import { convertedOnnxModel } from './convert/cache.js';
import { ModelError } from './errors.js';
import { modelRuntime, validateManifest } from './manifest.js';
import { DEFAULT_MODEL_ID, type RegistryOptions, resolveModel } from './registry.js';
import { type FetchModelOptions, fetchModel } from './source.js';
import type { Classifier, ModelManifest } from './types.js';

export { CONVERTER_VERSION, type ConvertedModel, convertedOnnxModel } from './convert/cache.js';
export { type ConversionResult, type ConvertOptions, convertLayersModel } from './convert/layers-to-onnx.js';
export { isModelError, ModelError, type ModelErrorCode, type ModelErrorContext } from './errors.js';
export { loadLabels, type ManifestIssue, modelRuntime, parseS3Url, validateManifest } from './manifest.js';
export { checkImages, shortLabel, softmax, TOP_K, toInputBuffer, toPredictions, topK } from './processing.js';
export {
  BUILTIN_MODEL_IDS,
  builtinManifest,
  builtinRegistry,
  DEFAULT_MODEL_ID,
  DEFAULT_MODELS_DIR,
  IMAGENET_LABELS_FILE,
  isBuiltinModelId,
  publicUrl,
  type RegistryOptions,
  resolveModel,
} from './registry.js';
export { DEFAULT_CACHE_DIR, type FetchModelOptions, fetchModel, type LocalModel } from './source.js';
export type * from './types.js';

export interface LoadClassifierOptions extends RegistryOptions, FetchModelOptions {
  /**
   * Threads for one inference. ONNX Runtime: intra-op threads (default 1). tfjs: the wasm backend
   * is single-threaded under Node whatever this says; tfjs-node manages its own pool.
   */
  readonly threads?: number;
  /** ONNX Runtime models: `cpu` (default) or `cuda`. tfjs models always run on the CPU. */
  readonly device?: 'cpu' | 'cuda';
}

/**
 * Resolves a model (built-in id, location of a known model, manifest file, or a manifest object),
 * makes its files local (downloading into the cache if needed), loads it on its runtime (converting a
 * tfjs layers model to ONNX first when it runs on ONNX Runtime) and warms it up. Runtimes are
 * imported on demand: an ONNX worker never loads tfjs.
 */
export async function loadClassifier(
  manifestOrId: ModelManifest | string = DEFAULT_MODEL_ID,
  options: LoadClassifierOptions = {},
): Promise<Classifier> {
  checkOptions(options);
  const manifest =
    typeof manifestOrId === 'string' ? await resolveModel(manifestOrId, options) : validateManifest(manifestOrId);
  const local = await fetchModel(manifest, options);
  if (modelRuntime(manifest) === 'tfjs') {
    const { loadTfjsClassifier } = await import('./backends/tfjs.js');
    return loadTfjsClassifier(manifest, local.path);
  }
  // A tfjs layers model on ONNX Runtime runs its conversion, made now or found in the cache.
  const onnxPath =
    manifest.format === 'onnx' ? local.path : (await convertedOnnxModel(manifest, local.path, options)).path;
  const { loadOnnxClassifier } = await import('./backends/onnx.js');
  return loadOnnxClassifier(manifest, onnxPath, {
    ...(options.threads === undefined ? {} : { threads: options.threads }),
    ...(options.device === undefined ? {} : { device: options.device }),
  });
}

function checkOptions(options: LoadClassifierOptions): void {
  const fail = (field: string, problem: string, value: unknown): never => {
    throw new ModelError('INVALID_OPTIONS', `loadClassifier option ${field} ${problem}`, { field, value });
  };
  if (typeof options !== 'object' || options === null) fail('(options)', 'must be an object', options);
  const { threads, modelsDir, cacheDir, labelsFile, timeoutMs, source, s3 } = options;
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1))
    fail('threads', 'must be an integer >= 1', threads);
  if (options.device !== undefined && options.device !== 'cpu' && options.device !== 'cuda')
    fail('device', "must be 'cpu' or 'cuda'", options.device);
  for (const [field, value] of [
    ['modelsDir', modelsDir],
    ['cacheDir', cacheDir],
    ['labelsFile', labelsFile],
  ] as const) {
    if (value !== undefined && (typeof value !== 'string' || value === ''))
      fail(field, 'must be a non-empty path', value);
  }
  if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !(timeoutMs > 0)))
    fail('timeoutMs', 'must be a number > 0', timeoutMs);
  if (source !== undefined && source !== 'local' && source !== 'public' && source !== 'auto')
    fail('source', "must be 'local', 'public' or 'auto'", source);
  if (s3 !== undefined && typeof s3?.send !== 'function') fail('s3', 'must be an S3Client', typeof s3);
}
