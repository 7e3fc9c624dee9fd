/**
 * Images, for both tiers: the web tier checks an upload before anything is stored (`checkImage`),
 * a worker decodes it for the model (`decodeImage`). The type of an upload is decided from its
 * first bytes; the client's content type is not trusted.
 */
import sharp, { type Metadata } from 'sharp';
import type { ResizeMode, RgbImage } from '../models/types.js';
import { ServiceError } from '../models/service-error.js';

export interface SniffedType {
  readonly mime: string;
  /** Whether the decoder accepts it. */
  readonly supported: boolean;
}

const startsWith = (bytes: Uint8Array, signature: readonly number[], offset = 0) =>
  bytes.length >= offset + signature.length && signature.every((b, i) => bytes[offset + i] === b);
const ascii = (bytes: Uint8Array, from: number, to: number) => Buffer.from(bytes.subarray(from, to)).toString('latin1');

export function sniffImageType(bytes: Uint8Array): SniffedType | undefined {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return { mime: 'image/jpeg', supported: true };
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { mime: 'image/png', supported: true };
  if (ascii(bytes, 0, 6) === 'GIF87a' || ascii(bytes, 0, 6) === 'GIF89a') return { mime: 'image/gif', supported: true };
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return { mime: 'image/webp', supported: true };
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return { mime: 'image/tiff', supported: true };
  if (ascii(bytes, 4, 8) === 'ftyp') {
    const brand = ascii(bytes, 8, 12);
    if (brand === 'avif' || brand === 'avis') return { mime: 'image/avif', supported: false };
    if (/^(heic|heix|hevc|hevx|mif1|msf1)$/.test(brand)) return { mime: 'image/heic', supported: false };
  }
  if (startsWith(bytes, [0x42, 0x4d])) return { mime: 'image/bmp', supported: false };
  const head = ascii(bytes, 0, 512).trimStart().toLowerCase();
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'))) return { mime: 'image/svg+xml', supported: false };
  return undefined;
}

export const SUPPORTED_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/tiff'] as const;

/** Images above this many pixels are refused before decoding (decompression bombs). */
export const MAX_INPUT_PIXELS = 50_000_000;

export type ImageErrorCode = 'NOT_AN_IMAGE' | 'UNSUPPORTED_IMAGE_TYPE' | 'UNDECODABLE_IMAGE' | 'IMAGE_TOO_LARGE';

export class ImageError extends ServiceError<ImageErrorCode> {
  override readonly name = 'ImageError';
}

export interface CheckedImage {
  readonly mime: string;
  readonly width: number;
  readonly height: number;
}

/**
 * What both tiers check before anything is decoded: the type from the bytes (not the client's
 * claim), a type we decode, a header that names dimensions, and no more than MAX_INPUT_PIXELS
 * (a decompression bomb is refused from its header). `name` only words the messages.
 */
export async function checkImage(bytes: Uint8Array, name: string): Promise<CheckedImage> {
  const type = sniffImageType(bytes);
  if (!type) {
    throw new ImageError('NOT_AN_IMAGE', `${name} is not an image (judged from its bytes); send ${SUPPORTED_TYPES.join(', ')}`, { file: name });
  }
  if (!type.supported) {
    throw new ImageError('UNSUPPORTED_IMAGE_TYPE', `${name} is ${type.mime}, which is not supported; send ${SUPPORTED_TYPES.join(', ')}`, { file: name, detected: type.mime });
  }
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new ImageError('UNDECODABLE_IMAGE', `${name} looks like ${type.mime} but its header cannot be read: ${(err as Error).message}`, { file: name }, { cause: err });
  }
  const height = meta.pageHeight ?? meta.height;
  if (!meta.width || !height) throw new ImageError('UNDECODABLE_IMAGE', `${name} has no dimensions in its header`, { file: name });
  if (meta.width * height > MAX_INPUT_PIXELS) {
    throw new ImageError('IMAGE_TOO_LARGE', `${name} is ${meta.width}x${height} pixels; the limit is ${MAX_INPUT_PIXELS / 1e6} megapixels`, { file: name, width: meta.width, height });
  }
  return { mime: type.mime, width: meta.width, height };
}

/**
 * The version of `decodeImage`'s preprocessing (orientation, resize, flattening, colour space). The
 * result cache keys answers by it with the model: change it whenever `decodeImage` changes what the
 * model sees, and no earlier answer is served again.
 */
export const DECODE_VERSION = 'sharp/rotate-resize-flatten-srgb/1';

export interface DecodeTarget {
  readonly width: number;
  readonly height: number;
  readonly resize: ResizeMode;
}

/**
 * Decodes and resizes with sharp to the model's input size, as packed 8-bit RGB. JPEGs shrink while
 * they load (libvips picks the DCT scale), EXIF orientation is applied, alpha is flattened onto
 * white, and every colour space (grey, CMYK, 16-bit) ends as 8-bit sRGB.
 */
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
