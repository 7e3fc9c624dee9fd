/**
 * The dimensions the web tier reads from an upload's header bytes are the ones libvips reads, for
 * every sample photo and every accepted format and variant; what they cannot read falls back.
 */
import { readFile } from 'node:fs/promises';
import test from 'ava';
import sharp from 'sharp';
import { headerSize, sniffImageType } from '../pipeline/images.js';
import { readGroundTruth } from './helpers/model-fixtures.js';

const libvips = async (bytes: Buffer) => {
  const meta = await sharp(bytes).metadata();
  return { width: meta.width, height: meta.pageHeight ?? meta.height };
};

test("header dimensions equal libvips' for all 250 sample photos", async (t) => {
  for (const photo of await readGroundTruth()) {
    const bytes = await readFile(photo.path);
    t.deepEqual(headerSize(bytes, sniffImageType(bytes)!.mime), await libvips(bytes), photo.file);
  }
});

test("header dimensions equal libvips' for every accepted format and its variants", async (t) => {
  const jpeg = await readFile((await readGroundTruth())[7]!.path);
  const base = sharp(jpeg).resize(301, 197);
  const variants: Record<string, Buffer> = {
    'jpeg baseline': await base.clone().jpeg().toBuffer(),
    'jpeg progressive': await base.clone().jpeg({ progressive: true }).toBuffer(),
    'jpeg exif-rotated': await base.clone().jpeg().withMetadata({ orientation: 6 }).toBuffer(),
    'png rgb': await base.clone().png().toBuffer(),
    'png alpha 16-bit': await base.clone().ensureAlpha(0.5).toColourspace('rgb16').png().toBuffer(),
    gif: await base.clone().gif().toBuffer(),
    'webp lossy': await base.clone().webp().toBuffer(),
    'webp lossless': await base.clone().webp({ lossless: true }).toBuffer(),
    'webp alpha (extended)': await base.clone().ensureAlpha(0.5).webp().toBuffer(),
    'tiff lzw': await base.clone().tiff({ compression: 'lzw' }).toBuffer(),
    'tiff deflate': await base.clone().tiff({ compression: 'deflate' }).toBuffer(),
  };
  for (const [name, bytes] of Object.entries(variants)) {
    const size = headerSize(bytes, sniffImageType(bytes)!.mime);
    t.truthy(size, `${name}: read from the header`);
    t.deepEqual(size, await libvips(bytes), name);
  }
  // Headers that end too soon are not guessed at: the caller asks libvips, which says why.
  t.is(headerSize(jpeg.subarray(0, 20), 'image/jpeg'), undefined);
  t.is(headerSize(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), 'image/png'), undefined);
});
