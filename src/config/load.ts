/** Loading, environment overrides and validation of the config; errors name the key and the reason. */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import cron from 'node-cron';
import YAML from 'yaml';
import { publicKeyProblem } from '../util/ed25519-key.js';
import { compileSchema, makeAjv, formatErrors } from '../util/schema.js';
import { ConfigSchema, type Config } from './schema.js';
import { isLoopbackHost } from '../util/loopback.js';
import { mergePatch } from '../util/merge-patch.js';

export class ConfigError extends Error {}

const ENV_PREFIX = 'THYROID_EDGE__';

const validate = compileSchema(ConfigSchema, makeAjv({ useDefaults: true }));

/**
 * Environment overrides: THYROID_EDGE__capture__source=images sets capture.source. Values are
 * parsed as JSON when they parse (numbers, booleans, arrays), otherwise taken as strings.
 */
export function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith(ENV_PREFIX) || v === undefined) continue;
    const path = k.slice(ENV_PREFIX.length).split('__').filter(Boolean);
    if (path.length === 0) continue;
    let node: Record<string, unknown> = out;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    let value: unknown = v;
    try {
      value = JSON.parse(v);
    } catch {
      /* a plain string */
    }
    node[path[path.length - 1] as string] = value;
  }
  return out;
}

/** `roiPending`: the ROI may still be missing (`thyroid-edge calibrate` is the command that finds it). */
export interface ValidateOptions {
  roiPending?: boolean;
}

/** Validate an already parsed object; fills defaults; throws ConfigError with key paths. */
export function validateConfig(raw: unknown, where = 'config', opts: ValidateOptions = {}): Config {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${where}: the top level must be a mapping of keys`);
  }
  const cfg = structuredClone(raw);
  if (!validate(cfg)) throw new ConfigError(`${where}: ${formatErrors(validate.errors)}`);
  checkSemantics(cfg as Config, where, opts);
  return cfg as Config;
}

export { isLoopbackHost };

/** Why a broker URL is refused (plain TCP/WebSocket to a non-loopback host), or null. */
function insecureTransport(url: string, allowInsecure: boolean): string | null {
  const u = new URL(url);
  const plain = ['mqtt:', 'tcp:', 'ws:'].includes(u.protocol);
  const loopback = isLoopbackHost(u.hostname);
  if (!plain || loopback || allowInsecure) return null;
  return (
    `mqtt.url: plain ${u.protocol.replace(':', '')} to ${u.hostname} is refused (patient data would cross ` +
    'the network unencrypted); use mqtts:// or wss://, or set mqtt.allowInsecure: true'
  );
}

export function checkTransport(url: string, allowInsecure: boolean): void {
  const problem = insecureTransport(url, allowInsecure);
  if (problem) throw new ConfigError(problem);
}

/** Rules a schema cannot say: which keys a source needs, secure transport. */
function checkSemantics(c: Config, where: string, opts: ValidateOptions): void {
  const problems: string[] = [];
  const src = c.capture.source;
  if ((src === 'v4l2' || src === 'file') && !c.capture.roi && !opts.roiPending) {
    problems.push(`capture.roi: is required for source "${src}" (run \`thyroid-edge calibrate\`)`);
  }
  if (src === 'file' && !c.capture.file.path) problems.push('capture.file.path: is required for source "file"');
  if (src === 'images' && !c.capture.images.dir) problems.push('capture.images.dir: is required for source "images"');
  if (c.capture.roi && src === 'v4l2') {
    const { x, y, width, height } = c.capture.roi;
    if (x + width > c.capture.v4l2.width || y + height > c.capture.v4l2.height) {
      problems.push(`capture.roi: lies outside the ${c.capture.v4l2.width}x${c.capture.v4l2.height} capture frame`);
    }
  }
  if (c.capture.roi && src === 'file') {
    const { x, y, width, height } = c.capture.roi;
    if (x + width > c.capture.file.width || y + height > c.capture.file.height) {
      problems.push(`capture.roi: lies outside the ${c.capture.file.width}x${c.capture.file.height} video frame`);
    }
  }
  const transport = c.mqtt.url ? insecureTransport(c.mqtt.url, c.mqtt.allowInsecure) : null;
  if (transport) problems.push(transport);
  if (c.mqtt.reconnectMinMs > c.mqtt.reconnectMaxMs)
    problems.push('mqtt.reconnectMinMs: must be <= mqtt.reconnectMaxMs');
  if ((c.mqtt.certFile && !c.mqtt.keyFile) || (!c.mqtt.certFile && c.mqtt.keyFile)) {
    problems.push(
      `mqtt.${c.mqtt.certFile ? 'keyFile' : 'certFile'}: is required with ` +
        `mqtt.${c.mqtt.certFile ? 'certFile' : 'keyFile'} (mTLS)`,
    );
  }
  const lv = c.liveView;
  if (lv.enabled && !isLoopbackHost(lv.host)) {
    if (!lv.token)
      problems.push(`liveView.token: is required to serve on ${lv.host} (not loopback): the page shows patient images`);
    if (!(lv.tlsCertFile && lv.tlsKeyFile) && !lv.allowInsecure)
      problems.push(
        `liveView.tlsCertFile: TLS (tlsCertFile + tlsKeyFile) is required on ${lv.host}, or set ` +
          'liveView.allowInsecure: true',
      );
  }
  if ((lv.tlsCertFile === null) !== (lv.tlsKeyFile === null))
    problems.push('liveView.tlsKeyFile: tlsCertFile and tlsKeyFile go together');
  c.updates.trustedKeys.forEach((k, i) => {
    const bad = publicKeyProblem(k);
    if (bad) problems.push(`updates.trustedKeys.${i}: ${bad}`);
  });
  c.updates.allowedHosts?.forEach((h, i) => {
    // the pattern admits "host:99999"; the URL parser, which checkUrl compares with, does not
    if (!URL.canParse(`https://${h}`)) problems.push(`updates.allowedHosts.${i}: "${h}" is not a host or host:port`);
  });
  if (c.updates.schedule !== null) {
    if (!cron.validate(c.updates.schedule))
      problems.push(`updates.schedule: "${c.updates.schedule}" is not a valid cron expression`);
    if (!c.updates.manifestUrl) problems.push('updates.manifestUrl: is required with updates.schedule');
  }
  if (c.updates.manifestUrl?.startsWith('file:') && !c.updates.allowFileUrls)
    problems.push('updates.manifestUrl: file:// needs updates.allowFileUrls: true');
  if (problems.length) throw new ConfigError(`${where}: ${problems.join('; ')}`);
}

/** Read one config file (YAML, or JSON by its extension) as a mapping; errors name the file. */
async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${path}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = extname(path) === '.json' ? JSON.parse(text) : (YAML.parse(text) ?? {});
  } catch (err) {
    throw new ConfigError(
      `${path}: not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`,
    );
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${path}: the top level must be a mapping of keys`);
  }
  return raw as Record<string, unknown>;
}

/**
 * Load config files in order, each merged over the ones before (mappings key by key, anything else
 * replaced, null removes a key: JSON merge patch), then the environment overrides, then validate. Layers
 * let an image carry the settings all boxes share and a box keep its own (deviceId, broker) beside them.
 */
export async function loadConfig(
  paths: string | readonly string[] | undefined,
  env: NodeJS.ProcessEnv = process.env,
  opts: ValidateOptions = {},
): Promise<Config> {
  const files = typeof paths === 'string' ? [paths] : (paths ?? []);
  let raw: Record<string, unknown> = {};
  for (const file of files) raw = mergePatch(raw, await readConfigFile(file)) as Record<string, unknown>;
  return validateConfig(applyEnvOverrides(raw, env), files.length ? files.join(' + ') : 'config', opts);
}

export function defaultConfig(): Config {
  return validateConfig({});
}

export function modelCardPath(c: Config): string {
  return c.model.card ?? `${c.model.path.replace(/\.onnx$/i, '')}.json`;
}
