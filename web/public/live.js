// @ts-check
/**
 * The live view: the server pushes the service's status over Server-Sent Events
 * (`GET /api/v1/events`); nothing here polls. The stream is read with `fetch` rather than
 * EventSource so that the API key travels in the Authorization header (EventSource cannot send
 * one, and a key in a URL ends up in logs). A dropped stream is opened again after 1, 2, 4… 30 s;
 * one silent for 45 s (the server sends a keepalive every 15 s) is dropped.
 */
import { ApiError, apiFetch, sleep } from './api.js';
import { el } from './jobs.js';

/** The charts span the history there is, from 1 to 5 minutes. */
const MIN_WINDOW_MS = 60_000;
const WINDOW_MS = 5 * 60_000;
const STALL_MS = 45_000;

/** @typedef {{ t: number, visible: number, inFlight: number, desired: number, running: number }} Sample */

export class LiveView {
  /** @param {() => void} onActivity  called (at most every 3 s) while images go through the queue */
  constructor(onActivity = () => {}) {
    this.onActivity = onActivity;
    this.lastActivity = 0;
    /** @type {Sample[]} */
    this.samples = [];
    /** @type {any} */
    this.status = null;
    this.connection = /** @type {HTMLElement} */ (document.getElementById('connection'));
  }

  start() {
    void this.run();
    // The time axis moves on even when nothing changes (a redraw, not a request).
    setInterval(() => this.draw(), 1000);
  }

  async run() {
    let backoff = 1000;
    for (;;) {
      try {
        await this.read(() => {
          backoff = 1000;
        });
        this.show('reconnecting', 'The live view was closed; reconnecting…');
      } catch (err) {
        if (err instanceof ApiError && err.code === 'NO_KEY') {
          this.show('off', 'The live view needs an API key. Reload the page to enter one.');
          return;
        }
        this.show('reconnecting', `The live view is disconnected; trying again in ${Math.round(backoff / 1000)} s.`);
      }
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 30_000);
    }
  }

  /** @param {() => void} onHello */
  async read(onHello) {
    const abort = new AbortController();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let stall;
    try {
      const response = await apiFetch('/api/v1/events', {
        headers: { Accept: 'text/event-stream' },
        signal: abort.signal,
      });
      if (!response.ok || !response.body)
        throw new ApiError(`HTTP_${response.status}`, 'the event stream was refused', response.status);
      stall = setTimeout(() => abort.abort(), STALL_MS);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        clearTimeout(stall);
        stall = setTimeout(() => abort.abort(), STALL_MS);
        buffer += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const name = /^event: ?(.*)$/m.exec(frame)?.[1];
          const data = [...frame.matchAll(/^data: ?(.*)$/gm)].map((m) => m[1]).join('\n');
          if (name === 'hello') {
            onHello();
            this.hello(JSON.parse(data));
          } else if (name === 'status') {
            this.update(JSON.parse(data));
          }
        }
      }
    } finally {
      clearTimeout(stall);
      abort.abort();
    }
  }

  /** @param {{ history: Sample[], status: any }} hello */
  hello(hello) {
    this.show('live', 'Live');
    this.samples = hello.history;
    if (hello.status) this.status = hello.status;
    this.render();
  }

  /** @param {{ t: number, status: any }} event */
  update(event) {
    const s = event.status;
    const before = this.status;
    this.status = s;
    const busy = (/** @type {any} */ x) => x && x.queue.visible + x.queue.inFlight > 0;
    if ((busy(s) || busy(before)) && Date.now() - this.lastActivity > 3000) {
      this.lastActivity = Date.now();
      this.onActivity();
    }
    this.samples.push({
      t: event.t,
      visible: s.queue.visible,
      inFlight: s.queue.inFlight,
      desired: s.workers.desired,
      running: s.workers.running,
    });
    const since = Date.now() - 2 * WINDOW_MS;
    while (this.samples.length > 0 && this.samples[0].t < since) this.samples.shift();
    this.render();
  }

  /**
   * @param {string} state
   * @param {string} text
   */
  show(state, text) {
    if (this.connection.dataset.state === state && this.connection.textContent === text) return;
    this.connection.dataset.state = state;
    this.connection.textContent = text;
  }

  render() {
    const s = this.status;
    if (!s) return;
    setText('q-visible', s.queue.visible);
    setText('q-inflight', s.queue.inFlight);
    setText('w-desired', s.workers.desired);
    setText('w-running', s.workers.running);
    const policy = /** @type {HTMLElement} */ (document.getElementById('policy'));
    policy.textContent = s.policy
      ? `Scales between ${s.policy.minCapacity} and ${s.policy.maxCapacity} workers, deciding every ${s.policy.periodSeconds} s; target ${round(s.policy.targetBacklogPerInstance)} waiting images per worker.${s.controller?.role === 'standby' ? ' (standby: another copy decides)' : s.controller?.role === 'handover' ? ' (taking over: the CloudWatch policies may still act, so this copy waits)' : ''}`
      : 'A fixed number of workers (WORKERS is set): no autoscaler.';
    const decisions = /** @type {HTMLElement} */ (document.getElementById('decisions'));
    const recent = [...s.decisions].reverse().slice(0, 8);
    decisions.replaceChildren(
      ...(recent.length === 0
        ? [el('li', { class: 'empty' }, ['No scaling decision yet.'])]
        : recent.map((/** @type {any} */ d) =>
            el('li', { 'data-action': d.action }, [
              el('time', { datetime: d.at }, [new Date(d.at).toLocaleTimeString()]),
              ' ',
              el('strong', {}, [`${d.from} → ${d.to}`]),
              ' ',
              el('span', { class: 'rule' }, [`${d.action}, ${d.rule}`]),
              el('p', { class: 'reason' }, [d.reason]),
              el('p', { class: 'resize' }, [resizeWords(d.resize)]),
            ]),
          )),
    );
    this.draw();
  }

  draw() {
    const now = Date.now();
    const s = this.status;
    const span = now - (this.samples[0]?.t ?? now);
    const windowMs = Math.min(WINDOW_MS, Math.max(MIN_WINDOW_MS, Math.ceil(span / 60_000) * 60_000));
    const max = Math.max(1, s?.policy?.maxCapacity ?? 0, ...this.samples.map((p) => Math.max(p.desired, p.running)));
    chart('workers-chart', this.samples, now, windowMs, max, [
      { key: 'desired', cls: 'desired' },
      { key: 'running', cls: 'running' },
    ]);
    const qmax = Math.max(4, ...this.samples.map((p) => Math.max(p.visible, p.inFlight)));
    chart('queue-chart', this.samples, now, windowMs, qmax, [
      { key: 'visible', cls: 'visible' },
      { key: 'inFlight', cls: 'inflight' },
    ]);
    const shown = this.samples.filter((p) => p.t >= now - windowMs);
    const minutes = `${windowMs / 60_000} minute${windowMs === 60_000 ? '' : 's'}`;
    const peak = (/** @type {'running' | 'visible'} */ k) => Math.max(0, ...shown.map((p) => p[k]));
    if (s) {
      setText(
        'workers-summary',
        `Now ${s.workers.running} running and ${s.workers.desired} wanted; at most ${peak('running')} running in the last ${minutes}.`,
      );
      setText(
        'queue-summary',
        `Now ${s.queue.visible} waiting and ${s.queue.inFlight} being classified; at most ${peak('visible')} waiting in the last ${minutes}.`,
      );
    }
  }
}

/** @param {any} resize */
function resizeWords(resize) {
  if (!resize) return '';
  if (resize.state === 'pending') return 'resizing…';
  if (resize.state === 'done') return `done in ${(resize.ms / 1000).toFixed(1)} s`;
  return `${resize.state} after ${resize.attempts} attempt${resize.attempts === 1 ? '' : 's'}`;
}

const round = (/** @type {number} */ n) => (Number.isInteger(n) ? String(n) : n.toFixed(1));

/**
 * @param {string} id
 * @param {string | number} value
 */
function setText(id, value) {
  const node = /** @type {HTMLElement} */ (document.getElementById(id));
  const text = String(value);
  if (node.textContent !== text) node.textContent = text;
}

const SVG = 'http://www.w3.org/2000/svg';
const W = 320;
const H = 110;
const PAD = { left: 22, right: 6, top: 6, bottom: 16 };

/**
 * @param {string} tag
 * @param {Record<string, string | number>} attrs
 * @param {string} [text]
 */
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * A step chart of the last `windowMs`: one line per series, each value held until the next sample
 * and the last one up to now.
 * @param {string} id
 * @param {Sample[]} samples
 * @param {number} now
 * @param {number} windowMs
 * @param {number} max
 * @param {{ key: 'desired' | 'running' | 'visible' | 'inFlight', cls: string }[]} series
 */
function chart(id, samples, now, windowMs, max, series) {
  const node = /** @type {SVGSVGElement | null} */ (document.getElementById(id));
  if (!node) return;
  const x = (/** @type {number} */ t) => PAD.left + ((t - (now - windowMs)) / windowMs) * (W - PAD.left - PAD.right);
  const y = (/** @type {number} */ v) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  /** @type {SVGElement[]} */
  const parts = [];
  const ticks = max <= 4 ? Array.from({ length: max + 1 }, (_, i) => i) : [0, Math.round(max / 2), max];
  for (const v of ticks) {
    parts.push(svg('line', { class: 'grid', x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }));
    parts.push(svg('text', { class: 'axis', x: PAD.left - 4, y: y(v) + 3, 'text-anchor': 'end' }, String(v)));
  }
  parts.push(svg('text', { class: 'axis', x: PAD.left, y: H - 3 }, `−${windowMs / 60_000} min`));
  parts.push(svg('text', { class: 'axis', x: W - PAD.right, y: H - 3, 'text-anchor': 'end' }, 'now'));
  const visible = samples.filter((p, i) => p.t >= now - windowMs || samples[i + 1]?.t >= now - windowMs);
  for (const { key, cls } of series) {
    if (visible.length === 0) continue;
    let d = '';
    for (const [i, p] of visible.entries()) {
      const px = Math.max(PAD.left, x(p.t)).toFixed(1);
      d += i === 0 ? `M${px},${y(p[key]).toFixed(1)}` : `H${px}V${y(p[key]).toFixed(1)}`;
    }
    d += `H${(W - PAD.right).toFixed(1)}`;
    parts.push(svg('path', { class: `series ${cls}`, d }));
  }
  node.replaceChildren(...parts);
}
