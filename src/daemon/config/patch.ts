/**
 * Runtime config changes (MQTT set_config and config bundles): a partial config merged over the
 * running one (RFC 7386), limited to the keys that can change without a restart, validated whole.
 */
import { ConfigError, validateConfig } from './load.js';
import type { Config } from './schema.js';

/** Keys that may change while running; the rest need a restart of the service. */
export const RUNTIME_KEYS = ['capture', 'postprocess', 'alerts', 'imagingGate', 'logLevel'] as const;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7386-style merge: objects merge, everything else replaces, null deletes (back to default). */
export function mergePatch(base: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const out: Record<string, unknown> = isPlainObject(base) ? { ...base } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** The config that results from a runtime patch; ConfigError names the key and the reason. */
export function applyRuntimePatch(current: Config, patch: unknown, where: string): Config {
  if (!isPlainObject(patch)) throw new ConfigError(`${where}: must be an object (a partial config to merge)`);
  const refused = Object.keys(patch).filter((k) => !(RUNTIME_KEYS as readonly string[]).includes(k));
  if (refused.length) {
    throw new ConfigError(`${where}: ${refused.join(', ')}: cannot be changed at runtime (allowed: ${RUNTIME_KEYS.join(', ')}); edit the config file and restart`);
  }
  return validateConfig(mergePatch(current, patch), where);
}
