/**
 * Every MQTT topic of a box, as data: its name under <base>/<deviceId>/, who sends it to whom, QoS,
 * retain, whether it goes through the on-disk outbox (durable), its MQTT 5 expiry and its payload
 * schema. The publisher (publisher.ts), the outbox delivery (delivery.ts), the topic strings
 * (topics.ts), the subscription and the Last Will take these facts from here, and docs/mqtt.md is
 * generated from it: a fact changed here changes everywhere.
 */
import type { TSchema } from '@sinclair/typebox';
import type { Config } from '../config/schema.js';
import {
  AlertPayload,
  RequestPayload,
  ResponsePayload,
  ResultPayload,
  StatusPayload,
  TelemetryPayload,
  UpdatePayload,
} from './payloads.js';

/** Where the command name goes in a request/response topic name. */
export const COMMAND_SLOT = '<command>';

/** The numeric `mqtt.*` config keys a topic may take its expiry from (seconds; read at publish time). */
export type ExpiryKey = {
  [K in keyof Config['mqtt']]-?: Config['mqtt'][K] extends number ? K : never;
}[keyof Config['mqtt']];

interface TopicBase {
  /** the topic under <base>/<deviceId>/; COMMAND_SLOT stands for the command */
  name: string;
  from: 'daemon' | 'caller';
  /** who reads it (docs only) */
  to: string;
  retain: boolean;
  /** MQTT 5 message expiry: the `mqtt.<key>` config value in seconds, read at each publish; null = none */
  expiry: ExpiryKey | null;
  /** the JSON payload's schema, or 'binary' (raw bytes of `contentType`) */
  schema: TSchema | 'binary';
  contentType?: string;
  /** one line for docs/mqtt.md */
  what: string;
}

/**
 * Durable topics are stored in the outbox and deleted on the broker's PUBACK, so they need QoS >= 1.
 * For `from: 'caller'` topics, qos is the daemon's subscription QoS.
 */
export type TopicSpec = TopicBase & ({ durable: true; qos: 1 | 2 } | { durable: false; qos: 0 | 1 | 2 });

export const TOPIC_TABLE = {
  status: {
    name: 'status',
    from: 'daemon',
    to: 'all',
    qos: 1,
    retain: true,
    durable: false,
    expiry: null,
    schema: StatusPayload,
    what:
      'online / degraded / offline (Last Will). Birth message on every (re)connect; ' +
      'republished when capture state changes.',
  },
  telemetry: {
    name: 'telemetry',
    from: 'daemon',
    to: 'fleet',
    qos: 0,
    retain: false,
    durable: false,
    expiry: null,
    schema: TelemetryPayload,
    what: 'every `mqtt.telemetryIntervalS`: fps, drops, per-stage p50/p99, outbox, CPU load/temperature, memory, disk.',
  },
  result: {
    name: 'result',
    from: 'daemon',
    to: 'display',
    qos: 0,
    retain: false,
    durable: false,
    expiry: 'resultExpiryS',
    schema: ResultPayload,
    what: 'one per processed frame. Dropped (and counted) while offline.',
  },
  mask: {
    name: 'mask',
    from: 'daemon',
    to: 'display',
    qos: 0,
    retain: false,
    durable: false,
    expiry: 'resultExpiryS',
    schema: 'binary',
    contentType: 'image/png',
    what:
      'PNG bytes (`mqtt.mask.mode: png`), content type `image/png`, ' +
      'user properties `seq`, `capturedAt`, `width`, `height`. Rate limited. Off by default.',
  },
  alert: {
    name: 'alert',
    from: 'daemon',
    to: 'integration',
    qos: 1,
    retain: false,
    durable: true,
    expiry: null,
    schema: AlertPayload,
    what:
      'nodule_detected / nodule_updated / nodule_cleared (with its `reason`): in order, ' +
      'none lost across broker outages or restarts; deduplicate on `messageId`. ' +
      '`trackId` is unique across restarts. No alert while the imaging gate says no imaging ' +
      '(`result.imaging: false`). See docs/alerts.md.',
  },
  update: {
    name: 'update',
    from: 'daemon',
    to: 'fleet',
    qos: 1,
    retain: false,
    durable: true,
    expiry: null,
    schema: UpdatePayload,
    what:
      'every step of a model/config update: downloading, verifying, ' +
      'testing (self-test, then the health window), active, rolled_back, failed (with the reason). ' +
      'See docs/updates.md.',
  },
  request: {
    name: `request/${COMMAND_SLOT}`,
    from: 'caller',
    to: 'daemon',
    qos: 1,
    retain: false,
    durable: false,
    expiry: null,
    schema: RequestPayload,
    what:
      "one of the commands (see Commands: each one's fields and result); " +
      '`update` (`{"url": ...}`) is answered at once with `accepted`, its progress goes to `update`.',
  },
  response: {
    name: `response/${COMMAND_SLOT}`,
    from: 'daemon',
    to: 'caller',
    qos: 1,
    retain: false,
    durable: true,
    expiry: null,
    schema: ResponsePayload,
    what:
      'the answer, matched by `transaction`; also sent to the MQTT 5 response topic with the correlation data, ' +
      'when the request carries them: only a plain topic (no `+`/`#`, at most 512 bytes) ' +
      'under `<base>/<id>/response/` (or `mqtt.responseTopicPrefix`); any other response topic refuses the request, ' +
      'answered here. A message that cannot be delivered goes to the dead letters (see Delivery guarantees).',
  },
} as const satisfies Record<string, TopicSpec>;

export type TopicTable = typeof TOPIC_TABLE;
export type TopicKey = keyof TopicTable;
export const TOPIC_KEYS = Object.keys(TOPIC_TABLE) as TopicKey[];

/** Topics stored in the outbox before they are sent (the outbox's message kinds). */
export type DurableTopic = { [K in TopicKey]: TopicTable[K]['durable'] extends true ? K : never }[TopicKey];
export const DURABLE_TOPICS = TOPIC_KEYS.filter((k): k is DurableTopic => TOPIC_TABLE[k].durable);

/** Topics the daemon publishes directly (best effort or retained), not through the outbox. */
export type DirectTopic = {
  [K in TopicKey]: TopicTable[K]['durable'] extends false
    ? TopicTable[K]['from'] extends 'daemon'
      ? K
      : never
    : never;
}[TopicKey];

/**
 * Every JSON payload's schema by topic name as docs/mqtt.md and the tests name it
 * ('status', 'response/<command>', ...).
 */
export const PAYLOADS: Record<string, TSchema> = Object.fromEntries(
  TOPIC_KEYS.flatMap((k) => {
    const s: TSchema | 'binary' = TOPIC_TABLE[k].schema;
    return s === 'binary' ? [] : [[TOPIC_TABLE[k].name, s]];
  }),
);
