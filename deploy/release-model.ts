/**
 * The model a release carries, ready to run: no download and no conversion on the instance.
 *
 * The configured model (a registry id, or an https:// copy of a built-in one) is fetched here — from
 * `../shared/models` when it is there, else from its published URL, once, into the packaging cache —
 * and, when it is a TF.js layers model that runs on ONNX Runtime (the default model), converted to
 * ONNX here. The release holds the result as `model/<id>.onnx` beside `model/manifest.json`, a
 * complete manifest (the built-in's preprocessing and labels, format onnx, the file's sha256) that
 * `MODEL=model/manifest.json` loads. Both paths are relative to the release's root, the working
 * directory of every process of the service (systemd's WorkingDirectory, npm's package directory).
 *
 * A model that runs on TF.js ships its files as they are (model.json and its weights), and the
 * release then carries TF.js too (`needsTfjs`); one on ONNX Runtime does not — TF.js is loaded only
 * by the TF.js backend (models/index.ts imports runtimes on demand). An s3:// model is not carried:
 * instances read it from S3 at boot, through the VPC's S3 gateway endpoint like the release itself.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import {
  convertedOnnxModel,
  fetchModel,
  type ModelManifest,
  type ModelRuntime,
  modelRuntime,
  resolveModel,
} from '../models/index.js';
import type { TarEntry } from './tar.js';

/** Where a release keeps its model, relative to its root. */
export const RELEASE_MODEL_DIR = 'model';
export const RELEASE_MODEL_MANIFEST = `${RELEASE_MODEL_DIR}/manifest.json`;

export interface ReleaseModel {
  /** MODEL as configured. */
  readonly source: string;
  readonly id: string;
  readonly runtime: ModelRuntime;
  /** The manifest to set MODEL to, relative to the release root; undefined when the model is not carried (s3://). */
  readonly manifest: string | undefined;
  readonly entries: readonly TarEntry[];
}

export interface ReleaseModelOptions {
  /** Where built-in models are found first (default: the registry's, `../shared/models`). */
  readonly modelsDir?: string;
  /** Downloads and conversions made while packaging. */
  readonly cacheDir: string;
}

/** True for a model source instances read from S3 themselves. */
export const readFromS3 = (source: string) => /^s3:\/\//i.test(source);

export async function releaseModel(source: string, options: ReleaseModelOptions): Promise<ReleaseModel> {
  const registry = { ...(options.modelsDir === undefined ? {} : { modelsDir: options.modelsDir }) };
  const manifest = await resolveModel(source, registry);
  const runtime = modelRuntime(manifest);
  if (readFromS3(source)) return { source, id: manifest.id, runtime, manifest: undefined, entries: [] };

  const local = await fetchModel(manifest, { cacheDir: options.cacheDir });
  if (runtime === 'tfjs') {
    // The files as fetched (model.json first), under model/<id>/.
    const base = local.path.slice(0, local.path.lastIndexOf('/'));
    const entries: TarEntry[] = local.files.map((file) => ({
      path: `${RELEASE_MODEL_DIR}/${manifest.id}/${relative(base, file)}`,
      body: { file },
      executable: false,
    }));
    return carried(source, manifest, runtime, `${RELEASE_MODEL_DIR}/${manifest.id}/model.json`, entries, undefined);
  }
  const onnx =
    manifest.format === 'onnx'
      ? local.path
      : (await convertedOnnxModel(manifest, local.path, { cacheDir: options.cacheDir })).path;
  const body = await readFile(onnx);
  const file = `${RELEASE_MODEL_DIR}/${manifest.id}.onnx`;
  return carried(
    source,
    manifest,
    runtime,
    file,
    [{ path: file, body, executable: false }],
    createHash('sha256').update(body).digest('hex'),
  );
}

function carried(
  source: string,
  manifest: ModelManifest,
  runtime: ModelRuntime,
  location: string,
  files: TarEntry[],
  sha256: string | undefined,
): ReleaseModel {
  const { sha256: _published, location: _where, ...rest } = manifest;
  const baked: ModelManifest = {
    ...rest,
    ...(runtime === 'onnxruntime' ? { format: 'onnx' as const, runtime } : {}),
    location,
    ...(sha256 === undefined ? {} : { sha256 }),
  };
  const body = Buffer.from(`${JSON.stringify(baked, null, 2)}\n`);
  return {
    source,
    id: manifest.id,
    runtime,
    manifest: RELEASE_MODEL_MANIFEST,
    entries: [...files, { path: RELEASE_MODEL_MANIFEST, body, executable: false }],
  };
}
