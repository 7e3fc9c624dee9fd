import path from 'node:path';
import { readJsonFile } from '../lib/json-file.js';
import { ModelError } from './errors.js';
import type { ModelFormat, ModelManifest, ModelRuntime, ResizeMode } from './types.js';

export interface ManifestIssue {
  /** Dotted path of the offending field, e.g. `input.normalization.std[1]`. */
  readonly path: string;
  readonly message: string;
}

const FORMATS: readonly ModelFormat[] = ['tfjs-layers', 'tfjs-graph', 'onnx'];
/** The runtimes each format can run on, its default first. */
const RUNTIMES: Readonly<Record<ModelFormat, readonly ModelRuntime[]>> = {
  'tfjs-layers': ['tfjs', 'onnxruntime'],
  'tfjs-graph': ['tfjs'],
  onnx: ['onnxruntime'],
};
const RESIZE_MODES: readonly ResizeMode[] = ['fill', 'cover'];
const LAYOUTS = ['NHWC', 'NCHW'] as const;
const OUTPUT_KINDS = ['probabilities', 'logits'] as const;

const TOP_KEYS = ['id', 'format', 'runtime', 'location', 'sha256', 'input', 'output', 'labels'];
const INPUT_KEYS = ['width', 'height', 'layout', 'name', 'resize', 'normalization'];
const NORMALIZATION_KEYS = ['scale', 'mean', 'std'];
const OUTPUT_KEYS = ['name', 'kind', 'offset'];

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Collects every problem so one error reports all of them, not just the first. */
class Checker {
  readonly issues: ManifestIssue[] = [];

  fail(at: string, message: string): void {
    this.issues.push({ path: at, message });
  }

  object(value: unknown, at: string, allowedKeys: readonly string[]): Json | undefined {
    if (!isObject(value)) {
      this.fail(at, 'must be an object');
      return undefined;
    }
    for (const key of Object.keys(value)) {
      // Unknown keys are rejected: a typo such as `offest` would otherwise silently use a default.
      if (!allowedKeys.includes(key)) this.fail(at === '' ? key : `${at}.${key}`, 'is not a known field');
    }
    return value;
  }

  string(value: unknown, at: string): string | undefined {
    if (typeof value !== 'string' || value.trim() === '') {
      this.fail(at, 'must be a non-empty string');
      return undefined;
    }
    return value;
  }

  optionalString(value: unknown, at: string): string | undefined {
    return value === undefined ? undefined : this.string(value, at);
  }

  oneOf<T extends string>(value: unknown, at: string, allowed: readonly T[]): T | undefined {
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      this.fail(at, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
      return undefined;
    }
    return value as T;
  }

  integer(value: unknown, at: string, min: number): number | undefined {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      this.fail(at, `must be an integer >= ${min}`);
      return undefined;
    }
    return value;
  }

  number(value: unknown, at: string, positive: boolean): number | undefined {
    if (typeof value !== 'number' || !Number.isFinite(value) || (positive && value <= 0)) {
      this.fail(at, positive ? 'must be a finite number > 0' : 'must be a finite number');
      return undefined;
    }
    return value;
  }

  triple(value: unknown, at: string, positive: boolean): [number, number, number] | undefined {
    if (!Array.isArray(value) || value.length !== 3) {
      this.fail(at, 'must be an array of 3 numbers (R, G, B)');
      return undefined;
    }
    const [a, b, c] = value.map((v: unknown, i) => this.number(v, `${at}[${i}]`, positive));
    return a === undefined || b === undefined || c === undefined ? undefined : [a, b, c];
  }
}

function checkLocation(check: Checker, value: unknown): string | undefined {
  const location = check.string(value, 'location');
  if (location === undefined) return undefined;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(location)?.[1]?.toLowerCase();
  if (scheme === undefined) return location;
  if (scheme === 'http' || scheme === 'https') {
    if (!URL.canParse(location)) check.fail('location', 'is not a valid URL');
  } else if (scheme === 's3') {
    if (parseS3Url(location) === undefined) check.fail('location', 'must look like s3://bucket/key');
  } else {
    check.fail('location', `has unsupported scheme '${scheme}:' (use a path, http(s):// or s3://)`);
  }
  return location;
}

/** Splits `s3://bucket/key` (key may contain slashes); undefined when malformed. */
export function parseS3Url(url: string): { bucket: string; key: string } | undefined {
  const match = /^s3:\/\/([^/]+)\/(.+)$/i.exec(url);
  if (match?.[1] === undefined || match[2] === undefined) return undefined;
  return { bucket: match[1], key: match[2] };
}

/**
 * Checks an untrusted value (parsed JSON, a config object) against the `ModelManifest` contract and
 * returns a frozen copy. Throws `ModelError('INVALID_MANIFEST')` listing every problem in
 * `context.issues`.
 */
export function validateManifest(value: unknown): ModelManifest {
  const check = new Checker();
  const top = check.object(value, '', TOP_KEYS);
  if (top === undefined) throw invalid(check.issues, undefined);

  const id = check.string(top.id, 'id');
  const format = check.oneOf(top.format, 'format', FORMATS);
  const runtime =
    top.runtime === undefined || format === undefined
      ? undefined
      : check.oneOf(top.runtime, 'runtime', RUNTIMES[format]);
  const location = checkLocation(check, top.location);
  let sha256: string | undefined;
  if (top.sha256 !== undefined) {
    if (typeof top.sha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(top.sha256)) {
      check.fail('sha256', 'must be 64 hexadecimal characters');
    } else {
      sha256 = top.sha256.toLowerCase();
    }
  }

  const input = check.object(top.input, 'input', INPUT_KEYS);
  const width = check.integer(input?.width, 'input.width', 1);
  const height = check.integer(input?.height, 'input.height', 1);
  const layout = check.oneOf(input?.layout, 'input.layout', LAYOUTS);
  const inputName = check.optionalString(input?.name, 'input.name');
  const resize = check.oneOf(input?.resize, 'input.resize', RESIZE_MODES);
  const norm = check.object(input?.normalization, 'input.normalization', NORMALIZATION_KEYS);
  const scale = check.number(norm?.scale, 'input.normalization.scale', true);
  const mean = check.triple(norm?.mean, 'input.normalization.mean', false);
  const std = check.triple(norm?.std, 'input.normalization.std', true);

  const output = check.object(top.output, 'output', OUTPUT_KEYS);
  const outputName = check.optionalString(output?.name, 'output.name');
  const kind = check.oneOf(output?.kind, 'output.kind', OUTPUT_KINDS);
  const offset = check.integer(output?.offset, 'output.offset', 0);

  const labels = checkLabels(check, top.labels, 'labels');

  if (
    check.issues.length > 0 ||
    // The checks above pushed an issue for each undefined; this only narrows the types.
    id === undefined ||
    format === undefined ||
    location === undefined ||
    width === undefined ||
    height === undefined ||
    layout === undefined ||
    resize === undefined ||
    scale === undefined ||
    mean === undefined ||
    std === undefined ||
    kind === undefined ||
    offset === undefined ||
    labels === undefined
  ) {
    throw invalid(check.issues, typeof top.id === 'string' ? top.id : undefined);
  }

  const manifest: ModelManifest = {
    id,
    format,
    ...(runtime === undefined ? {} : { runtime }),
    location,
    ...(sha256 === undefined ? {} : { sha256 }),
    input: {
      width,
      height,
      layout,
      ...(inputName === undefined ? {} : { name: inputName }),
      resize,
      normalization: { scale, mean: Object.freeze(mean), std: Object.freeze(std) },
    },
    output: { ...(outputName === undefined ? {} : { name: outputName }), kind, offset },
    labels: Object.freeze([...labels]),
  };
  return deepFreeze(manifest);
}

/** The runtime that executes a model: the manifest's, else its format's default. */
export function modelRuntime(manifest: Pick<ModelManifest, 'format' | 'runtime'>): ModelRuntime {
  return manifest.runtime ?? RUNTIMES[manifest.format][0]!;
}

function invalid(issues: readonly ManifestIssue[], id: string | undefined): ModelError {
  const summary = issues.map((i) => (i.path === '' ? i.message : `${i.path} ${i.message}`)).join('; ');
  return new ModelError('INVALID_MANIFEST', `invalid model manifest${id === undefined ? '' : ` '${id}'`}: ${summary}`, {
    id,
    issues,
  });
}

function checkLabels(check: Checker, value: unknown, at: string): string[] | undefined {
  if (!Array.isArray(value) || value.length === 0) {
    check.fail(at, 'must be a non-empty array of strings');
    return undefined;
  }
  const bad = value.findIndex((l: unknown) => typeof l !== 'string' || l.trim() === '');
  if (bad !== -1) {
    check.fail(`${at}[${bad}]`, 'must be a non-empty string');
    return undefined;
  }
  return value as string[];
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

const labelCache = new Map<string, Promise<readonly string[]>>();

/**
 * Reads class labels from a JSON file: either an array of strings (`imagenet-labels.json`) or an
 * object with a `labels` array (the tfjs `metadata.json`). Cached per absolute path.
 */
export function loadLabels(file: string): Promise<readonly string[]> {
  const absolute = path.resolve(file);
  let pending = labelCache.get(absolute);
  if (pending === undefined) {
    pending = readLabels(absolute);
    labelCache.set(absolute, pending);
    // A failed read must not poison the cache: a later call (e.g. after the file appears) retries.
    pending.catch(() => labelCache.delete(absolute));
  }
  return pending;
}

async function readLabels(file: string): Promise<readonly string[]> {
  const parsed = await readJsonFile(file, {
    what: 'labels file',
    fail: (message, cause) => new ModelError('INVALID_LABELS', message, { file }, { cause }),
  });
  const list = isObject(parsed) ? parsed.labels : parsed;
  const check = new Checker();
  const labels = checkLabels(check, list, 'labels');
  if (labels === undefined) {
    throw new ModelError(
      'INVALID_LABELS',
      `labels file ${file} must hold a non-empty array of strings (or { "labels": [...] })`,
      {
        file,
        issues: check.issues,
      },
    );
  }
  return Object.freeze([...labels]);
}
