/** One Ajv instance setup shared by every schema boundary (config, model card, MQTT payloads, bundles). */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { Type, type TSchema, type Static } from '@sinclair/typebox';

// ajv-formats ships CJS with a default export; under NodeNext the callable sits on .default.
const addFormats = (addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule;

/**
 * `firstErrorOnly`: for input from the network (MQTT requests, bundle manifests), where Ajv's every-error mode
 * lets a crafted document of many bad items cost seconds of CPU and megabytes of messages; a config file keeps
 * every error, which is what its author needs.
 */
export function makeAjv(opts: { useDefaults?: boolean; coerceTypes?: boolean; firstErrorOnly?: boolean } = {}): Ajv {
  const ajv = new Ajv({
    allErrors: !opts.firstErrorOnly,
    strict: false,
    useDefaults: opts.useDefaults ?? false,
    coerceTypes: opts.coerceTypes ?? false,
  });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  return ajv;
}

export function compileSchema<T extends TSchema>(schema: T, ajv: Ajv = makeAjv()): ValidateFunction<Static<T>> {
  return ajv.compile(schema) as ValidateFunction<Static<T>>;
}

/** Turns Ajv errors into "key.path: reason" lines, which is what an operator needs to fix a file. */
const MAX_LISTED_ERRORS = 8;
const MAX_ERROR_CHARS = 200;

/** The first few errors, each cut short: a reason goes into logs and MQTT answers, whatever the input's size. */
export function formatErrors(errors: ErrorObject[] | null | undefined): string {
  if (!errors || errors.length === 0) return 'unknown validation error';
  const listed = errors
    .slice(0, MAX_LISTED_ERRORS)
    .map(describeError)
    .map((e) => (e.length > MAX_ERROR_CHARS ? `${e.slice(0, MAX_ERROR_CHARS)}…` : e));
  const more = errors.length - listed.length;
  return listed.join('; ') + (more > 0 ? `; and ${more} more` : '');
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
    const params = e.params as { allowedValues?: unknown; allowedValue?: unknown };
    reason = `${e.message}: ${JSON.stringify(params.allowedValues ?? params.allowedValue)}`;
  }
  return `${path || '(root)'}: ${reason}`;
}

/**
 * `runtime: true` on a key (and so on everything under it) lets `set_config` and config bundles
 * change it while running. Only keys that can neither run nor read anything: thresholds, alert
 * tuning, rates, the log level. Program and file paths, devices, URLs and keys are restart-only:
 * they come from the config file. (src/config/patch.ts enforces it; docs/config.md shows it.)
 */
export const RUNTIME = { runtime: true } as const;

/** A config section: a closed object whose keys all have defaults, so the section defaults to {}. */
export const section = <T extends Record<string, TSchema>>(
  props: T,
  description: string,
  extra: { runtime?: true } = {},
) => Type.Object(props, { additionalProperties: false, description, default: {}, ...extra });
