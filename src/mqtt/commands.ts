/**
 * request/<command> -> response: parsing, validation and dispatch. Every request gets an answer
 * (ok or an error with the reason); nothing a caller sends can stop the daemon.
 */
import type { Config } from '../config/schema.js';
import { ConfigError } from '../config/load.js';
import { applyRuntimePatch } from '../config/patch.js';
import { COMMANDS, type CommandName } from './payloads.js';

/** What commands act on beyond the MQTT service itself: supplied by the daemon's wiring. */
export interface CommandHandlers {
  /** validated config: apply it everywhere (alerts, log level, pipeline) */
  applyConfig(c: Config): Promise<void>;
  restartPipeline(): Promise<void>;
  /** start installing the bundle at url; progress goes to the update topic */
  update(url: string, transaction: string | number | null): Promise<unknown>;
}

export interface CommandTarget extends CommandHandlers {
  config(): Config;
  snapshot(timeoutMs: number): Promise<unknown>;
}

export interface CommandReply {
  command: string;
  transaction: string | number | null;
  ok: boolean;
  result?: unknown;
  error?: string;
}

export function redact(c: Config): Config {
  const copy = structuredClone(c);
  if (copy.mqtt.password) copy.mqtt.password = '***';
  if (copy.liveView.token) copy.liveView.token = '***'; // the live view shows patient images
  return copy;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class CommandRouter {
  constructor(
    private readonly target: CommandTarget,
    private readonly maxBytes: number,
  ) {}

  /** `refusal`: a reason found by the transport (e.g. a bad response topic) to refuse the request, with its transaction. */
  async handle(command: string, payload: Buffer, refusal?: string): Promise<CommandReply> {
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
    if (refusal) return reply(false, transaction, { error: refusal });
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
        let next: Config;
        try {
          next = applyRuntimePatch(this.target.config(), req.config, 'config');
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
      case 'update': {
        if (typeof req.url !== 'string' || req.url.length === 0 || req.url.length > 2000) throw new Error('url: must be a string (the bundle manifest URL)');
        const tx = req.transaction;
        return this.target.update(req.url, typeof tx === 'string' || typeof tx === 'number' ? tx : null);
      }
    }
  }
}
