/**
 * request/<command> -> response: parsing, validation and dispatch. Every request gets an answer
 * (ok or an error with the reason); nothing a caller sends can stop the daemon.
 */
import type { Config } from '../config/schema.js';
import { ConfigError, validateConfig } from '../config/load.js';
import { COMMANDS, type CommandName } from './payloads.js';

export interface CommandTarget {
  config(): Config;
  /** validated config: apply it (restarts the pipeline) */
  applyConfig(c: Config): Promise<void>;
  snapshot(timeoutMs: number): Promise<unknown>;
  restartPipeline(): Promise<void>;
}

export interface CommandReply {
  command: string;
  transaction: string | number | null;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/** Keys set_config may change while running; the rest need a restart of the service. */
export const RUNTIME_KEYS = ['capture', 'postprocess', 'alerts', 'logLevel'] as const;

export function redact(c: Config): Config {
  const copy = structuredClone(c);
  if (copy.mqtt.password) copy.mqtt.password = '***';
  return copy;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7386-style merge: objects merge, everything else replaces. */
export function mergePatch(base: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const out: Record<string, unknown> = isPlainObject(base) ? { ...base } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]; // back to the default (roi, pixelSpacingMm default to null anyway)
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export class CommandRouter {
  constructor(
    private readonly target: CommandTarget,
    private readonly maxBytes: number,
  ) {}

  async handle(command: string, payload: Buffer): Promise<CommandReply> {
    const reply = (ok: boolean, transaction: CommandReply['transaction'], body: { result?: unknown; error?: string }): CommandReply => ({ command, transaction, ok, ...body });
    if (payload.length > this.maxBytes) return reply(false, null, { error: `payload of ${payload.length} bytes exceeds the limit of ${this.maxBytes}` });
    let req: unknown = {};
    if (payload.length > 0) {
      try {
        req = JSON.parse(payload.toString('utf8'));
      } catch (err) {
        return reply(false, null, { error: `payload is not JSON: ${(err as Error).message}` });
      }
    }
    if (!isPlainObject(req)) return reply(false, null, { error: 'payload must be a JSON object' });
    const tx = req.transaction;
    if (tx !== undefined && typeof tx !== 'string' && typeof tx !== 'number') {
      return reply(false, null, { error: 'transaction: must be a string or a number' });
    }
    if (typeof tx === 'string' && tx.length > 200) return reply(false, null, { error: 'transaction: longer than 200 characters' });
    const transaction = tx ?? null;
    if (!(COMMANDS as readonly string[]).includes(command)) {
      return reply(false, transaction, { error: `unknown command "${command}"; known: ${COMMANDS.join(', ')}` });
    }
    try {
      return reply(true, transaction, { result: await this.dispatch(command as CommandName, req) });
    } catch (err) {
      return reply(false, transaction, { error: (err as Error).message });
    }
  }

  private async dispatch(command: CommandName, req: Record<string, unknown>): Promise<unknown> {
    switch (command) {
      case 'ping':
        return { pong: true };
      case 'get_config':
        return redact(this.target.config());
      case 'set_config': {
        const patch = req.config;
        if (!isPlainObject(patch)) throw new Error('config: must be an object (a partial config to merge)');
        const refused = Object.keys(patch).filter((k) => !(RUNTIME_KEYS as readonly string[]).includes(k));
        if (refused.length) {
          throw new Error(`${refused.join(', ')}: cannot be changed at runtime (allowed: ${RUNTIME_KEYS.join(', ')}); edit the config file and restart`);
        }
        let next: Config;
        try {
          next = validateConfig(mergePatch(this.target.config(), patch), 'set_config');
        } catch (err) {
          if (err instanceof ConfigError) throw new Error(err.message);
          throw err;
        }
        await this.target.applyConfig(next);
        return redact(next);
      }
      case 'snapshot':
        return this.target.snapshot(10_000);
      case 'restart_pipeline':
        await this.target.restartPipeline();
        return { restarted: true };
    }
  }
}
