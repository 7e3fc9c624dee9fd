/**
 * Real answers against the service's own OpenAPI document (`GET /api/v1/openapi.json`): the status
 * must be documented for the operation, the content type among the response's, and a JSON body
 * valid against its schema (ajv, JSON Schema 2020-12, the document's `$ref`s resolved in place).
 */

import type { ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';

type Doc = {
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>
  >;
};

export interface Answer {
  readonly status: number;
  readonly contentType: string;
  /** The body as text (JSON is parsed here). */
  readonly body: string;
}

const pointer = (...parts: string[]) =>
  parts.map((p) => encodeURIComponent(p.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');

export class OpenApiChecker {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false, validateSchema: false });
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(readonly doc: Doc) {
    this.ajv.addSchema(doc as object, 'openapi.json');
  }

  static async load(url: string, headers: Record<string, string> = {}): Promise<OpenApiChecker> {
    const response = await fetch(`${url}/api/v1/openapi.json`, { headers });
    if (!response.ok) throw new Error(`GET /api/v1/openapi.json answered ${response.status}`);
    return new OpenApiChecker((await response.json()) as Doc);
  }

  /** A validator for the schema at a JSON pointer of the document (`components/schemas/Error`). */
  validator(...parts: string[]): ValidateFunction {
    const ref = `openapi.json#/${pointer(...parts)}`;
    let validate = this.compiled.get(ref);
    if (!validate) {
      validate = this.ajv.compile({ $ref: ref });
      this.compiled.set(ref, validate);
    }
    return validate;
  }

  /** Why `answer` does not match operation `method path` of the document; empty when it does. */
  problems(method: string, path: string, answer: Answer): string[] {
    const what = `${method.toUpperCase()} ${path} → ${answer.status}`;
    const operation = this.doc.paths[path]?.[method];
    if (!operation) return [`${method.toUpperCase()} ${path} is not in the document`];
    const response = operation.responses[String(answer.status)];
    if (!response)
      return [`${what}: status not documented (documented: ${Object.keys(operation.responses).join(', ')})`];
    if (!response.content)
      return answer.body === '' ? [] : [`${what}: the document says no body, got ${answer.body.length} bytes`];
    const type = answer.contentType.split(';')[0]!.trim().toLowerCase();
    const key = Object.keys(response.content).find(
      (k) => k === type || (k.endsWith('/*') && type.startsWith(k.slice(0, -1))),
    );
    if (!key)
      return [
        `${what}: content type ${type || '(none)'} not documented (documented: ${Object.keys(response.content).join(', ')})`,
      ];
    if (type !== 'application/json') return [];
    let body: unknown;
    try {
      body = JSON.parse(answer.body);
    } catch {
      return [`${what}: the body is not JSON: ${answer.body.slice(0, 200)}`];
    }
    const validate = this.validator(
      'paths',
      path,
      method,
      'responses',
      String(answer.status),
      'content',
      key,
      'schema',
    );
    return validate(body)
      ? []
      : (validate.errors ?? []).map(
          (e) => `${what}: ${e.instancePath || '(body)'} ${e.message} ${JSON.stringify(e.params)}`,
        );
  }
}

/** A fetch Response as an Answer (reads the body). */
export async function answerOf(response: Response): Promise<Answer> {
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    body: await response.text(),
  };
}
