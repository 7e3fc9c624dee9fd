/** The benchmark's data: the 250 ImageNet sample photos and their ground truth, read in place. */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { projectRoot } from '../../lib/config.js';

export const SAMPLE_DIR = resolve(projectRoot, '..', 'shared', 'datasets', 'imagenet-sample-250');

export interface Photo {
  readonly file: string;
  readonly path: string;
  readonly classIndex: number;
}

export async function readPhotos(dir = SAMPLE_DIR): Promise<Photo[]> {
  const text = await readFile(join(dir, 'ground-truth.csv'), 'utf8');
  const [, ...lines] = text.trim().split(/\r?\n/);
  return lines.map((line) => {
    const [file, classIndex] = line.split(',');
    return { file: file!, path: join(dir, file!), classIndex: Number(classIndex) };
  });
}
