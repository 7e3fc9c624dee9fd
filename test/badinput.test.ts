/**
 * The bad-input corpus, generated here from real photos: every upload is either classified
 * correctly (a real image in a format we accept, however odd) or refused with a 4xx JSON error
 * that names the problem — and the service keeps serving throughout.
 */
import { readFile } from 'node:fs/promises';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import sharp from 'sharp';
import type { Service } from '../service/service.js';
import { type GroundTruth, readGroundTruth } from './helpers/model-fixtures.js';
import { shortLabel, startTestService, tempDataDir } from './helpers/service.js';

let service: Service;
let photo: GroundTruth;
let jpeg: Buffer;

test.before(async () => {
  // A photo the default model gets right with a clear margin, so format conversions keep the label.
  photo = (await readGroundTruth()).find((p) => p.file === 'n01440764_tench.JPEG')!;
  jpeg = await readFile(photo.path);
  service = await startTestService(await tempDataDir('badinput'), {
    WORKERS: '1',
    MAX_UPLOAD_BYTES: String(2 * 1024 * 1024),
    MAX_FILES: '4',
  });
});

test.after.always(async () => {
  await service?.stop();
});

interface Upload {
  readonly field?: string;
  readonly name: string;
  readonly bytes: Buffer;
}

async function send(path: string, uploads: Upload[], init: RequestInit = {}) {
  const form = new FormData();
  for (const u of uploads) form.append(u.field ?? 'myfile', new Blob([u.bytes]), u.name);
  const response = await fetch(`${service.web.url}${path}`, { method: 'POST', body: form, ...init });
  return { status: response.status, type: response.headers.get('content-type') ?? '', text: await response.text() };
}

const label = () => shortLabel(photo.label);

test('real images in accepted formats are classified, whatever their encoding', async (t) => {
  const rgba = await sharp(jpeg).ensureAlpha(1).png().toBuffer();
  const cases: Record<string, Buffer> = {
    'png-alpha.png': rgba,
    'png-16bit.png': await sharp(jpeg).toColourspace('rgb16').png().toBuffer(),
    'grey.jpg': await sharp(jpeg).greyscale().jpeg().toBuffer(),
    'cmyk.jpg': await sharp(jpeg).toColourspace('cmyk').jpeg().toBuffer(),
    // Pixels stored turned 90° anticlockwise, with the EXIF orientation (6) that turns them back.
    'exif-rotated.jpg': await sharp(await sharp(jpeg).rotate(270).toBuffer())
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer(),
    'animated.gif': await sharp(
      Buffer.concat([
        await sharp(jpeg).resize(200, 150).raw().toBuffer(),
        await sharp(jpeg).resize(200, 150).negate().raw().toBuffer(),
      ]),
      { raw: { width: 200, height: 300, channels: 3, pageHeight: 150 } as never },
    )
      .gif({ loop: 0 })
      .toBuffer(),
    'photo.webp': await sharp(jpeg).webp({ lossless: true }).toBuffer(),
    'photo.tiff': await sharp(jpeg).tiff({ compression: 'lzw' }).toBuffer(),
    'claims-to-be.png': jpeg, // content type decided from the bytes, not the name
  };
  for (const [name, bytes] of Object.entries(cases)) {
    const r = await send('/', [{ name, bytes }]);
    t.is(r.status, 200, `${name}: ${r.text}`);
    const stemName = name.replace(/\.[^.]+$/, '');
    // Lossless conversions must give the original's label; colour changes and GIF's palette may move it.
    if (['animated.gif', 'grey.jpg', 'cmyk.jpg'].includes(name))
      t.regex(r.text, new RegExp(`^${stemName},[^,]+$`), name);
    else t.is(r.text, `${stemName},${label()}`, name);
  }
});

test('every kind of bad upload gets a 4xx JSON error naming the problem', async (t) => {
  const png = await sharp(jpeg).png().toBuffer();
  const bomb = await sharp({ create: { width: 12_000, height: 12_000, channels: 3, background: '#fff' } })
    .png({ compressionLevel: 9 })
    .toBuffer();
  const heic = Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypheic'), Buffer.alloc(64)]);
  const cases: { what: string; path?: string; uploads?: Upload[]; init?: RequestInit; status: number; code: string }[] =
    [
      { what: 'zero-byte file', uploads: [{ name: 'a.jpg', bytes: Buffer.alloc(0) }], status: 400, code: 'EMPTY_FILE' },
      {
        what: 'missing field',
        uploads: [{ field: 'photo', name: 'a.jpg', bytes: jpeg }],
        status: 400,
        code: 'NO_FILE',
      },
      {
        what: 'truncated JPEG',
        uploads: [{ name: 'cut.jpg', bytes: jpeg.subarray(0, 3000) }],
        status: 422,
        code: 'UNDECODABLE_IMAGE',
      },
      {
        what: 'text named .jpg',
        uploads: [{ name: 'notes.jpg', bytes: Buffer.from('just some text\n'.repeat(20)) }],
        status: 415,
        code: 'NOT_AN_IMAGE',
      },
      {
        what: 'HTML named .jpg',
        uploads: [{ name: 'page.jpg', bytes: Buffer.from('<!doctype html><html><img src=x onerror=alert(1)></html>') }],
        status: 415,
        code: 'NOT_AN_IMAGE',
      },
      {
        what: 'SVG referencing a URL',
        uploads: [
          {
            name: 'x.svg',
            bytes: Buffer.from(
              '<svg xmlns="http://www.w3.org/2000/svg"><image href="http://127.0.0.1:9/x.png"/></svg>',
            ),
          },
        ],
        status: 415,
        code: 'UNSUPPORTED_IMAGE_TYPE',
      },
      { what: 'HEIC', uploads: [{ name: 'x.heic', bytes: heic }], status: 415, code: 'UNSUPPORTED_IMAGE_TYPE' },
      {
        what: 'decompression bomb',
        uploads: [{ name: 'bomb.png', bytes: bomb }],
        status: 422,
        code: 'IMAGE_TOO_LARGE',
      },
      {
        what: 'over the size limit',
        uploads: [{ name: 'big.png', bytes: Buffer.concat([png, Buffer.alloc(2 * 1024 * 1024)]) }],
        status: 413,
        code: 'TOO_LARGE',
      },
      {
        what: 'too many files',
        path: '/api/v1/classify',
        uploads: Array.from({ length: 6 }, (_, i) => ({ field: 'f', name: `${i}.jpg`, bytes: jpeg })),
        status: 413,
        code: 'TOO_MANY_FILES',
      },
      {
        // JSON names objects by reference; anything else in it is named back.
        what: 'a JSON body that names no source',
        path: '/api/v1/classify',
        init: { body: '{"image":"x"}', headers: { 'content-type': 'application/json' } },
        status: 400,
        code: 'BAD_REQUEST',
      },
      {
        what: 'a JSON body that is not JSON',
        path: '/api/v1/classify',
        init: { body: '{"source": ', headers: { 'content-type': 'application/json' } },
        status: 400,
        code: 'BAD_REQUEST',
      },
      { what: 'empty body', init: { body: '' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    ];
  for (const c of cases) {
    const r = c.uploads
      ? await send(c.path ?? '/', c.uploads, c.init)
      : await fetch(`${service.web.url}${c.path ?? '/'}`, { method: 'POST', ...c.init }).then(async (res) => ({
          status: res.status,
          type: res.headers.get('content-type') ?? '',
          text: await res.text(),
        }));
    t.is(r.status, c.status, `${c.what}: ${r.text}`);
    t.regex(r.type, /application\/json/, c.what);
    const body = JSON.parse(r.text) as { error: { code: string; message: string } };
    t.is(body.error.code, c.code, `${c.what}: ${body.error.message}`);
  }
});

/** The input keys stored for a request (its `<id>/` prefix in the input bucket). */
async function inputKeysOf(id: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of service.store.keys('input', `${id}/`)) keys.push(key);
  return keys;
}

test('hostile file names are never used as paths, and come back as the client sent them', async (t) => {
  // sent → the name the answer carries (the last path segment, untouched) and the safe stored name
  const cases: [sent: string, file: string, stored: RegExp][] = [
    ['../../../etc/passwd.jpg', 'passwd.jpg', /^passwd\.jpg$/],
    ['/absolute/path/x.jpg', 'x.jpg', /^x\.jpg$/],
    ['C:\\windows\\win.jpg', 'win.jpg', /^win\.jpg$/],
    ['фото-日本.jpg', 'фото-日本.jpg', /^[A-Za-z0-9._-]+$/],
    ['.hidden.jpg', '.hidden.jpg', /^hidden\.jpg$/],
    ['...', '...', /^upload$/],
    [`${'long'.repeat(60)}.jpg`, `${'long'.repeat(60)}.jpg`, /^(long){24}l{0,1}.{0,4}\.jpg$/],
  ];
  for (const [sent, file, stored] of cases) {
    const r = await send('/api/v1/classify', [{ field: 'f', name: sent, bytes: jpeg }]);
    t.is(r.status, 200, `${JSON.stringify(sent)}: ${r.text}`);
    const result = JSON.parse(r.text).results[0];
    t.is(result.file, file, JSON.stringify(sent));
    t.is(result.label, label());
    const keys = await inputKeysOf(result.id);
    t.is(keys.length, 1);
    const storedName = keys[0]!.slice(result.id.length + 1);
    t.regex(storedName, /^[A-Za-z0-9-][A-Za-z0-9._-]{0,99}$/, JSON.stringify(sent));
    t.regex(storedName, stored, JSON.stringify(sent));
  }
});

test('names with control characters, or longer than file systems allow, are refused with 400 BAD_FILE_NAME', async (t) => {
  for (const name of [
    'nul\u0000byte.jpg',
    'tab\there.jpg',
    'bell\u0007.jpg',
    'del\u007f.jpg',
    'c1\u0085.jpg',
    `${'long'.repeat(70)}.jpg`,
  ]) {
    for (const path of ['/', '/api/v1/classify']) {
      const r = await send(path, [{ name, bytes: jpeg }]);
      t.is(r.status, 400, `${JSON.stringify(name)} on ${path}: ${r.text}`);
      const body = JSON.parse(r.text) as { error: { code: string; message: string } };
      t.is(body.error.code, 'BAD_FILE_NAME');
      t.regex(body.error.message, /control character U\+00[0-9A-F]{2}|bytes long; the limit is 255/);
    }
  }
});

test("classic answers and outputs carry the client's own file name: apostrophes, spaces, non-ASCII", async (t) => {
  const names = [
    "carpenter's_kit.JPEG",
    'my holiday photo.jpg',
    'naïve café.jpeg',
    '日本語の写真.png',
    'émoji 😀 (1).JPG',
    'no-extension',
    'archive.tar.gz',
    '100% real, 50% off.jpg',
  ];
  for (const name of names) {
    const stemName = name.lastIndexOf('.') > 0 ? name.slice(0, name.lastIndexOf('.')) : name;
    const r = await send('/', [{ name, bytes: jpeg }]);
    t.is(r.status, 200, `${name}: ${r.text}`);
    t.is(r.text, `${stemName},${label()}`, name);
    const output = await service.clients.s3.send(
      new GetObjectCommand({ Bucket: service.config.names.outputBucket, Key: stemName }),
    );
    t.is(await output.Body!.transformToString(), `${stemName},${label()}`, `output object ${stemName}`);
  }
});

test('after all of that, the service still serves', async (t) => {
  const r = await send('/', [{ name: photo.file, bytes: jpeg }]);
  t.is(r.status, 200);
  t.is(r.text, `${photo.file.replace('.JPEG', '')},${label()}`);
  t.is((await fetch(`${service.web.url}/readyz`)).status, 200);
});
