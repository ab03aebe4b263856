/**
 * The topic table is the single source of a topic's facts: every topic has a schema (or is binary),
 * docs/mqtt.md is generated from it, the Topics strings derive from it, no QoS/retain literal lives
 * elsewhere in src/mqtt, and the publisher sends with the table's QoS, retain, content type and expiry.
 * Unit tests of pure logic: the "client" is an in-process fake that records publish calls.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { IClientPublishOptions } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { COMMAND_TABLE, COMMANDS } from '../src/mqtt/command-table.js';
import { EXAMPLES, mqttMarkdown } from '../src/mqtt/docs.js';
import { undeliverable } from '../src/mqtt/delivery.js';
import type { StatusPayload, TelemetryPayload } from '../src/mqtt/payloads.js';
import { lastWill, outboxMessage, publishOptions, publishTo, type PublishClient } from '../src/mqtt/publisher.js';
import {
  DURABLE_TOPICS,
  PAYLOADS,
  TOPIC_KEYS,
  TOPIC_TABLE,
  type DirectTopic,
  type TopicSpec,
} from '../src/mqtt/topic-table.js';
import { Topics } from '../src/mqtt/topics.js';
import { compileSchema } from '../src/util/schema.js';

class RecordingClient implements PublishClient {
  calls: { topic: string; message: string | Buffer; opts: IClientPublishOptions | undefined }[] = [];
  constructor(readonly options: { protocolVersion?: 3 | 4 | 5 }) {}
  async publishAsync(topic: string, message: string | Buffer, opts?: IClientPublishOptions): Promise<undefined> {
    this.calls.push({ topic, message, opts });
    return undefined;
  }
}

const config = validateConfig({ mqtt: { resultExpiryS: 17 } });
const topics = new Topics('te', 'box-9');

const status: StatusPayload = {
  state: 'online',
  deviceId: 'box-9',
  version: '1',
  model: null,
  capture: null,
  reason: null,
  since: 'x',
  time: 1,
};
const telemetry: TelemetryPayload = {
  deviceId: 'box-9',
  time: 1,
  processedFps: 1,
  droppedFps: 0,
  processed: 1,
  dropped: 0,
  frameErrors: 0,
  stagesMs: {},
  outbox: { messages: 0, bytes: 0, dropped: 0, deadLettered: 0 },
  resultsDroppedOffline: 0,
  requestsDropped: 0,
  imaging: null,
  cpu: { loadPercent: null, temperatureC: null },
  memory: { rssBytes: 1, systemUsedBytes: null, systemTotalBytes: null },
  disk: null,
};
const result = {
  deviceId: 'box-9',
  seq: 3,
  capturedAt: 1,
  processedAt: 2,
  width: 4,
  height: 4,
  roi: { x: 0, y: 0, width: 4, height: 4 },
  nodules: [],
  latencyMs: 1,
  imaging: true,
  imagingReason: null,
  viewChanged: false,
};

describe("topic table: the single source of a topic's facts", () => {
  it('every topic has a JSON schema, or is binary with a content type; durable topics are QoS >= 1', () => {
    for (const k of TOPIC_KEYS) {
      const t: TopicSpec = TOPIC_TABLE[k];
      if (t.schema === 'binary') expect(t.contentType, k).toMatch(/^[a-z]+\/[a-z0-9.+-]+$/);
      else {
        expect(t.schema.type, k).toBe('object');
        expect(PAYLOADS[t.name], k).toBe(t.schema);
        expect(() => compileSchema(t.schema as Exclude<typeof t.schema, 'binary'>), k).not.toThrow();
      }
      if (t.durable) expect(t.qos, k).toBeGreaterThanOrEqual(1);
      expect(t.what.length, k).toBeGreaterThan(10);
    }
    const jsonTopics = TOPIC_KEYS.filter((k) => TOPIC_TABLE[k].schema !== 'binary').map((k) => TOPIC_TABLE[k].name);
    expect(Object.keys(PAYLOADS).sort()).toEqual(jsonTopics.sort());
    expect(DURABLE_TOPICS.sort()).toEqual(['alert', 'response', 'update']);
  });

  it('every command has a request schema (taking `transaction`) and a result schema', () => {
    for (const c of COMMANDS) {
      const { request, result } = COMMAND_TABLE[c];
      expect(request.properties.transaction, c).toBeDefined();
      expect(() => compileSchema(request), c).not.toThrow();
      expect(() => compileSchema(result), c).not.toThrow();
    }
  });

  it('docs/mqtt.md is generated from the tables and committed up to date', () => {
    const md = mqttMarkdown();
    expect(readFileSync('docs/mqtt.md', 'utf8')).toBe(md);
    for (const k of TOPIC_KEYS) {
      const t = TOPIC_TABLE[k];
      const yes = (b: boolean) => (b ? 'yes' : 'no');
      expect(md).toContain(`| \`${t.name}\` | ${t.from} → ${t.to} | ${t.qos} | ${yes(t.retain)} | ${yes(t.durable)} |`);
    }
    for (const c of COMMANDS) expect(md).toContain(`### \`${c}\``);
  });

  it('every example in docs/mqtt.md matches its payload schema', () => {
    expect(Object.keys(EXAMPLES).length).toBeGreaterThan(3);
    for (const [name, example] of Object.entries(EXAMPLES)) {
      const v = compileSchema(PAYLOADS[name]!);
      expect(v(example), `${name}: ${JSON.stringify(v.errors)}`).toBe(true);
    }
  });

  it('Topics derives its strings from the table names', () => {
    expect(topics.status).toBe(`te/box-9/${TOPIC_TABLE.status.name}`);
    expect(topics.mask).toBe('te/box-9/mask');
    expect(topics.requests).toBe('te/box-9/request/+');
    expect(topics.response('ping')).toBe('te/box-9/response/ping');
    expect(topics.responsePrefix).toBe('te/box-9/response/');
    expect(topics.commandOf('te/box-9/request/snapshot')).toBe('snapshot');
    expect(topics.commandOf('te/box-9/response/snapshot')).toBeNull();
  });

  it('no QoS or retain literal in src/mqtt outside the table', () => {
    const dir = 'src/mqtt';
    const offenders = readdirSync(dir)
      .filter((f) => f.endsWith('.ts') && f !== 'topic-table.ts')
      .flatMap((f) =>
        readFileSync(join(dir, f), 'utf8')
          .split('\n')
          .map((line, i) => ({ at: `${f}:${i + 1}`, line })),
      )
      .filter(({ line }) => /\b(qos|retain)\s*:\s*(\d|true|false)/.test(line));
    expect(offenders).toEqual([]);
  });
});

describe('publisher: QoS, retain, content type and expiry from the table', () => {
  it('each direct topic is published with its table options, under MQTT 5 and 3.1.1', async () => {
    const payloads: { [K in DirectTopic]: Parameters<typeof publishTo<K>>[3] } = {
      status,
      telemetry,
      result,
      mask: Buffer.from([0x89, 0x50, 0x4e, 0x47]),
    };
    for (const protocolVersion of [5, 4] as const) {
      const c = new RecordingClient({ protocolVersion });
      for (const k of Object.keys(payloads) as DirectTopic[])
        await publishTo(c, topics, k, payloads[k] as never, config.mqtt);
      expect(c.calls.map((x) => x.topic)).toEqual([
        'te/box-9/status',
        'te/box-9/telemetry',
        'te/box-9/result',
        'te/box-9/mask',
      ]);
      for (const call of c.calls) {
        const t = TOPIC_TABLE[call.topic.split('/').at(-1) as DirectTopic];
        expect(call.opts?.qos, call.topic).toBe(t.qos);
        expect(call.opts?.retain, call.topic).toBe(t.retain);
        const props = call.opts?.properties;
        if (protocolVersion === 4) expect(props, call.topic).toBeUndefined();
        else {
          expect(props?.messageExpiryInterval, call.topic).toBe(t.expiry === null ? undefined : config.mqtt[t.expiry]);
          expect(props?.contentType, call.topic).toBe('contentType' in t ? t.contentType : undefined);
        }
      }
      expect(JSON.parse(c.calls[0]!.message as string)).toEqual(status);
      expect(c.calls[3]!.message).toEqual(payloads.mask); // binary: the bytes themselves
    }
    // the values the contract promises (docs/mqtt.md shows the same table)
    expect(publishOptions('status', config.mqtt, 5)).toEqual({ qos: 1, retain: true });
    expect(publishOptions('result', config.mqtt, 5)).toEqual({
      qos: 0,
      retain: false,
      properties: { messageExpiryInterval: 17 },
    });
  });

  it('extra MQTT 5 properties ride along; expiry follows the config passed at publish time', async () => {
    const c = new RecordingClient({ protocolVersion: 5 });
    const later = validateConfig({ mqtt: { resultExpiryS: 3 } });
    await publishTo(c, topics, 'mask', Buffer.from('x'), later.mqtt, { userProperties: { seq: '3' } });
    expect(c.calls[0]!.opts).toEqual({
      qos: TOPIC_TABLE.mask.qos,
      retain: false,
      properties: { userProperties: { seq: '3' }, contentType: 'image/png', messageExpiryInterval: 3 },
    });
  });

  it('durable topics: outbox messages carry their topic key, and delivery sends them with its QoS', () => {
    const m = outboxMessage('alert', topics.alert, { hello: 'typed by AlertPayload in the service' } as never);
    expect(m).toEqual({
      kind: 'alert',
      topic: 'te/box-9/alert',
      payload: '{"hello":"typed by AlertPayload in the service"}',
    });
    for (const k of DURABLE_TOPICS) {
      expect(publishOptions(k, config.mqtt, 5)).toEqual({ qos: TOPIC_TABLE[k].qos, retain: TOPIC_TABLE[k].retain });
    }
    // a stored message whose kind is no durable topic (a foreign or damaged file) is dead-lettered, not sent with a
    // guess
    const stored = { seq: 1, topic: 'te/box-9/alert', payload: '{}', createdAt: 0 };
    expect(undeliverable({ ...stored, kind: 'bogus' as never }, topics)).toMatch(/not a durable topic/);
    expect(undeliverable({ ...stored, kind: 'alert' }, topics)).toBeNull();
  });

  it('the Last Will goes on the status topic with its QoS and retain', () => {
    const w = lastWill(topics.status, { ...status, state: 'offline' });
    expect({ topic: w.topic, qos: w.qos, retain: w.retain }).toEqual({
      topic: 'te/box-9/status',
      qos: TOPIC_TABLE.status.qos,
      retain: true,
    });
    expect(JSON.parse(w.payload.toString()).state).toBe('offline');
  });
});
