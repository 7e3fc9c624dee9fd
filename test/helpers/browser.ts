/**
 * Real Chromium for the page's tests: Debian's /usr/bin/chromium driven by playwright-core (no
 * downloaded browser), headless, a fresh profile per launch, and a record of everything the page
 * says on its console.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(viewport = { width: 1280, height: 900 }): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), 'eir-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport,
  });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Console errors and uncaught exceptions of a page. Chromium itself logs `Failed to load resource:
 * the server responded with a status of N` for every 4xx/5xx answer; a test that provokes one on
 * purpose says so with `expect(path, status)`, and only that one is let through.
 */
export class ConsoleWatch {
  readonly errors: string[] = [];
  private readonly expected: { path: string; status: number }[] = [];

  constructor(page: Page) {
    page.on('console', (message) => {
      if (message.type() !== 'error') return;
      const text = message.text();
      const status = /status of (\d{3})/.exec(text)?.[1];
      const path = new URL(message.location().url || 'about:blank', 'http://x').pathname;
      if (status && this.expected.some((e) => e.status === Number(status) && e.path === path)) return;
      this.errors.push(`${text} (${message.location().url})`);
    });
    page.on('pageerror', (error) => this.errors.push(`uncaught: ${error.message}`));
  }

  /** A `status` answer to a request for `path` is what the test asked for, not an error of the page. */
  expect(path: string, status: number): void {
    this.expected.push({ path, status });
  }
}
