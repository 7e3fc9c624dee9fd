/** Checks on parsed JSON and other untyped values, shared by the validators of `scaling/`. */

export type JsonObject = Record<string, unknown>;

/** A plain object: not null, not an array. */
export const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
