// @ts-check
/**
 * The images this tab sent: one card each, with a preview, then the result as it arrives (label,
 * score, top-5 bars, model, timings per stage) or the error in words with its code. Each image is
 * its own request, a few at a time, so each answer shows as soon as it exists; a `202` is followed
 * at `location` with a growing delay (0.5 s, ×1.6, at most 8 s).
 */
import { ApiError, apiFetch, readJson, sleep } from './api.js';
import { errorWords } from './words.js';

const CONCURRENT_UPLOADS = 3;
const STAGES = [
  'upload',
  'cacheLookup',
  's3Put',
  'enqueue',
  'queueWait',
  's3Get',
  'decode',
  'infer',
  'persist',
  'respond',
  'total',
];

/**
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string)[]} [children]
 */
export function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

const percent = (/** @type {number} */ score) => `${(score * 100).toFixed(1)}%`;
const ms = (/** @type {number} */ value) => (value >= 100 ? `${Math.round(value)} ms` : `${value.toFixed(1)} ms`);

export class Jobs {
  /**
   * @param {HTMLOListElement} list
   * @param {HTMLElement} announce  a polite live region
   * @param {() => void} onSettled  called when an image is done or failed
   */
  constructor(list, announce, onSettled) {
    this.list = list;
    this.announce = announce;
    this.onSettled = onSettled;
    /** @type {(() => Promise<void>)[]} */
    this.waiting = [];
    this.active = 0;
  }

  /** @param {Iterable<File>} files */
  add(files) {
    for (const file of files) {
      const card = new Card(file);
      this.list.prepend(card.root);
      this.waiting.push(() => this.run(card, file));
    }
    this.pump();
  }

  pump() {
    while (this.active < CONCURRENT_UPLOADS && this.waiting.length > 0) {
      const task = /** @type {() => Promise<void>} */ (this.waiting.shift());
      this.active++;
      void task().finally(() => {
        this.active--;
        this.pump();
      });
    }
  }

  /**
   * @param {Card} card
   * @param {File} file
   */
  async run(card, file) {
    try {
      card.state('Uploading…');
      const form = new FormData();
      form.append('image', file, file.name);
      const response = await apiFetch('/api/v1/classify', { method: 'POST', body: form });
      const body = await readJson(response);
      const entry = body.results[0];
      if (entry.error) throw new ApiError(entry.error.code, entry.error.message);
      if (entry.status === 'pending') {
        card.state('Waiting for a worker…', entry.id);
        await this.follow(card, entry.location);
      } else {
        card.done(entry);
      }
      this.announce.textContent = `${file.name}: ${card.summary}`;
    } catch (err) {
      const error = err instanceof ApiError ? err : new ApiError('INTERNAL', String(err));
      card.failed(error.code, error.message);
      this.announce.textContent = `${file.name}: ${errorWords(error.code)} (${error.code})`;
    } finally {
      this.onSettled();
    }
  }

  /**
   * Polls a pending job until it is done or failed, gently.
   * @param {Card} card
   * @param {string} location
   */
  async follow(card, location) {
    let delay = 500;
    for (;;) {
      await sleep(delay);
      delay = Math.min(delay * 1.6, 8000);
      let job;
      try {
        job = await readJson(await apiFetch(location));
      } catch (err) {
        // The service unreachable for a moment: keep following; anything else ends it.
        if (err instanceof ApiError && (err.code === 'NETWORK' || (err.status ?? 0) >= 502)) continue;
        throw err;
      }
      if (job.status === 'done') return card.done(job.result);
      if (job.status === 'failed') throw new ApiError(job.error.code, job.error.message);
    }
  }
}

class Card {
  /** @param {File} file */
  constructor(file) {
    this.summary = '';
    const preview = /** @type {HTMLImageElement} */ (
      el('img', { alt: `Preview of ${file.name}`, class: 'preview', width: '96', height: '96' })
    );
    preview.src = URL.createObjectURL(file);
    preview.addEventListener(
      'error',
      () =>
        preview.replaceWith(
          el('div', { class: 'preview none', role: 'img', 'aria-label': `No preview of ${file.name}` }, ['no preview']),
        ),
      { once: true },
    );
    this.status = el('p', { class: 'status' });
    this.body = el('div', { class: 'outcome' });
    this.root = el('li', { class: 'job', 'data-state': 'working' }, [
      preview,
      el('div', { class: 'details' }, [el('h3', { class: 'file' }, [file.name]), this.status, this.body]),
    ]);
  }

  /**
   * @param {string} text
   * @param {string} [id]
   */
  state(text, id) {
    this.status.replaceChildren(text, ...(id ? [' ', el('span', { class: 'job-id' }, [`job ${id}`])] : []));
  }

  /** @param {{ id: string, label: string, score: number, model: string, top5: { label: string, score: number }[], timings: Record<string, number> }} result */
  done(result) {
    this.root.dataset.state = 'done';
    this.root.dataset.jobId = result.id;
    this.summary = `${result.label}, ${percent(result.score)}`;
    this.status.replaceChildren(
      el('span', { class: 'label' }, [result.label]),
      ' ',
      el('span', { class: 'score' }, [percent(result.score)]),
    );
    const bars = el(
      'ol',
      { class: 'top5', 'aria-label': 'Top 5 classes' },
      result.top5.map((c) => {
        const fill = el('span', { class: 'fill' });
        fill.style.width = `${Math.max(0.5, c.score * 100)}%`;
        return el('li', {}, [
          el('span', { class: 'class' }, [c.label]),
          el('span', { class: 'bar', 'aria-hidden': 'true' }, [fill]),
          el('span', { class: 'pct' }, [percent(c.score)]),
        ]);
      }),
    );
    const stages = STAGES.filter((s) => typeof result.timings[s] === 'number');
    const timings = el('details', { class: 'timings' }, [
      el('summary', {}, [`Model ${result.model} · ${ms(result.timings.total ?? 0)} in all`]),
      el('table', {}, [
        el('caption', { class: 'visually-hidden' }, ['Time per stage']),
        el('thead', {}, [el('tr', {}, [el('th', { scope: 'col' }, ['stage']), el('th', { scope: 'col' }, ['time'])])]),
        el(
          'tbody',
          {},
          stages.map((s) =>
            el('tr', {}, [el('th', { scope: 'row' }, [s]), el('td', {}, [ms(result.timings[s] ?? 0)])]),
          ),
        ),
      ]),
    ]);
    this.body.replaceChildren(bars, timings);
  }

  /**
   * @param {string} code
   * @param {string} message
   */
  failed(code, message) {
    this.root.dataset.state = 'failed';
    this.summary = `${errorWords(code)} (${code})`;
    this.status.replaceChildren(
      el('strong', { class: 'error-words' }, [errorWords(code)]),
      ' ',
      el('code', { class: 'error-code' }, [code]),
    );
    this.body.replaceChildren(el('p', { class: 'error-message' }, [message]));
  }
}
