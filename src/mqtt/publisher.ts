/**
 * Publishing typed by the topic table: a payload must match its topic's schema (at compile time), and
 * QoS, retain, content type and expiry come from the table, never from the call site. Direct topics
 * go out at once (publishTo); durable ones become outbox messages (outboxMessage) that delivery.ts sends.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import type { IClientOptions, IClientPublishOptions } from 'mqtt';
import type { Config } from '../config/schema.js';
import type { OutboxMessage } from './outbox.js';
import {
  TOPIC_TABLE,
  type DirectTopic,
  type DurableTopic,
  type ExpiryKey,
  type TopicKey,
  type TopicTable,
} from './topic-table.js';
import type { Topics } from './topics.js';

/** What a topic carries: the Static type of its schema, or raw bytes for a binary topic. */
export type PayloadOf<K extends TopicKey> = TopicTable[K]['schema'] extends infer S extends TSchema
  ? Static<S>
  : Buffer;

/** The part of an mqtt.js client a publish needs (tests pass a recording fake). */
export interface PublishClient {
  publishAsync(topic: string, message: string | Buffer, opts?: IClientPublishOptions): Promise<unknown>;
  options: { protocolVersion?: IClientOptions['protocolVersion'] };
}

type V5Properties = NonNullable<IClientPublishOptions['properties']>;

/**
 * The publish options of a topic: its QoS and retain, and under MQTT 5 its content type, expiry and `extra`
 * properties.
 */
export function publishOptions(
  key: TopicKey,
  mqtt: Pick<Config['mqtt'], ExpiryKey>,
  protocolVersion: number | undefined,
  extra: V5Properties = {},
): IClientPublishOptions {
  const t = TOPIC_TABLE[key];
  const opts: IClientPublishOptions = { qos: t.qos, retain: t.retain };
  if (protocolVersion !== 5) return opts; // properties exist only in MQTT 5
  const props: V5Properties = { ...extra };
  if ('contentType' in t) props.contentType = t.contentType;
  if (t.expiry !== null) props.messageExpiryInterval = mqtt[t.expiry];
  return Object.keys(props).length ? { ...opts, properties: props } : opts;
}

/** The payload as it goes on the wire: JSON for a schema topic, the bytes themselves for a binary one. */
export function encodePayload<K extends TopicKey>(key: K, payload: PayloadOf<K>): string | Buffer {
  return TOPIC_TABLE[key].schema === 'binary' ? (payload as Buffer) : JSON.stringify(payload);
}

/** Publishes to a direct topic with the table's options; resolves when sent (QoS 0) or acknowledged. */
export async function publishTo<K extends DirectTopic>(
  client: PublishClient,
  topics: Topics,
  key: K,
  payload: PayloadOf<K>,
  mqtt: Pick<Config['mqtt'], ExpiryKey>,
  extra?: V5Properties,
): Promise<void> {
  await client.publishAsync(
    topics.of(key),
    encodePayload(key, payload),
    publishOptions(key, mqtt, client.options.protocolVersion, extra),
  );
}

/** A durable topic's message for the outbox (delivery.ts sends it with the table's QoS). */
export function outboxMessage<K extends DurableTopic>(
  key: K,
  topic: string,
  payload: PayloadOf<K>,
  alsoTo?: OutboxMessage['alsoTo'],
): Omit<OutboxMessage, 'seq' | 'createdAt'> {
  return { kind: key, topic, payload: JSON.stringify(payload), ...(alsoTo ? { alsoTo } : {}) };
}

/** The Last Will: the broker publishes it on the status topic, with the status topic's QoS and retain. */
export function lastWill(topic: string, payload: PayloadOf<'status'>): NonNullable<IClientOptions['will']> {
  return {
    topic,
    payload: Buffer.from(JSON.stringify(payload)),
    qos: TOPIC_TABLE.status.qos,
    retain: TOPIC_TABLE.status.retain,
  };
}
