/**
 * The documentation points at things that exist: every project path README.md and docs/*.md name
 * (`pipeline/store.ts`, `tools/sim/traces/`, ...) is in the tree, and every link between the pages
 * (and to files, images, headings) resolves. A file moved without its docs fails here.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import test from 'ava';
import { projectRoot } from '../lib/config.js';

/** The folders of the tree a path in the docs may start with. */
const FOLDERS = ['lib', 'models', 'endpoint', 'pipeline', 'scaling', 'web', 'service', 'deploy', 'tools', 'scripts'];
const PATH = new RegExp(`(?<![\\w./-])((?:${[...FOLDERS, 'test', 'docs', '\\.ci'].join('|')})/[\\w./-]*)`, 'g');
/** Files the docs name that a user creates. */
const USER_FILES = new Set(['deploy/config.json']);

async function pages(): Promise<{ file: string; text: string }[]> {
  const docs = (await readdir(join(projectRoot, 'docs'))).filter((name) => name.endsWith('.md'));
  return Promise.all(
    ['README.md', ...docs.map((name) => join('docs', name))].map(async (file) => ({
      file,
      text: await readFile(join(projectRoot, file), 'utf8'),
    })),
  );
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

const anchorsOf = (text: string) =>
  new Set([...text.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => slug(m[1]!.replace(/`/g, ''))));

test('every project path the README and docs/ name exists', async (t) => {
  const missing: string[] = [];
  let checked = 0;
  for (const { file, text } of await pages()) {
    for (const match of text.matchAll(PATH)) {
      const path = match[1]!.replace(/[.,]+$/, '');
      if (USER_FILES.has(path)) continue;
      checked++;
      if (!existsSync(join(projectRoot, path))) missing.push(`${file}: ${path}`);
    }
  }
  t.true(checked > 100, `only ${checked} paths found: is the pattern still right?`);
  t.deepEqual(missing, []);
});

test('every link between the pages, to files, images and headings, resolves', async (t) => {
  const broken: string[] = [];
  let checked = 0;
  for (const { file, text } of await pages()) {
    for (const match of text.matchAll(/!?\[[^\]]*\]\(([^)\s]+)\)/g)) {
      const target = match[1]!;
      if (/^[a-z]+:/i.test(target)) continue;
      checked++;
      const [path, anchor] = target.split('#') as [string, string | undefined];
      const to = path === '' ? join(projectRoot, file) : resolve(projectRoot, dirname(file), path);
      if (!existsSync(to)) {
        broken.push(`${file}: ${target} (no ${relative(projectRoot, to)})`);
        continue;
      }
      if (anchor !== undefined && !anchorsOf(await readFile(to, 'utf8')).has(anchor))
        broken.push(`${file}: ${target} (no heading #${anchor} in ${relative(projectRoot, to)})`);
    }
  }
  t.true(checked > 30, `only ${checked} links found`);
  t.deepEqual(broken, []);
});
