/** Real photos and models from ../shared for the models/ tests (data is read in place, never copied). */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { ModelManifest, RgbImage } from '../../models/index.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
export const SHARED_MODELS_DIR = path.resolve(projectRoot, '../shared/models');
export const SAMPLE_DIR = path.resolve(projectRoot, '../shared/datasets/imagenet-sample-250');

export interface GroundTruth {
  readonly file: string;
  /** Absolute path of the photo. */
  readonly path: string;
  readonly classIndex: number;
  readonly wnid: string;
  readonly label: string;
}

/** Parses `ground-truth.csv` (file,class_index,wnid,label; labels may be quoted). */
export async function readGroundTruth(): Promise<GroundTruth[]> {
  const text = await readFile(path.join(SAMPLE_DIR, 'ground-truth.csv'), 'utf8');
  const [header, ...lines] = text.trim().split(/\r?\n/);
  if (header !== 'file,class_index,wnid,label') throw new Error(`unexpected ground-truth header: ${header}`);
  return lines.map((line) => {
    const match = /^([^,]+),(\d+),([^,]+),(?:"(.*)"|(.*))$/.exec(line);
    if (match === null) throw new Error(`unparsable ground-truth line: ${line}`);
    const [, file, index, wnid, quoted, plain] = match;
    return {
      file: file!,
      path: path.join(SAMPLE_DIR, file!),
      classIndex: Number(index),
      wnid: wnid!,
      label: (quoted ?? plain)!.replace(/""/g, '"'),
    };
  });
}

/** Decodes a photo the way the pipeline does: resized per the manifest (`fill` stretches, `cover` center-crops). */
export async function decodeForModel(file: string, manifest: ModelManifest): Promise<RgbImage> {
  const { width, height, resize } = manifest.input;
  const data = await sharp(file)
    .resize(width, height, { fit: resize === 'cover' ? 'cover' : 'fill' })
    .removeAlpha()
    .toColourspace('srgb') // a few ImageNet photos are greyscale
    .raw()
    .toBuffer();
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height };
}
