import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readJsonFile } from '../lib/json-file.js';
import { ModelError } from './errors.js';
import { loadLabels, validateManifest } from './manifest.js';
import type { ModelManifest } from './types.js';

/** The model `MODEL` defaults to (chosen in lib/config.ts; the registry knows it, a test checks). */
export { DEFAULT_MODEL_ID } from '../lib/config.js';

/** `../shared/models` relative to the project root (this file is `<root>/models/registry.ts`). */
export const DEFAULT_MODELS_DIR = fileURLToPath(new URL('../../shared/models', import.meta.url));

export const IMAGENET_LABELS_FILE = 'imagenet-labels.json';

type BuiltinSpec = Omit<ModelManifest, 'id' | 'location' | 'labels'> & {
  /** File inside `<modelsDir>/<dir>/`. */
  readonly file: string;
  /** Folder inside `modelsDir`; default the id. Models that run another model's files name its folder. */
  readonly dir?: string;
  /** Where the same model is published for users outside this repository. */
  readonly publicUrl: string;
};

const V1_LAYERS_INPUT = {
  width: 224,
  height: 224,
  layout: 'NHWC',
  resize: 'fill',
  // x / 127.5 - 1
  normalization: { scale: 127.5, mean: [1, 1, 1], std: [1, 1, 1] },
} as const;

/** The TF.js team's MobileNet v1 layers models (Keras 2.1.4 topologies), one per width. */
const v1Layers = (width: '0.25' | '0.75'): BuiltinSpec => ({
  format: 'tfjs-layers',
  file: 'model.json',
  publicUrl: `https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_${width}_224/model.json`,
  input: V1_LAYERS_INPUT,
  output: { kind: 'probabilities', offset: 0 },
});

/**
 * The same files and preprocessing, converted to ONNX when loaded (cached in the model cache) and run
 * NCHW on ONNX Runtime: the same predictions as on tfjs, several times faster (docs/benchmarks.md › Models).
 */
const v1OnOnnxRuntime = (width: '0.25' | '0.75'): BuiltinSpec => ({
  ...v1Layers(width),
  runtime: 'onnxruntime',
  dir: `mobilenet-v1-${width}-224-tfjs`,
  input: { ...V1_LAYERS_INPUT, layout: 'NCHW' },
});

const BUILTINS: Readonly<Record<string, BuiltinSpec>> = {
  'mobilenet-v1-0.75-224-tfjs': v1Layers('0.75'),
  'mobilenet-v1-0.25-224-tfjs': v1Layers('0.25'),
  'mobilenet-v1-0.75-224-onnx': v1OnOnnxRuntime('0.75'),
  'mobilenet-v1-0.25-224-onnx': v1OnOnnxRuntime('0.25'),
  'mobilenet-v1-0.25-224-tfjs-graph': {
    format: 'tfjs-graph',
    file: 'model.json',
    // TF-Hub serves tfjs files under the module handle with this query (the one tfjs' `fromTFHub` adds).
    publicUrl: 'https://tfhub.dev/google/imagenet/mobilenet_v1_025_224/classification/1/model.json?tfjs-format=file',
    input: {
      width: 224,
      height: 224,
      layout: 'NHWC',
      name: 'images',
      resize: 'fill',
      // x / 255: the graph rescales to [-1, 1] itself.
      normalization: { scale: 255, mean: [0, 0, 0], std: [1, 1, 1] },
    },
    output: { name: 'module_apply_default/MobilenetV1/Logits/SpatialSqueeze', kind: 'logits', offset: 1 },
  },
  'mobilenet-v2-int8-onnx': {
    format: 'onnx',
    file: 'mobilenetv2-12-int8.onnx',
    publicUrl:
      'https://github.com/onnx/models/raw/main/validated/vision/classification/mobilenet/model/mobilenetv2-12-int8.onnx',
    sha256: 'cc028fe6cae7bc11a4ff53cfc9b79c920e8be65ce33a904ec3e2a8f66d77f95f',
    input: {
      width: 224,
      height: 224,
      layout: 'NCHW',
      name: 'input',
      resize: 'cover',
      normalization: { scale: 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    },
    output: { name: 'output', kind: 'logits', offset: 0 },
  },
};

export const BUILTIN_MODEL_IDS: readonly string[] = Object.freeze(Object.keys(BUILTINS));

export interface RegistryOptions {
  /** Directory holding `<id>/...` and `imagenet-labels.json`. Default `DEFAULT_MODELS_DIR`. */
  readonly modelsDir?: string;
  /** Labels file; default `<modelsDir>/imagenet-labels.json`, else the copy shipped in `models/`. */
  readonly labelsFile?: string;
  /**
   * `local`: `location` is the file under `modelsDir`. `public`: `location` is the model's public
   * URL, so it is downloaded (and cached) by `fetchModel`. `auto` (default): local when the file
   * is there, public otherwise — a fresh clone without `../shared` downloads its model once.
   */
  readonly source?: 'local' | 'public' | 'auto';
}

/** The 1000 ILSVRC-2012 class names in index order, shipped with the code (24 KB, public). */
export const BUNDLED_LABELS_FILE = fileURLToPath(new URL(`./${IMAGENET_LABELS_FILE}`, import.meta.url));

const exists = (file: string) =>
  stat(file).then(
    () => true,
    () => false,
  );

export function isBuiltinModelId(id: string): boolean {
  return Object.hasOwn(BUILTINS, id);
}

function builtinSpec(id: string): BuiltinSpec {
  const spec = BUILTINS[id];
  if (spec === undefined || !Object.hasOwn(BUILTINS, id)) {
    throw new ModelError('UNKNOWN_MODEL', `unknown model id '${id}' (known: ${BUILTIN_MODEL_IDS.join(', ')})`, {
      id,
      known: BUILTIN_MODEL_IDS,
    });
  }
  return spec;
}

/** The public download URL of a built-in model. */
export function publicUrl(id: string): string {
  return builtinSpec(id).publicUrl;
}

/** Manifest of one built-in model; `location` per `options.source`. */
export async function builtinManifest(id: string, options: RegistryOptions = {}): Promise<ModelManifest> {
  const spec = builtinSpec(id);
  const modelsDir = path.resolve(options.modelsDir ?? DEFAULT_MODELS_DIR);
  const sharedLabels = path.join(modelsDir, IMAGENET_LABELS_FILE);
  const labels = await loadLabels(
    options.labelsFile ?? ((await exists(sharedLabels)) ? sharedLabels : BUNDLED_LABELS_FILE),
  );
  const { file, dir, publicUrl: url, ...rest } = spec;
  const local = path.join(modelsDir, dir ?? id, file);
  const source = options.source ?? 'auto';
  const location = source === 'public' || (source === 'auto' && !(await exists(local))) ? url : local;
  return validateManifest({ ...rest, id, location, labels });
}

/** id → manifest for every built-in model. */
export async function builtinRegistry(options: RegistryOptions = {}): Promise<ReadonlyMap<string, ModelManifest>> {
  const entries = await Promise.all(
    BUILTIN_MODEL_IDS.map(async (id) => [id, await builtinManifest(id, options)] as const),
  );
  return new Map(entries);
}

/**
 * Turns what a user configures (`MODEL=...`) into a manifest:
 * - a built-in id, e.g. `mobilenet-v2-int8-onnx`;
 * - the location of a copy of a built-in model (path, `http(s)://` or `s3://` URL), recognised by
 *   its public URL, by a path segment equal to its id, or by the ONNX file name; the built-in's
 *   preprocessing is used with that location;
 * - a local `*.json` file holding a complete manifest (for models this registry does not know).
 */
export async function resolveModel(idOrLocation: string, options: RegistryOptions = {}): Promise<ModelManifest> {
  if (typeof idOrLocation !== 'string' || idOrLocation.trim() === '') {
    throw new ModelError('INVALID_OPTIONS', 'model id or location must be a non-empty string', { idOrLocation });
  }
  if (isBuiltinModelId(idOrLocation)) return builtinManifest(idOrLocation, options);

  const known = matchBuiltin(idOrLocation);
  if (known !== undefined) {
    const manifest = await builtinManifest(known, options);
    const sameFile = idOrLocation === publicUrl(known) || basename(idOrLocation) === builtinSpec(known).file;
    const { sha256, ...rest } = manifest;
    // The sha256 belongs to the published file; keep it only when the location names that file.
    return validateManifest({
      ...rest,
      ...(sameFile && sha256 !== undefined ? { sha256 } : {}),
      location: idOrLocation,
    });
  }

  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(idOrLocation) && idOrLocation.endsWith('.json')) {
    const manifestFile = await readManifestFile(idOrLocation);
    if (manifestFile !== undefined) return manifestFile;
  }

  throw new ModelError(
    'UNKNOWN_MODEL',
    `'${idOrLocation}' is neither a built-in model id (${BUILTIN_MODEL_IDS.join(', ')}), the location of one, nor a manifest file`,
    { idOrLocation, known: BUILTIN_MODEL_IDS },
  );
}

function basename(location: string): string {
  const withoutQuery = location.replace(/[?#].*$/, '');
  return withoutQuery.slice(withoutQuery.lastIndexOf('/') + 1);
}

function matchBuiltin(location: string): string | undefined {
  const segments = location.replace(/[?#].*$/, '').split(/[/\\]/);
  return BUILTIN_MODEL_IDS.find((id) => {
    const spec = builtinSpec(id);
    return (
      location === spec.publicUrl ||
      segments.includes(id) ||
      (spec.format === 'onnx' && basename(location) === spec.file)
    );
  });
}

/** A JSON file that is a manifest (has `format` and `input`), or undefined when it is something else (e.g. a tfjs model.json). */
async function readManifestFile(file: string): Promise<ModelManifest | undefined> {
  if (
    !(await stat(file).then(
      (s) => s.isFile(),
      () => false,
    ))
  )
    return undefined;
  const parsed = await readJsonFile(file, {
    what: 'manifest file',
    missing: 'undefined',
    fail: (message, cause) => new ModelError('INVALID_MANIFEST', message, { file }, { cause }),
  });
  if (typeof parsed !== 'object' || parsed === null || !('format' in parsed) || !('input' in parsed)) return undefined;
  return validateManifest(parsed);
}
