/**
 * The outbox's delivery loop: oldest first, one at a time, removed only after PUBACK, so order
 * holds and nothing is lost across outages. No single message may block the rest: one with a
 * topic that cannot be published, one the broker refuses (PUBACK error code), or one that fails
 * maxAttempts times in a row while connected goes to the dead-letter folder, logged with its
 * reason and counted in telemetry.
 */
import type { IClientPublishOptions, MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Outbox, OutboxMessage } from './outbox.js';
import type { Config } from '../config/schema.js';
import { publishOptions } from './publisher.js';
import { DURABLE_TOPICS, type ExpiryKey } from './topic-table.js';
import { publishTopicProblem, type Topics } from './topics.js';

export interface DeliveryDeps {
  outbox: Outbox;
  /** the current client (null while stopping) */
  client: () => MqttClient | null;
  running: () => boolean;
  topics: Topics;
  logger: Logger;
  limits: () => { maxAttempts: number; attemptTimeoutS: number };
  /** the config a topic's expiry is read from (the one now in force) */
  expiries: () => Pick<Config['mqtt'], ExpiryKey>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs until deps.running() is false. */
export async function deliverOutbox(d: DeliveryDeps): Promise<void> {
  let failingSeq = -1;
  let failures = 0;
  while (d.running()) {
    const c = d.client();
    if (!c?.connected) {
      await sleep(200);
      continue;
    }
    const msg = await d.outbox.peek();
    if (!msg) {
      await Promise.race([d.outbox.waitForMessage(), sleep(1000)]);
      continue;
    }
    try {
      const bad = undeliverable(msg, d.topics);
      if (bad) {
        await deadLetter(d, msg, bad);
        continue;
      }
      try {
        await publishOnce(
          c,
          msg,
          publishOptions(msg.kind, d.expiries(), c.options.protocolVersion),
          d.limits().attemptTimeoutS * 1000,
        );
      } catch (err) {
        // this loop owns retries: take the message out of mqtt.js's store so it is not resent behind our back
        purgeInFlight(c, msg);
        throw err;
      }
      await d.outbox.ack(msg.seq);
      failures = 0;
    } catch (err) {
      if (!d.running()) break;
      const e = err as Error & { code?: unknown };
      if (typeof e.code === 'number' && e.code >= 0x80) {
        await deadLetter(d, msg, `refused by the broker (reason code 0x${e.code.toString(16)}): ${e.message}`);
        continue;
      }
      if (failingSeq !== msg.seq) {
        failingSeq = msg.seq;
        failures = 0;
      }
      failures++;
      if (failures >= d.limits().maxAttempts) {
        await deadLetter(d, msg, `delivery failed ${failures} times in a row; last: ${e.message}`);
        failures = 0;
        continue;
      }
      d.logger.warn({ err: e, seq: msg.seq, attempt: failures }, 'outbox delivery failed; will retry');
      await sleep(500);
    }
  }
}

/** Why a stored message can never be published as it is (e.g. a file from before topics were checked), or null. */
export function undeliverable(msg: OutboxMessage, topics: Topics): string | null {
  const kind: unknown = msg.kind; // from a file on disk
  if (!(DURABLE_TOPICS as unknown[]).includes(kind))
    return `kind ${JSON.stringify(String(kind).slice(0, 50))} is not a durable topic`;
  const main = publishTopicProblem(msg.topic);
  if (main) return `topic ${JSON.stringify(msg.topic.slice(0, 200))} ${main}`;
  if (msg.alsoTo) {
    const p = topics.responseTopicProblem(msg.alsoTo.topic);
    if (p) return `response topic ${JSON.stringify(msg.alsoTo.topic.slice(0, 200))} ${p}`;
  }
  return null;
}

async function deadLetter(d: DeliveryDeps, msg: OutboxMessage, reason: string): Promise<void> {
  try {
    await d.outbox.deadLetter(msg, reason);
  } catch (err) {
    d.logger.error({ err, seq: msg.seq }, 'could not move an outbox message to the dead letters; will retry');
    await sleep(1000);
    return;
  }
  d.logger.error(
    {
      err: new Error(reason),
      seq: msg.seq,
      kind: msg.kind,
      topic: msg.topic.slice(0, 200),
      deadLettered: d.outbox.deadLettered,
    },
    'outbox message moved to the dead letters',
  );
}

/**
 * One attempt: the message (and its MQTT 5 response copy) acknowledged, or an error on timeout or when the
 * connection drops.
 */
function publishOnce(c: MqttClient, msg: OutboxMessage, opts: IClientPublishOptions, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      c.removeListener('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onClose = () => finish(new Error('connection closed before the broker acknowledged'));
    const timer = setTimeout(() => finish(new Error(`no acknowledgement within ${timeoutMs} ms`)), timeoutMs);
    c.once('close', onClose);
    // opts come from the topic table: durable topics are QoS >= 1, so publishAsync resolves on the broker's
    // acknowledgement
    const send = async () => {
      await c.publishAsync(msg.topic, msg.payload, opts);
      if (msg.alsoTo) {
        const correlationData = msg.alsoTo.correlationData
          ? Buffer.from(msg.alsoTo.correlationData, 'base64')
          : undefined;
        const v5 = c.options.protocolVersion === 5;
        await c.publishAsync(
          msg.alsoTo.topic,
          msg.payload,
          v5 ? { ...opts, properties: { ...opts.properties, correlationData } } : opts,
        );
      }
    };
    send().then(
      () => finish(),
      (err: Error) => finish(err),
    );
  });
}

/** Drops the in-flight QoS 1 copies of an outbox message from the MQTT client's own resend store. */
function purgeInFlight(c: MqttClient, msg: OutboxMessage): void {
  const topics = [msg.topic, msg.alsoTo?.topic];
  for (const id of Object.keys(c.outgoing).map(Number)) {
    c.outgoingStore.get({ messageId: id }, (err?: Error | null, packet?: { cmd?: string; topic?: string }) => {
      if (!err && packet?.cmd === 'publish' && topics.includes(packet.topic)) c.removeOutgoingMessage(id);
    });
  }
}
