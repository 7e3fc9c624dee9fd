// @ts-check
/**
 * Recent results from the output bucket (`GET /api/v1/results`), with thumbnails of their inputs
 * (`GET /api/v1/jobs/:id/thumbnail`, read with `fetch` so the API key goes along, shown from a
 * blob: URL). Read when the page opens, when one of this tab's images is settled, and on Refresh.
 */
import { ApiError, apiFetch, readJson } from './api.js';
import { el } from './jobs.js';
import { errorWords } from './words.js';

const LIMIT = 12;

export class RecentResults {
  constructor() {
    this.list = /** @type {HTMLUListElement} */ (document.getElementById('recent-list'));
    this.state = /** @type {HTMLElement} */ (document.getElementById('recent-state'));
    /** @type {Map<string, Promise<string | null>>} thumbnail blob: URLs by job id */
    this.thumbnails = new Map();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    this.loading = false;
    this.again = false;
  }

  /** A refresh soon, once for a run of calls. */
  soon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), 600);
  }

  async refresh() {
    if (this.loading) {
      this.again = true;
      return;
    }
    this.loading = true;
    try {
      const { results } = await readJson(await apiFetch(`/api/v1/results?limit=${LIMIT}`));
      this.state.textContent = results.length === 0 ? 'No results yet.' : '';
      this.list.replaceChildren(...results.map((/** @type {any} */ r) => this.item(r)));
      const keep = new Set(results.map((/** @type {any} */ r) => r.id));
      for (const [id, url] of this.thumbnails) {
        if (keep.has(id)) continue;
        this.thumbnails.delete(id);
        void url.then((u) => u && URL.revokeObjectURL(u));
      }
    } catch (err) {
      const code = err instanceof ApiError ? err.code : 'INTERNAL';
      this.state.textContent = `Recent results could not be read: ${errorWords(code)} (${code})`;
    } finally {
      this.loading = false;
      if (this.again) {
        this.again = false;
        void this.refresh();
      }
    }
  }

  /** @param {any} r */
  item(r) {
    const img = /** @type {HTMLImageElement} */ (
      el('img', { class: 'thumb', alt: `Thumbnail of ${r.file}`, width: '96', height: '96' })
    );
    void this.thumbnail(r).then((url) => {
      if (url) img.src = url;
      else
        img.replaceWith(
          el('div', { class: 'thumb none', role: 'img', 'aria-label': `No thumbnail of ${r.file}` }, ['no image']),
        );
    });
    const outcome =
      r.status === 'done'
        ? el('p', { class: 'outcome' }, [
            el('span', { class: 'label' }, [r.label]),
            ' ',
            el('span', { class: 'score' }, [`${(r.score * 100).toFixed(1)}%`]),
          ])
        : el('p', { class: 'outcome' }, [
            el('strong', { class: 'error-words' }, [errorWords(r.error.code)]),
            ' ',
            el('code', { class: 'error-code' }, [r.error.code]),
          ]);
    return el('li', { 'data-job-id': r.id, 'data-state': r.status }, [
      img,
      el('div', {}, [
        el('p', { class: 'file' }, [r.file]),
        outcome,
        el('time', { datetime: r.completedAt }, [new Date(r.completedAt).toLocaleTimeString()]),
      ]),
    ]);
  }

  /** @param {any} r */
  thumbnail(r) {
    let url = this.thumbnails.get(r.id);
    if (!url) {
      url = apiFetch(r.thumbnail)
        .then(async (response) => (response.ok ? URL.createObjectURL(await response.blob()) : null))
        .catch(() => null);
      this.thumbnails.set(r.id, url);
    }
    return url;
  }
}
