/**
 * Runtime config changes (MQTT set_config and config bundles): a partial config merged over the
 * running one (RFC 7386), limited to the keys the schema marks `runtime: true`, validated whole.
 */
import type { TSchema } from '@sinclair/typebox';
import { ConfigError, validateConfig } from './load.js';
import { ConfigSchema, type Config } from './schema.js';
import { isPlainObject, mergePatch } from '../util/merge-patch.js';

function childrenOf(s: TSchema): Record<string, TSchema> {
  return s.type === 'object' && s.properties ? (s.properties as Record<string, TSchema>) : {};
}

function hasRuntimeInside(s: TSchema): boolean {
  return s.runtime === true || Object.values(childrenOf(s)).some(hasRuntimeInside);
}

/** Every key path that may change at runtime (a marked object stands for all its keys). */
export function runtimeKeys(schema: TSchema = ConfigSchema, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, s] of Object.entries(childrenOf(schema))) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (s.runtime === true) out.push(key);
    else out.push(...runtimeKeys(s, key));
  }
  return out;
}

/**
 * The key paths of a patch that are not runtime-settable. A whole restart-only subtree is named
 * once (`mqtt`), a mixed one down to the key (`capture.ffmpegPath`); a key the schema does not
 * know is named too (it cannot be runtime).
 */
export function restartOnlyKeys(patch: Record<string, unknown>, schema: TSchema = ConfigSchema, prefix = ''): string[] {
  const out: string[] = [];
  const children = childrenOf(schema);
  for (const [k, v] of Object.entries(patch)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const s = children[k];
    if (s === undefined || !hasRuntimeInside(s)) out.push(key);
    else if (s.runtime === true) continue;
    // a mixed object: only a partial object can be checked key by key (null or a scalar would reset it all)
    else if (isPlainObject(v)) out.push(...restartOnlyKeys(v, s, key));
    else out.push(key);
  }
  return out;
}

/** The key paths a patch sets: down to a scalar, an array or a null (which resets what is under it). */
function patchKeyPaths(patch: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(patch).flatMap(([k, v]) => {
    const key = prefix ? `${prefix}.${k}` : k;
    return isPlainObject(v) && Object.keys(v).length > 0 ? patchKeyPaths(v, key) : [key];
  });
}

/**
 * The key paths of a patch outside an allow-list of keys or subtrees (`alerts` allows `alerts.memoryS`;
 * `capture.roi` does not allow `capture`, which would reset it all). null allows everything.
 */
export function keysOutside(patch: Record<string, unknown>, allowed: readonly string[] | null): string[] {
  if (allowed === null) return [];
  return patchKeyPaths(patch).filter((key) => !allowed.some((a) => key === a || key.startsWith(`${a}.`)));
}

/**
 * The config that results from a runtime patch; ConfigError names the key and the reason. `allowed` narrows
 * the runtime keys further (MQTT set_config: mqtt.setConfigKeys; signed bundles: null, every runtime key).
 */
export function applyRuntimePatch(
  current: Config,
  patch: unknown,
  where: string,
  allowed: { keys: readonly string[] | null; name: string } = { keys: null, name: '' },
): Config {
  if (!isPlainObject(patch)) throw new ConfigError(`${where}: must be an object (a partial config to merge)`);
  const refused = restartOnlyKeys(patch);
  if (refused.length) {
    throw new ConfigError(
      `${where}: ${refused.join(', ')}: cannot be changed at runtime (runtime keys: ` +
        `${runtimeKeys().join(', ')}); edit the config file and restart`,
    );
  }
  const outside = keysOutside(patch, allowed.keys);
  if (outside.length) {
    throw new ConfigError(
      `${where}: ${outside.join(', ')}: not in ${allowed.name} (${allowed.keys!.join(', ')}); ` +
        'use a signed config bundle',
    );
  }
  return validateConfig(mergePatch(current, patch), where);
}

/**
 * Whether moving from `prev` to `next` restarts the pipeline: a capture change does (the source is rebuilt);
 * post-processing, alert and log settings apply to the next frame. The daemon acts on it, and set_config's
 * restart limit counts by it.
 */
export function restartsPipeline(prev: Config, next: Config): boolean {
  return JSON.stringify(next.capture) !== JSON.stringify(prev.capture);
}
