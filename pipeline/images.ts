/**
 * Images, for both tiers: the web tier checks an upload before anything is stored (`checkImage`),
 * a worker decodes it for the model (`decodeImage`). The type of an upload is decided from its
 * first bytes; the client's content type is not trusted.
 */
import sharp, { type Metadata } from 'sharp';
import { ServiceError } from '../lib/errors.js';
import type { ResizeMode, RgbImage } from '../models/types.js';

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
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
    return { mime: 'image/png', supported: true };
  if (ascii(bytes, 0, 6) === 'GIF87a' || ascii(bytes, 0, 6) === 'GIF89a') return { mime: 'image/gif', supported: true };
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return { mime: 'image/webp', supported: true };
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a]))
    return { mime: 'image/tiff', supported: true };
  if (ascii(bytes, 4, 8) === 'ftyp') {
    const brand = ascii(bytes, 8, 12);
    if (brand === 'avif' || brand === 'avis') return { mime: 'image/avif', supported: false };
    if (/^(heic|heix|hevc|hevx|mif1|msf1)$/.test(brand)) return { mime: 'image/heic', supported: false };
  }
  if (startsWith(bytes, [0x42, 0x4d])) return { mime: 'image/bmp', supported: false };
  const head = ascii(bytes, 0, 512).trimStart().toLowerCase();
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg')))
    return { mime: 'image/svg+xml', supported: false };
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
    throw new ImageError(
      'NOT_AN_IMAGE',
      `${name} is not an image (judged from its bytes); send ${SUPPORTED_TYPES.join(', ')}`,
      { file: name },
    );
  }
  if (!type.supported) {
    throw new ImageError(
      'UNSUPPORTED_IMAGE_TYPE',
      `${name} is ${type.mime}, which is not supported; send ${SUPPORTED_TYPES.join(', ')}`,
      { file: name, detected: type.mime },
    );
  }
  // The dimensions straight from the header bytes; libvips reads the header only when they are not
  // where the format puts them (and for the message when it cannot read it either).
  let size = headerSize(bytes, type.mime);
  if (!size) {
    let meta: Metadata;
    try {
      meta = await sharp(bytes, { limitInputPixels: false }).metadata();
    } catch (err) {
      throw new ImageError(
        'UNDECODABLE_IMAGE',
        `${name} looks like ${type.mime} but its header cannot be read: ${(err as Error).message}`,
        { file: name },
        { cause: err },
      );
    }
    size = { width: meta.width ?? 0, height: meta.pageHeight ?? meta.height ?? 0 };
  }
  const { width, height } = size;
  if (!width || !height)
    throw new ImageError('UNDECODABLE_IMAGE', `${name} has no dimensions in its header`, { file: name });
  if (width * height > MAX_INPUT_PIXELS) {
    throw new ImageError(
      'IMAGE_TOO_LARGE',
      `${name} is ${width}x${height} pixels; the limit is ${MAX_INPUT_PIXELS / 1e6} megapixels`,
      { file: name, width, height },
    );
  }
  return { mime: type.mime, width, height };
}

/**
 * Width and height (of the first frame) read from where each format keeps them — a few bytes,
 * a hundredth of what asking libvips costs — or undefined when they are not found there.
 */
export function headerSize(bytes: Uint8Array, mime: string): { width: number; height: number } | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fits = (offset: number, length: number) => offset >= 0 && offset + length <= bytes.length;
  switch (mime) {
    case 'image/png':
      // The IHDR chunk comes first: width and height at 16 and 20.
      return fits(16, 8) && String.fromCharCode(...bytes.subarray(12, 16)) === 'IHDR'
        ? { width: view.getUint32(16), height: view.getUint32(20) }
        : undefined;
    case 'image/gif':
      // The logical screen: the frame size.
      return fits(6, 4) ? { width: view.getUint16(6, true), height: view.getUint16(8, true) } : undefined;
    case 'image/jpeg': {
      // Markers from the start of the image until a start-of-frame (SOF0..SOF15 but DHT, JPG, DAC).
      let offset = 2;
      while (fits(offset, 4)) {
        if (bytes[offset] !== 0xff) return undefined;
        const marker = bytes[offset + 1]!;
        if (marker === 0xff) {
          offset++;
          continue;
        }
        if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
          offset += 2;
          continue;
        }
        const length = view.getUint16(offset + 2);
        if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
          return fits(offset + 5, 4)
            ? { height: view.getUint16(offset + 5), width: view.getUint16(offset + 7) }
            : undefined;
        }
        if (marker === 0xd9 || marker === 0xda || length < 2) return undefined;
        offset += 2 + length;
      }
      return undefined;
    }
    case 'image/webp': {
      const chunk = String.fromCharCode(...bytes.subarray(12, 16));
      if (chunk === 'VP8 ' && fits(26, 4))
        return { width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff };
      if (chunk === 'VP8L' && fits(21, 4)) {
        const bits = view.getUint32(21, true);
        return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
      }
      if (chunk === 'VP8X' && fits(24, 6)) {
        const u24 = (at: number) => bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16);
        return { width: u24(24) + 1, height: u24(27) + 1 };
      }
      return undefined;
    }
    case 'image/tiff': {
      // The first image file directory: tags 256 (width) and 257 (height), SHORT or LONG.
      const little = bytes[0] === 0x49;
      if (!fits(4, 4)) return undefined;
      const ifd = view.getUint32(4, little);
      if (!fits(ifd, 2)) return undefined;
      const entries = view.getUint16(ifd, little);
      let width: number | undefined;
      let height: number | undefined;
      for (let i = 0; i < entries; i++) {
        const entry = ifd + 2 + i * 12;
        if (!fits(entry, 12)) return undefined;
        const tag = view.getUint16(entry, little);
        if (tag !== 256 && tag !== 257) continue;
        const type = view.getUint16(entry + 2, little);
        const value =
          type === 3 ? view.getUint16(entry + 8, little) : type === 4 ? view.getUint32(entry + 8, little) : undefined;
        if (tag === 256) width = value;
        else height = value;
      }
      return width !== undefined && height !== undefined ? { width, height } : undefined;
    }
    default:
      return undefined;
  }
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
  const { data, info } = await sharp(bytes, {
    limitInputPixels: MAX_INPUT_PIXELS,
    sequentialRead: true,
    failOn: 'error',
  })
    .rotate()
    .resize(target.width, target.height, { fit: target.resize === 'cover' ? 'cover' : 'fill' })
    .flatten({ background: '#ffffff' })
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== target.width || info.height !== target.height) {
    throw new Error(
      `decoder produced ${info.width}x${info.height}x${info.channels}, expected ${target.width}x${target.height}x3`,
    );
  }
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    width: info.width,
    height: info.height,
  };
}
