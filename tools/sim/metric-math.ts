/**
 * CloudWatch metric math, the part the app tier's scaling policies use (scaling/aws/aws-requests.ts):
 * numbers, query ids, + - * /, the comparisons, IF and FILL, over a window of periods, with
 * CloudWatch's rules for missing values (CloudWatch user guide, "Metric math syntax and functions"):
 *
 *  - arithmetic between two series treats a missing value as 0 where the other has one; a period
 *    where neither has a value has none; a division by zero drops the point;
 *  - a series against a number: a missing value stays missing;
 *  - a comparison gives 1 or 0; between two series a missing value counts as 0;
 *  - IF(c, a, b): a where c is not 0 (0 where a is a series without a value there), b where c is 0
 *    (no point where b has none, or is left out), no point where c has none;
 *  - FILL(s, v): v in every period of the window where s has no value.
 *
 * Anything else (other functions, logical operators) is refused with an error naming it: the
 * simulator runs exactly the expressions it knows.
 */
import { ScalingError } from '../../scaling/core/errors.js';

/** One value per period of the window, oldest first; undefined: no datapoint. */
export type Series = readonly (number | undefined)[];

type Value = { readonly kind: 'scalar'; readonly v: number } | { readonly kind: 'series'; readonly s: Series };

type Node =
  | { readonly t: 'num'; readonly v: number }
  | { readonly t: 'id'; readonly id: string }
  | { readonly t: 'neg'; readonly arg: Node }
  | { readonly t: 'bin'; readonly op: string; readonly left: Node; readonly right: Node }
  | { readonly t: 'call'; readonly fn: string; readonly args: readonly Node[] };

const unsupported = (expression: string, what: string): ScalingError =>
  new ScalingError('INVALID_SIMULATION', `metric math "${expression}": ${what} is not modelled by the simulator`, {
    field: 'Expression',
    value: expression,
  });

const TOKEN = /\s*(==|!=|<=|>=|&&|\|\||[-+*/^<>(),]|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|[A-Za-z_][A-Za-z0-9_]*)/y;

function tokenize(expression: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  let at = 0;
  while (at < expression.length) {
    if (/^\s*$/.test(expression.slice(at))) break;
    TOKEN.lastIndex = at;
    const m = TOKEN.exec(expression);
    if (!m) throw unsupported(expression, `the text at "${expression.slice(at)}"`);
    tokens.push(m[1]!);
    at = TOKEN.lastIndex;
  }
  return tokens;
}

const COMPARISONS = new Set(['==', '!=', '<=', '>=', '<', '>']);

/** Parses an expression (recursive descent: comparison > + - > * / > unary minus > primary). */
export function parseExpression(expression: string): Node {
  const tokens = tokenize(expression);
  let i = 0;
  const peek = (): string | undefined => tokens[i];
  const take = (expected?: string): string => {
    const token = tokens[i++];
    if (token === undefined || (expected !== undefined && token !== expected))
      throw unsupported(expression, expected ? `a missing "${expected}"` : 'an unexpected end');
    return token;
  };
  const primary = (): Node => {
    const token = take();
    if (token === '(') {
      const inner = comparison();
      take(')');
      return inner;
    }
    if (/^\d/.test(token)) return { t: 'num', v: Number(token) };
    if (/^[A-Z]/.test(token)) {
      take('(');
      const args: Node[] = [];
      if (peek() !== ')') {
        args.push(comparison());
        while (peek() === ',') {
          take(',');
          args.push(comparison());
        }
      }
      take(')');
      return { t: 'call', fn: token, args };
    }
    if (/^[a-z]/.test(token)) return { t: 'id', id: token };
    throw unsupported(expression, `"${token}"`);
  };
  const unary = (): Node => {
    if (peek() === '-') {
      take('-');
      return { t: 'neg', arg: unary() };
    }
    return primary();
  };
  const binary = (next: () => Node, ops: readonly string[]) => (): Node => {
    let left = next();
    for (let op = peek(); op !== undefined && ops.includes(op); op = peek()) {
      take(op);
      left = { t: 'bin', op, left, right: next() };
    }
    return left;
  };
  const multiplicative = binary(unary, ['*', '/']);
  const additive = binary(multiplicative, ['+', '-']);
  const comparison = (): Node => {
    const left = additive();
    const op = peek();
    if (op === undefined || !COMPARISONS.has(op)) return left;
    take(op);
    return { t: 'bin', op, left, right: additive() };
  };
  const node = comparison();
  if (i < tokens.length) throw unsupported(expression, `"${tokens[i]}"`);
  return node;
}

function arithmetic(op: string, a: number, b: number): number | undefined {
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      return b === 0 ? undefined : a / b;
    case '==':
      return a === b ? 1 : 0;
    case '!=':
      return a !== b ? 1 : 0;
    case '<':
      return a < b ? 1 : 0;
    case '<=':
      return a <= b ? 1 : 0;
    case '>':
      return a > b ? 1 : 0;
    case '>=':
      return a >= b ? 1 : 0;
  }
  return undefined;
}

/**
 * Evaluates `expression` over `length` periods; `series` holds the other queries by id (metrics and
 * the expressions already evaluated). The result must be a series, as CloudWatch requires.
 */
export function evaluateExpression(expression: string, series: ReadonlyMap<string, Series>, length: number): Series {
  const at = (v: Value, i: number): number | undefined => (v.kind === 'scalar' ? v.v : v.s[i]);
  const perPeriod = (f: (i: number) => number | undefined): Value => ({
    kind: 'series',
    s: Array.from({ length }, (_, i) => f(i)),
  });
  const run = (node: Node): Value => {
    switch (node.t) {
      case 'num':
        return { kind: 'scalar', v: node.v };
      case 'id': {
        const s = series.get(node.id);
        if (s === undefined) throw unsupported(expression, `the unknown id "${node.id}"`);
        return { kind: 'series', s };
      }
      case 'neg': {
        const v = run(node.arg);
        return v.kind === 'scalar'
          ? { kind: 'scalar', v: -v.v }
          : perPeriod((i) => (v.s[i] === undefined ? undefined : -v.s[i]!));
      }
      case 'bin': {
        const a = run(node.left);
        const b = run(node.right);
        if (a.kind === 'scalar' && b.kind === 'scalar') {
          const v = arithmetic(node.op, a.v, b.v);
          if (v === undefined) throw unsupported(expression, 'a division of a number by zero');
          return { kind: 'scalar', v };
        }
        const both = a.kind === 'series' && b.kind === 'series';
        return perPeriod((i) => {
          let x = at(a, i);
          let y = at(b, i);
          if (x === undefined && y === undefined) return undefined;
          if (!both && (x === undefined || y === undefined)) return undefined;
          x ??= 0;
          y ??= 0;
          return arithmetic(node.op, x, y);
        });
      }
      case 'call':
        return call(node.fn, node.args.map(run));
    }
  };
  const call = (fn: string, args: readonly Value[]): Value => {
    if (fn === 'FILL') {
      const [s, v] = args;
      if (args.length !== 2 || s?.kind !== 'series' || v?.kind !== 'scalar')
        throw unsupported(expression, 'FILL other than FILL(series, number)');
      return perPeriod((i) => s.s[i] ?? v.v);
    }
    if (fn === 'IF') {
      const [c, a, b] = args;
      if (c === undefined || a === undefined || args.length > 3)
        throw unsupported(expression, 'IF without 2 or 3 arguments');
      return perPeriod((i) => {
        const cond = at(c, i);
        if (cond === undefined) return undefined;
        if (cond !== 0) return at(a, i) ?? 0;
        return b === undefined ? undefined : at(b, i);
      });
    }
    throw unsupported(expression, `the function ${fn}`);
  };
  const result = run(parseExpression(expression));
  if (result.kind === 'scalar') throw unsupported(expression, 'an expression that gives a number, not a time series,');
  return result.s;
}
