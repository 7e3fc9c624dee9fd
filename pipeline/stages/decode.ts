/**
 * Worker side, stage 4: decode and resize with sharp to the model's input size, as packed 8-bit RGB.
 * JPEGs shrink while they load (libvips picks the DCT scale), EXIF orientation is applied, alpha is
 * flattened onto white, and every colour space (grey, CMYK, 16-bit) ends as 8-bit sRGB.
 */
import type { OperatorFunction } from 'rxjs';
import sharp from 'sharp';
import type { ResizeMode, RgbImage } from '../../models/types.js';
import { PipelineError } from '../errors.js';
import { stage } from '../job.js';

export interface DecodeTarget {
  readonly width: number;
  readonly height: number;
  readonly resize: ResizeMode;
}

/** Images above this many pixels are refused before decoding (decompression bombs). */
export const MAX_INPUT_PIXELS = 50_000_000;

export async function decodeImage(bytes: Buffer, target: DecodeTarget): Promise<RgbImage> {
  const { data, info } = await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS, sequentialRead: true, failOn: 'error' })
    .rotate()
    .resize(target.width, target.height, { fit: target.resize === 'cover' ? 'cover' : 'fill' })
    .flatten({ background: '#ffffff' })
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== target.width || info.height !== target.height) {
    throw new Error(`decoder produced ${info.width}x${info.height}x${info.channels}, expected ${target.width}x${target.height}x3`);
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

export function decode(target: DecodeTarget, concurrency: number): OperatorFunction<import('../job.js').Job, import('../job.js').Job> {
  return stage('decode', 'decode', 'UNDECODABLE_IMAGE', concurrency, async (job) => {
    if (!job.bytes) throw new Error('no bytes fetched');
    try {
      return { image: await decodeImage(job.bytes, target), bytes: undefined };
    } catch (err) {
      throw new PipelineError('UNDECODABLE_IMAGE', `${job.request.file} could not be decoded as an image: ${(err as Error).message}`,
        'decode', false, { requestId: job.request.requestId, key: job.request.key }, { cause: err });
    }
  });
}
