// @ts-check
/** The page's wiring: where images come from (picker, drop, paste) and the four views. */
import { Batches } from './batches.js';
import { Jobs } from './jobs.js';
import { LiveView } from './live.js';
import { RecentResults } from './recent.js';

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

const recent = new RecentResults();
const jobs = new Jobs(/** @type {HTMLOListElement} */ ($('jobs')), $('announce'), () => recent.soon());
const input = /** @type {HTMLInputElement} */ ($('files'));
const drop = $('drop');

$('choose').addEventListener('click', () => input.click());
input.addEventListener('change', () => {
  if (input.files && input.files.length > 0) jobs.add(input.files);
  input.value = '';
});

/** @param {DataTransfer | null} data */
const filesOf = (data) => [...(data?.files ?? [])];

// Dropped anywhere on the page: a drop that misses the zone must not navigate away from it.
let depth = 0;
document.addEventListener('dragenter', (event) => {
  if (!event.dataTransfer?.types.includes('Files')) return;
  depth++;
  drop.classList.add('over');
});
document.addEventListener('dragleave', () => {
  depth = Math.max(0, depth - 1);
  if (depth === 0) drop.classList.remove('over');
});
document.addEventListener('dragover', (event) => {
  if (!event.dataTransfer?.types.includes('Files')) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = 'copy';
});
document.addEventListener('drop', (event) => {
  event.preventDefault();
  depth = 0;
  drop.classList.remove('over');
  const files = filesOf(event.dataTransfer);
  if (files.length > 0) jobs.add(files);
});
document.addEventListener('paste', (event) => {
  const files = filesOf(event.clipboardData);
  if (files.length === 0) return;
  event.preventDefault();
  jobs.add(files);
});

$('refresh-recent').addEventListener('click', () => void recent.refresh());

// Images going through the queue (anyone's) bring new results: the pushed status says when.
new LiveView(() => recent.soon()).start();
void recent.refresh();
void new Batches().refresh();
