/**
 * request/<command> -> response: parsing, validation and dispatch. Every request gets an answer
 * (ok or an error with the reason); nothing a caller sends can stop the daemon.
 */
import type { ValidateFunction } from 'ajv';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../config/load.js';
import { applyRuntimePatch, restartsPipeline } from '../config/patch.js';
import { compileSchema, formatErrors, makeAjv } from '../util/schema.js';
import { isPlainObject } from '../util/merge-patch.js';
import {
  COMMAND_TABLE,
  COMMANDS,
  type CommandName,
  type CommandRequest,
  type CommandResult,
  type SnapshotResult,
} from './command-table.js';

/** What commands act on beyond the MQTT service itself: supplied by the daemon's wiring. */
export interface CommandHandlers {
  /** validated config: apply it everywhere (alerts, log level, pipeline) */
  applyConfig(c: Config): Promise<void>;
  restartPipeline(): Promise<void>;
  /** start installing the bundle at url; progress goes to the update topic */
  update(url: string, transaction: string | number | null): Promise<CommandResult<'update'>>;
}

export interface CommandTarget extends CommandHandlers {
  config(): Config;
  snapshot(timeoutMs: number): Promise<SnapshotResult>;
}

export interface CommandReply {
  command: string;
  transaction: string | number | null;
  ok: boolean;
  result?: CommandResult;
  error?: string;
}

/** One handler per command in the table, typed by its request and result schemas. */
type Handlers = { [C in CommandName]: (req: CommandRequest<C>) => Promise<CommandResult<C>> };

export function redact(c: Config): Config {
  const copy = structuredClone(c);
  if (copy.mqtt.password) copy.mqtt.password = '***';
  if (copy.liveView.token) copy.liveView.token = '***'; // the live view shows patient images
  return copy;
}

/**
 * At most one pipeline restart (restart_pipeline, or a set_config that changes capture) per this interval:
 * detection is blind while capture restarts, and anyone on the broker may send the command, so a stream of them
 * would keep the box from seeing anything.
 */
export const RESTART_MIN_INTERVAL_MS = 30_000;

const QUIETER_THAN_WARN: readonly string[] = ['error', 'fatal'];

export class CommandRouter {
  private readonly validators: { [C in CommandName]: ValidateFunction<CommandRequest<C>> };
  private readonly handlers: Handlers;
  private lastRestart = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly target: CommandTarget,
    private readonly maxBytes: number,
    private readonly now: () => number = Date.now,
  ) {
    // anyone on the broker may send a request: its first error is answered, found without walking the rest
    const untrusted = makeAjv({ firstErrorOnly: true });
    this.validators = Object.fromEntries(
      COMMANDS.map((c) => [c, compileSchema(COMMAND_TABLE[c].request, untrusted)]),
    ) as CommandRouter['validators'];
    this.handlers = {
      ping: async () => ({ pong: true }),
      get_config: async () => redact(this.target.config()),
      set_config: async (req) => {
        let next: Config;
        try {
          // the hospital may narrow what an unsigned message can change (signed bundles are not limited by it)
          const current = this.target.config();
          next = applyRuntimePatch(current, req.config, 'config', {
            keys: current.mqtt.setConfigKeys,
            name: 'mqtt.setConfigKeys',
          });
        } catch (err) {
          if (err instanceof ConfigError) throw new Error(err.message);
          throw err;
        }
        // an unsigned request may make the log louder, not quieter: "error" would hide the warnings that show
        // refused requests and failed updates before whatever the sender does next
        if (QUIETER_THAN_WARN.includes(next.logLevel) && next.logLevel !== this.target.config().logLevel) {
          throw new Error(
            `logLevel: "${next.logLevel}" would hide warnings; set_config allows trace, debug, info and warn ` +
              '(a signed config bundle may set any level)',
          );
        }
        // a capture change restarts the pipeline: the same limit as restart_pipeline, or a stream of ROI changes
        // (where mqtt.setConfigKeys allows them) would keep the box blind as surely as a stream of restarts
        const restarts = restartsPipeline(this.target.config(), next);
        if (restarts) this.checkRestartInterval('a capture change restarts the pipeline: ');
        await this.target.applyConfig(next);
        if (restarts) this.lastRestart = this.now();
        return redact(next);
      },
      snapshot: () => this.target.snapshot(10_000),
      restart_pipeline: async () => {
        this.checkRestartInterval('');
        await this.target.restartPipeline();
        this.lastRestart = this.now(); // a restart that failed leaves the next one free to try
        return { restarted: true };
      },
      update: (req) => this.target.update(req.url, req.transaction ?? null),
    };
  }

  /** Throws when the pipeline restarted (by either command) less than RESTART_MIN_INTERVAL_MS ago. */
  private checkRestartInterval(prefix: string): void {
    const since = this.now() - this.lastRestart;
    if (since < RESTART_MIN_INTERVAL_MS) {
      throw new Error(
        `${prefix}the pipeline restarted ${Math.round(since / 1000)} s ago; at most one restart per ` +
          `${RESTART_MIN_INTERVAL_MS / 1000} s`,
      );
    }
  }

  /** Why a payload of this many bytes is refused by its size alone, or null. */
  sizeRefusal(bytes: number): string | null {
    return bytes > this.maxBytes ? `payload of ${bytes} bytes exceeds the limit of ${this.maxBytes}` : null;
  }

  /**
   * `refusal`: a reason found by the transport (e.g. a bad response topic) to refuse the request,
   * with its transaction.
   */
  async handle(command: string, payload: Buffer, refusal?: string): Promise<CommandReply> {
    const reply = (
      ok: boolean,
      transaction: CommandReply['transaction'],
      body: { result?: CommandResult; error?: string },
    ): CommandReply => ({ command, transaction, ok, ...body });
    const tooBig = this.sizeRefusal(payload.length);
    if (tooBig) return reply(false, null, { error: tooBig });
    let req: unknown = {};
    if (payload.length > 0) {
      try {
        req = JSON.parse(payload.toString('utf8'));
      } catch (err) {
        return reply(false, null, { error: `payload is not JSON: ${(err as Error).message}` });
      }
    }
    if (!isPlainObject(req)) return reply(false, null, { error: 'payload must be a JSON object' });
    // the transaction first, by hand: every later refusal carries it, and its reasons read better than Ajv's anyOf
    const tx = req.transaction;
    if (tx !== undefined && typeof tx !== 'string' && typeof tx !== 'number') {
      return reply(false, null, { error: 'transaction: must be a string or a number' });
    }
    if (typeof tx === 'string' && tx.length > 200)
      return reply(false, null, { error: 'transaction: longer than 200 characters' });
    const transaction = tx ?? null;
    if (refusal) return reply(false, transaction, { error: refusal });
    if (!isCommand(command)) {
      return reply(false, transaction, {
        error: `unknown command "${command.slice(0, 100)}"; known: ${COMMANDS.join(', ')}`,
      });
    }
    const valid = this.validators[command];
    if (!valid(req)) return reply(false, transaction, { error: formatErrors(valid.errors) });
    try {
      return reply(true, transaction, { result: await this.run(command, req) });
    } catch (err) {
      return reply(false, transaction, { error: (err as Error).message });
    }
  }

  private run<C extends CommandName>(command: C, req: CommandRequest<C>): Promise<CommandResult<C>> {
    // TypeScript cannot tie the indexed handler to its request type on a generic key; the table does
    return (this.handlers[command] as (r: CommandRequest<C>) => Promise<CommandResult<C>>)(req);
  }
}

function isCommand(command: string): command is CommandName {
  return Object.hasOwn(COMMAND_TABLE, command);
}
