/**
 * The ONNX file for a `tfjs-layers` model that runs on ONNX Runtime: converted once, kept in the
 * model cache (`<cacheDir>/converted/<id>-<key>.onnx`) and reused by every later load. The key is a
 * sha256 of the converter version, the input layout, model.json and every weight file, so a changed
 * model is converted again (and the file of its previous version removed).
 */
import { createHash } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_CACHE_DIR, readTfjsModel, writeAtomic } from '../source.js';
import type { ModelManifest } from '../types.js';
import { type ConversionResult, convertLayersModel } from './layers-to-onnx.js';

/** Bump when the converter's output changes: every cached conversion is then redone. */
export const CONVERTER_VERSION = '1';

export interface ConvertedModel {
  /** The `.onnx` file. */
  readonly path: string;
  /** `converted`: written by this call; `cache`: an earlier conversion of the same files. */
  readonly origin: 'converted' | 'cache';
  /** What was converted (only for `converted`). */
  readonly conversion?: Omit<ConversionResult, 'onnx'>;
}

export async function convertedOnnxModel(
  manifest: ModelManifest,
  modelJsonPath: string,
  options: { readonly cacheDir?: string } = {},
): Promise<ConvertedModel> {
  const { modelJson, weightPaths, weights } = await readTfjsModel(modelJsonPath);
  const hash = createHash('sha256').update(
    `${CONVERTER_VERSION}\0${manifest.input.layout}\0${JSON.stringify(modelJson)}`,
  );
  for (const [i, p] of weightPaths.entries()) hash.update(`\0${p}\0${weights[i]!.byteLength}\0`).update(weights[i]!);
  const key = hash.digest('hex');

  const dir = path.join(path.resolve(options.cacheDir ?? DEFAULT_CACHE_DIR), 'converted');
  const stem = manifest.id.replace(/[^\w.-]+/g, '_');
  const file = path.join(dir, `${stem}-${key.slice(0, 16)}.onnx`);
  if (
    await stat(file).then(
      (s) => s.isFile() && s.size > 0,
      () => false,
    )
  )
    return { path: file, origin: 'cache' };

  const { onnx, ...conversion } = convertLayersModel(modelJson, weights, {
    inputLayout: manifest.input.layout,
    source: modelJsonPath,
    producerVersion: CONVERTER_VERSION,
    metadata: { source_sha256: key, model_id: manifest.id },
  });
  await writeAtomic(file, onnx);
  await removeOtherVersions(dir, stem, file);
  return { path: file, origin: 'converted', conversion };
}

/** Conversions of earlier versions of the same model id; best effort (another process may be doing the same). */
async function removeOtherVersions(dir: string, stem: string, keep: string): Promise<void> {
  const pattern = /^(.+)-[0-9a-f]{16}\.onnx$/;
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(
    names
      .filter((name) => pattern.exec(name)?.[1] === stem && path.join(dir, name) !== keep)
      .map((name) => rm(path.join(dir, name), { force: true }).catch(() => undefined)),
  );
}
