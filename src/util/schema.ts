/** One Ajv instance setup shared by every schema boundary (config, model card, MQTT payloads, bundles). */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { TSchema, Static } from '@sinclair/typebox';

// ajv-formats ships CJS with a default export; under NodeNext the callable sits on .default.
const addFormats = (addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule;

export function makeAjv(opts: { useDefaults?: boolean; coerceTypes?: boolean } = {}): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: opts.useDefaults ?? false, coerceTypes: opts.coerceTypes ?? false });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  return ajv;
}

export function compileSchema<T extends TSchema>(schema: T, ajv: Ajv = makeAjv()): ValidateFunction<Static<T>> {
  return ajv.compile(schema) as ValidateFunction<Static<T>>;
}

/** Turns Ajv errors into "key.path: reason" lines, which is what an operator needs to fix a file. */
export function formatErrors(errors: ErrorObject[] | null | undefined): string {
  if (!errors || errors.length === 0) return 'unknown validation error';
  return errors.map(describeError).join('; ');
}

export function describeError(e: ErrorObject): string {
  let path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  let reason = e.message ?? 'is invalid';
  if (e.keyword === 'additionalProperties') {
    const extra = (e.params as { additionalProperty: string }).additionalProperty;
    path = path ? `${path}.${extra}` : extra;
    reason = 'unknown key';
  } else if (e.keyword === 'required') {
    const missing = (e.params as { missingProperty: string }).missingProperty;
    path = path ? `${path}.${missing}` : missing;
    reason = 'is required';
  } else if (e.keyword === 'enum' || e.keyword === 'const') {
    reason = `${e.message}: ${JSON.stringify((e.params as { allowedValues?: unknown; allowedValue?: unknown }).allowedValues ?? (e.params as { allowedValue?: unknown }).allowedValue)}`;
  }
  return `${path || '(root)'}: ${reason}`;
}
