/**
 * Every command on request/<command>, as data: the schema its request must match (the router
 * validates it with Ajv before the handler runs), the schema of the `result` it answers with (the
 * handlers are typed by it), and the line docs/mqtt.md shows. Adding a command here makes the router
 * demand a handler for it (CommandRouter's handler map is typed by this table).
 */
import { Type, type Static, type TProperties } from '@sinclair/typebox';
import { ConfigSchema } from '../config/schema.js';
import { runtimeKeys } from '../config/patch.js';
import { NoduleSchema, Rect, RleSchema, Transaction } from './payloads.js';

/** A request: the shared `transaction` plus the command's own fields. Other keys are ignored (as before). */
const request = <P extends TProperties>(props: P) =>
  Type.Object({ transaction: Type.Optional(Transaction), ...props }, { additionalProperties: true });

const SnapshotResult = Type.Object({
  seq: Type.Integer({ description: 'frame sequence number of the source' }),
  capturedAt: Type.Integer({ description: 'ms since the Unix epoch' }),
  width: Type.Integer({ description: 'model frame width (the ROI scaled)' }),
  height: Type.Integer(),
  roi: Rect,
  nodules: Type.Array(NoduleSchema),
  maskRle: RleSchema,
  maskPngBase64: Type.String({ description: 'the mask as a PNG, base64' }),
});

export const COMMAND_TABLE = {
  ping: {
    request: request({}),
    result: Type.Object({ pong: Type.Literal(true) }),
    what: '`{ "pong": true }`',
  },
  get_config: {
    request: request({}),
    result: ConfigSchema,
    what: 'the effective config (broker password and live-view token redacted)',
  },
  set_config: {
    request: request({
      config: Type.Object(
        {},
        {
          additionalProperties: true,
          description:
            'a partial config merged over the current one (JSON merge patch: null removes a key); ' +
            `only the runtime keys (${runtimeKeys().join(', ')}); ` +
            'any other key is refused, named, and nothing is applied',
        },
      ),
    }),
    result: ConfigSchema,
    what:
      'the new config (redacted); a change of `alerts` closes open tracks (nodule_cleared, reason `config_changed`); ' +
      'invalid → `ok: false` with the key path and reason, config unchanged; a change of `capture.*` restarts the ' +
      'pipeline, at most once per 30 s together with `restart_pipeline` (else refused)',
  },
  snapshot: {
    request: request({}),
    result: SnapshotResult,
    what: 'the next processed frame: nodules, `maskRle`, `maskPngBase64`',
  },
  restart_pipeline: {
    request: request({}),
    result: Type.Object({ restarted: Type.Literal(true) }),
    what:
      '`{ "restarted": true }`; at most one restart per 30 s, this or a `set_config` that changes `capture.*` ' +
      '(detection is blind while capture restarts), others refused',
  },
  update: {
    request: request({
      url: Type.String({
        minLength: 1,
        maxLength: 2000,
        description: 'URL of the bundle manifest (https://, or file:// when updates.allowFileUrls)',
      }),
    }),
    result: Type.Object({ accepted: Type.Literal(true), url: Type.String() }),
    what:
      '`{ "accepted": true, "url": ... }` at once; ' +
      'the install runs on and reports every step on `update` (see docs/updates.md)',
  },
} as const;

export type CommandTable = typeof COMMAND_TABLE;
export type CommandName = keyof CommandTable;
export const COMMANDS = Object.keys(COMMAND_TABLE) as CommandName[];
export type CommandRequest<C extends CommandName = CommandName> = Static<CommandTable[C]['request']>;
export type CommandResult<C extends CommandName = CommandName> = Static<CommandTable[C]['result']>;
export type SnapshotResult = Static<typeof SnapshotResult>;
