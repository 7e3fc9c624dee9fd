/**
 * The page in real Chromium (Debian's /usr/bin/chromium through playwright-core) against the real
 * service as `npm start` runs it, with the local autoscaler (no WORKERS, at most 2, back to zero
 * after 3 empty 1 s periods) and real photos. The expected labels are computed here with the same
 * model and decoder, so a label on the page is right only if it came from that photo.
 *
 * `UPDATE_SCREENSHOTS=1 npx ava test/page.test.ts` also writes the README's screenshots to
 * docs/screenshots/ (otherwise they go to a temp folder and are only checked to exist).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { FileChooser, Page } from 'playwright-core';
import { projectRoot } from '../lib/config.js';
import { loadClassifier } from '../models/index.js';
import { decodeImage } from '../pipeline/images.js';
import type { Service } from '../service/service.js';
import { type Browser, ConsoleWatch, launchBrowser } from './helpers/browser.js';
import { readGroundTruth, SAMPLE_DIR } from './helpers/model-fixtures.js';
import { startTestService, tempDataDir, waitFor } from './helpers/service.js';
import { putPhotos } from './helpers/sources.js';

// What the functions run in the page see (this project type-checks for Node, without the DOM's types).
declare const document: any;
declare const window: any;
declare const DataTransfer: any;
declare const ClipboardEvent: any;
declare const DragEvent: any;

const PHOTOS = ['n01440764_tench.JPEG', 'n01514859_hen.JPEG', 'n01532829_house_finch.JPEG'];
/** Sent by drag and drop, by paste and through the keyboard's file picker. */
const MORE = ['n01622779_great_grey_owl.JPEG', 'n01644900_tailed_frog.JPEG', 'n01494475_hammerhead.JPEG'];
const BURST = 40;

let dataDir: string;
let service: Service;
let browser: Browser;
let page: Page;
let watch: ConsoleWatch;
let expected: Map<string, string>;
const requests: string[] = [];
/** File pickers the page opened (listening from the start turns Chromium's interception on in time). */
const choosers: FileChooser[] = [];

test.before(async () => {
  dataDir = await tempDataDir('page');
  const policy = join(dataDir, 'policy.json');
  await writeFile(
    policy,
    JSON.stringify({
      maxCapacity: 2,
      periodSeconds: 1,
      scaleToZero: { enabled: true, emptyPeriods: 3 },
      warmupSeconds: 1,
      scaleOutCooldownSeconds: 1,
      scaleInCooldownSeconds: 2,
    }),
  );
  service = await startTestService(dataDir, {
    WORKERS: '',
    WORKERS_MAX: '2',
    SCALING_POLICY: policy,
    SOURCE_BUCKETS: 'page-photos',
  });
  await putPhotos(service.clients.s3, 'page-photos', 'album/', (await readGroundTruth()).slice(0, 6));
  // The labels the page must show, from the same model and decoder in this process.
  const classifier = await loadClassifier(service.config.model.source, { modelsDir: service.config.model.modelsDir });
  try {
    const names = [...PHOTOS, ...MORE];
    const images = await Promise.all(
      names.map(async (name) => decodeImage(await readFile(join(SAMPLE_DIR, name)), classifier.manifest.input)),
    );
    const predictions = await classifier.classify(images);
    expected = new Map(names.map((name, i) => [name, predictions[i]!.label]));
  } finally {
    await classifier.dispose();
  }
  browser = await launchBrowser();
  page = await browser.context.newPage();
  watch = new ConsoleWatch(page);
  page.on('request', (request) => requests.push(request.url()));
  page.on('filechooser', (chooser) => choosers.push(chooser));
  await page.goto(service.web.url);
  await page.locator('#connection[data-state="live"]').waitFor({ timeout: 10_000 });
});

test.after.always(async () => {
  await browser?.close();
  await service?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const card = (name: string) => page.locator('li.job', { has: page.locator('h3.file', { hasText: name }) });

/** Waits until the card of `name` is settled; returns its state. */
async function settled(name: string): Promise<string> {
  const c = card(name);
  await c.and(page.locator('[data-state="done"], [data-state="failed"]')).waitFor({ timeout: 90_000 });
  return (await c.getAttribute('data-state')) ?? '';
}

const text = async (id: string) => (await page.locator(`#${id}`).textContent())?.trim() ?? '';

test.serial(
  'keyboard only: skip link, then the button opens the file picker; controls have names a screen reader reads',
  async (t) => {
    await page.keyboard.press('Tab');
    t.is(await page.evaluate(() => document.activeElement?.textContent), 'Skip to the upload');
    await page.keyboard.press('Enter');
    await page.keyboard.press('Tab');
    const choose = page.getByRole('button', { name: 'Choose images…' });
    t.true(await choose.evaluate((button) => button === document.activeElement));
    await page.keyboard.press('Enter');
    await waitFor(() => choosers.length > 0, 10_000);
    const chooser = choosers.shift()!;
    t.true(chooser.isMultiple());
    await chooser.setFiles(join(SAMPLE_DIR, MORE[2]!));
    t.is(await settled(MORE[2]!), 'done');
    t.is(await card(MORE[2]!).locator('.status .label').textContent(), expected.get(MORE[2]!) ?? 'no label');
    // Names from labels, captions and aria attributes, as assistive technology gets them.
    t.is(await page.getByLabel('Images to classify').count(), 1);
    t.is(await page.getByRole('list', { name: 'Your images' }).count(), 1);
    t.is(await page.getByRole('img', { name: /^Workers over the last minutes/ }).count(), 1);
    t.is(await page.getByRole('img', { name: /^Queue over the last minutes/ }).count(), 1);
    t.is(await page.getByRole('list', { name: 'Recent scaling decisions, newest first' }).count(), 1);
    t.is(await page.getByRole('button', { name: 'Refresh' }).count(), 1);
    t.is(await page.getByRole('img', { name: `Preview of ${MORE[2]}` }).count(), 1);
    t.is(await page.getByRole('list', { name: 'Top 5 classes' }).count(), 1);
    t.regex((await page.locator('#announce').textContent()) ?? '', new RegExp(`^${MORE[2]}: `));
  },
);

test.serial(
  'three photos chosen at once: each card shows its preview, the right label, the top-5 as bars, the model and the timings',
  async (t) => {
    await page.setInputFiles(
      '#files',
      PHOTOS.map((name) => join(SAMPLE_DIR, name)),
    );
    for (const name of PHOTOS) {
      t.is(await settled(name), 'done', name);
      const c = card(name);
      t.is(await c.locator('.status .label').textContent(), expected.get(name) ?? 'no label', `label of ${name}`);
      t.regex((await c.locator('.status .score').textContent()) ?? '', /^\d+\.\d%$/);
      t.is(await c.locator('ol.top5 li').count(), 5);
      const widths = await c
        .locator('ol.top5 .fill')
        .evaluateAll((bars) => bars.map((b) => (b as any).getBoundingClientRect().width));
      t.true(widths[0]! > widths[4]!, `bars scale with the scores: ${widths.join(', ')}`);
      t.regex(
        (await c.locator('.timings summary').textContent()) ?? '',
        new RegExp(`Model ${service.config.model.source} · \\d+ ms in all`),
      );
      const stages = await c.locator('.timings tbody th').allTextContents();
      for (const stage of ['upload', 's3Put', 'enqueue', 'queueWait', 'decode', 'infer', 'total'])
        t.true(stages.includes(stage), `timing ${stage} of ${name}`);
      t.true(await c.locator('img.preview').evaluate((img: any) => img.naturalWidth > 0), `preview of ${name}`);
    }
  },
);

test.serial('recent results: the three photos with their labels and thumbnails served by the web tier', async (t) => {
  const ids = await Promise.all(PHOTOS.map((name) => card(name).getAttribute('data-job-id')));
  t.true(
    ids.every((id) => id !== null && /^[0-9a-f-]{36}$/.test(id)),
    ids.join(', '),
  );
  for (const [i, id] of ids.entries()) {
    const item = page.locator(`#recent-list li[data-job-id="${id}"]`);
    await item.locator('img.thumb[src^="blob:"]').waitFor({ timeout: 15_000 });
    t.is(await item.locator('.label').textContent(), expected.get(PHOTOS[i]!) ?? 'no label');
    t.is(await item.locator('.file').textContent(), PHOTOS[i] ?? 'no file');
    const size = await item.locator('img.thumb').evaluate(async (img: any) => {
      await img.decode();
      return [img.naturalWidth, img.naturalHeight];
    });
    t.deepEqual(size, [192, 192]);
  }
});

test.serial('a text file named .jpg: the card says in words that it is not an image, with the code', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'eir-page-'));
  const fake = join(dir, 'holiday.jpg');
  await writeFile(fake, 'these are my holiday notes, not a photo\n');
  watch.expect('/api/v1/classify', 415);
  await page.setInputFiles('#files', fake);
  t.is(await settled('holiday.jpg'), 'failed');
  const c = card('holiday.jpg');
  t.is(await c.locator('.error-code').textContent(), 'NOT_AN_IMAGE');
  t.is(await c.locator('.error-words').textContent(), 'This file is not an image.');
  t.regex((await c.locator('.error-message').textContent()) ?? '', /holiday\.jpg is not an image/);
  t.true(await c.locator('[role="img"][aria-label="No preview of holiday.jpg"]').isVisible());
  await rm(dir, { recursive: true, force: true });
});

/** Builds a File in the page from a photo's bytes and hands it over with `how`. */
async function handOver(name: string, how: 'drop' | 'paste'): Promise<void> {
  const base64 = (await readFile(join(SAMPLE_DIR, name))).toString('base64');
  await page.evaluate(
    ({ name, base64, how }) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const data = new DataTransfer();
      data.items.add(new File([bytes], name, { type: 'image/jpeg' }));
      if (how === 'paste') {
        document.body.dispatchEvent(
          new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }),
        );
        return;
      }
      const zone = document.getElementById('drop')!;
      for (const type of ['dragenter', 'dragover', 'drop'])
        zone.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
    },
    { name, base64, how },
  );
}

test.serial('drag and drop, and paste', async (t) => {
  await handOver(MORE[0]!, 'drop');
  await handOver(MORE[1]!, 'paste');
  for (const name of MORE.slice(0, 2)) {
    t.is(await settled(name), 'done', name);
    t.is(await card(name).locator('.status .label').textContent(), expected.get(name) ?? 'no label');
  }
  t.false(
    await page.locator('#drop').evaluate((zone) => zone.classList.contains('over')),
    'the drop zone is no longer highlighted',
  );
});

/** The largest worker count the workers chart draws (from its path: y grows downwards from 0). */
async function chartPeak(): Promise<number> {
  return page.locator('#workers-chart path.running').evaluate((path) => {
    const ys = [...(path.getAttribute('d') ?? '').matchAll(/M[\d.]+,([\d.]+)|V([\d.]+)/g)].map((m) =>
      Number(m[1] ?? m[2]),
    );
    const baseline = 110 - 16;
    const top = 6;
    const labels = [...document.querySelectorAll('#workers-chart text')]
      .map((n) => Number(n.textContent))
      .filter(Number.isFinite);
    const max = Math.max(...labels);
    return Math.round(((baseline - Math.min(...ys)) / (baseline - top)) * max);
  });
}

test.serial(
  'a burst from outside: the live view shows workers rising above 0 and going back to 0, with the decisions and their reasons',
  async (t) => {
    // Back to zero after the uploads above (3 empty periods).
    await page.waitForFunction(
      () =>
        document.getElementById('w-running')?.textContent === '0' &&
        document.getElementById('w-desired')?.textContent === '0',
      null,
      { timeout: 60_000 },
    );
    const eventsBefore = requests.filter((u) => u.endsWith('/api/v1/events')).length;
    const photos = (await readGroundTruth()).slice(0, BURST);
    const burst = Promise.all(
      photos.map(async (photo) => {
        const response = await fetch(`${service.web.url}/api/v1/classify?name=${encodeURIComponent(photo.file)}`, {
          method: 'POST',
          headers: { 'content-type': 'image/jpeg' },
          body: await readFile(photo.path),
        });
        return response.status;
      }),
    );
    await page.waitForFunction(() => Number(document.getElementById('w-running')?.textContent) > 0, null, {
      timeout: 60_000,
    });
    const peakSeen = Number(await text('w-running'));
    t.true(peakSeen > 0);
    t.deepEqual(new Set(await burst), new Set([200]));
    await page.waitForFunction(
      () =>
        document.getElementById('w-running')?.textContent === '0' &&
        document.getElementById('w-desired')?.textContent === '0',
      null,
      { timeout: 60_000 },
    );
    t.true((await chartPeak()) >= 1, 'the chart drew the workers');
    const out = page.locator('#decisions li[data-action="scale-out"]').first();
    const back = page.locator('#decisions li[data-action="scale-in"]').first();
    // The burst's scale-outs, newest first: from zero (0 → 1 or 2), perhaps then 1 → 2.
    const outs = await page.locator('#decisions li[data-action="scale-out"] strong').allTextContents();
    t.regex(outs[0] ?? '', /^[01] → [12]$/);
    t.true(
      outs.some((o) => /^0 → [12]$/.test(o)),
      outs.join(', '),
    );
    t.true(((await out.locator('.reason').textContent()) ?? '').length > 20);
    t.regex((await back.locator('strong').textContent()) ?? '', /→ 0$/);
    t.true(((await back.locator('.reason').textContent()) ?? '').length > 20);
    // Pushed, not polled: the same single event stream all along, and no status polling.
    t.is(requests.filter((u) => u.endsWith('/api/v1/events')).length, eventsBefore);
    t.is(requests.filter((u) => u.includes('/api/v1/status')).length, 0);
    t.is(await page.locator('#connection').getAttribute('data-state'), 'live');
  },
);

test.serial(
  'a batch started from the form: its progress bar fills and it says done, with its results to download',
  async (t) => {
    await page.locator('#batch-source').fill('s3://page-photos/album/');
    await page.getByRole('button', { name: 'Start' }).click();
    await page.locator('#batch-list li[data-state="done"]').first().waitFor({ timeout: 60_000 });
    const bar = page.locator('#batch-list li[data-state="done"] progress').first();
    t.is(await bar.getAttribute('value'), '6');
    t.is(await bar.getAttribute('max'), '6');
    t.regex((await bar.getAttribute('aria-label')) ?? '', /6 of 6 images answered/);
    t.regex(
      (await page.locator('#batch-list li[data-state="done"] .counts').first().textContent()) ?? '',
      /^done: 6 classified, of 6/,
    );
    const results = await page.locator('#batch-list li[data-state="done"] a').first().getAttribute('href');
    t.regex(results ?? '', /^\/api\/v1\/batches\/[0-9a-f-]{36}\/results$/);
    // A bucket the service may not read: the form says so in words.
    watch.expect('/api/v1/batches', 403);
    await page.locator('#batch-source').fill('s3://somebody-elses/');
    await page.getByRole('button', { name: 'Start' }).click();
    const refused = page.locator('#batch-state', { hasText: 'may not read that bucket' });
    await refused.waitFor({ timeout: 10_000 });
    t.regex((await refused.textContent()) ?? '', /\(SOURCE_NOT_ALLOWED\)/);
  },
);

test.serial('screenshots at desktop and phone widths', async (t) => {
  const dir = process.env.UPDATE_SCREENSHOTS
    ? join(projectRoot, 'docs', 'screenshots')
    : await mkdtemp(join(tmpdir(), 'eir-shots-'));
  await mkdir(dir, { recursive: true });
  // The time of day and the job ids differ from run to run; everything else is the real page.
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.getByRole('button', { name: 'Refresh' }).click();
  await page.evaluate(() => document.activeElement?.blur());
  await page.waitForFunction(
    () =>
      [...document.querySelectorAll('#recent-list img.thumb')].filter(
        (img: any) => img.complete && img.naturalWidth > 0,
      ).length >= 12,
    null,
    { timeout: 15_000 },
  );
  const shots = [join(dir, 'desktop.png')];
  await page.screenshot({ path: shots[0]!, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.evaluate(() => window.scrollTo(0, 0));
  shots.push(join(dir, 'phone.png'), join(dir, 'phone-live.png'));
  await page.screenshot({ path: shots[1]! });
  await page.locator('#live').screenshot({ path: shots[2]! });
  await page.setViewportSize({ width: 1280, height: 900 });
  for (const shot of shots) {
    const png = await readFile(shot);
    t.is(png.subarray(1, 4).toString(), 'PNG', basename(shot));
    t.true((await stat(shot)).size > 10_000, basename(shot));
  }
  t.log(`screenshots in ${dir}`);
});

test.serial('the page loads nothing from elsewhere (works offline) and logs no console error', (t) => {
  const origin = new URL(service.web.url).origin;
  const foreign = requests.filter(
    (u) => !u.startsWith(`${origin}/`) && !u.startsWith('blob:') && !u.startsWith('data:'),
  );
  t.deepEqual(foreign, []);
  t.deepEqual(watch.errors, []);
});

test("the page's scripts type-check (JSDoc types against the DOM's, web/public/tsconfig.json)", async (t) => {
  const tsc = join(projectRoot, 'node_modules', '.bin', 'tsc');
  const { stdout } = await promisify(execFile)(tsc, ['-p', join(projectRoot, 'web', 'public', 'tsconfig.json')]).catch(
    (err: { stdout: string }) => err,
  );
  t.is(stdout.trim(), '');
});
