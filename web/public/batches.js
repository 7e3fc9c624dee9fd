// @ts-check
/**
 * Batches: every image under an S3 prefix, classified where it is. A form starts one
 * (`POST /api/v1/batches`); the list shows the recent ones (`GET /api/v1/batches`), each with a
 * progress bar (a real <progress>, named for screen readers), its counts, its ETA while it runs, a
 * link to its results as JSON lines and a Cancel button. Polled every 2 s while a batch runs.
 */
import { ApiError, apiFetch, readJson } from './api.js';
import { el } from './jobs.js';
import { errorWords } from './words.js';

const FINISHED = new Set(['done', 'failed', 'cancelled']);

export class Batches {
  constructor() {
    this.list = /** @type {HTMLOListElement} */ (document.getElementById('batch-list'));
    this.state = /** @type {HTMLElement} */ (document.getElementById('batch-state'));
    this.form = /** @type {HTMLFormElement} */ (document.getElementById('batch-form'));
    this.source = /** @type {HTMLInputElement} */ (document.getElementById('batch-source'));
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.start(this.source.value.trim());
    });
  }

  /** @param {string} source */
  async start(source) {
    try {
      const response = await apiFetch('/api/v1/batches', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ source }),
      });
      await readJson(response);
      this.state.textContent = `Batch started over ${source}.`;
      this.source.value = '';
    } catch (err) {
      const code = err instanceof ApiError ? err.code : 'INTERNAL';
      const message = err instanceof ApiError ? err.message : '';
      this.state.textContent = `The batch was not started: ${errorWords(code)} (${code}) ${message}`;
    }
    await this.refresh();
  }

  async refresh() {
    clearTimeout(this.timer);
    try {
      const { batches } = await readJson(await apiFetch('/api/v1/batches?limit=10'));
      this.list.replaceChildren(...batches.map((/** @type {any} */ b) => this.item(b)));
      if (batches.length === 0 && !this.state.textContent) this.state.textContent = 'No batches yet.';
      if (batches.some((/** @type {any} */ b) => !FINISHED.has(b.status)))
        this.timer = setTimeout(() => void this.refresh(), 2_000);
    } catch (err) {
      const code = err instanceof ApiError ? err.code : 'INTERNAL';
      this.state.textContent = `Batches could not be read: ${errorWords(code)} (${code})`;
    }
  }

  /** @param {any} b */
  item(b) {
    const answered = b.done + b.failed;
    const of = b.total ?? b.listed;
    const progress = el('progress', {
      max: String(Math.max(of, 1)),
      value: String(answered),
      'aria-label': `Batch over ${b.source}: ${answered} of ${of} images answered`,
    });
    const counts = [
      `${b.done} classified`,
      b.failed ? `${b.failed} failed` : '',
      b.total === undefined ? `${b.listed} listed so far` : `of ${b.total}`,
    ]
      .filter(Boolean)
      .join(', ');
    const eta = b.etaSeconds !== undefined ? ` · about ${formatSeconds(b.etaSeconds)} left` : '';
    const cancel = el('button', { type: 'button', class: 'cancel' }, ['Cancel']);
    cancel.addEventListener('click', async () => {
      await apiFetch(b.location, { method: 'DELETE' }).catch(() => undefined);
      await this.refresh();
    });
    return el('li', { 'data-batch-id': b.id, 'data-state': b.status }, [
      el('p', { class: 'file' }, [b.source]),
      progress,
      el('p', { class: 'counts' }, [`${b.status}: ${counts}${eta}`]),
      b.error ? el('p', { class: 'error-words' }, [`${errorWords(b.error.code)} (${b.error.code})`]) : '',
      el('p', {}, [
        el('a', { href: b.results, download: `batch-${b.id}.jsonl` }, ['Results (JSON lines)']),
        ' ',
        FINISHED.has(b.status) ? '' : cancel,
      ]),
    ]);
  }
}

/** @param {number} s */
const formatSeconds = (s) =>
  s < 90 ? `${s} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
