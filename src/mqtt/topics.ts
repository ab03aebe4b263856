import { COMMAND_SLOT, TOPIC_TABLE, type TopicKey } from './topic-table.js';

/** Topic strings under <base>/<deviceId>/ (names from topic-table.ts), and the rules a topic from outside must pass. */
export class Topics {
  readonly root: string;
  /** where request-chosen MQTT 5 response topics must lie (default <root>/response/) */
  readonly responsePrefix: string;
  constructor(base: string, deviceId: string, responsePrefix: string | null = null) {
    this.root = `${base.replace(/\/+$/, '')}/${deviceId}`;
    this.responsePrefix = responsePrefix ?? this.withCommand('response', '');
  }
  /** a topic without a command slot */
  of(key: Exclude<TopicKey, 'request' | 'response'>): string {
    return `${this.root}/${TOPIC_TABLE[key].name}`;
  }
  private withCommand(key: 'request' | 'response', command: string): string {
    return `${this.root}/${TOPIC_TABLE[key].name.replace(COMMAND_SLOT, command)}`;
  }
  get status(): string {
    return this.of('status');
  }
  get telemetry(): string {
    return this.of('telemetry');
  }
  get result(): string {
    return this.of('result');
  }
  get mask(): string {
    return this.of('mask');
  }
  get alert(): string {
    return this.of('alert');
  }
  get update(): string {
    return this.of('update');
  }
  /** the subscription for every command */
  get requests(): string {
    return this.withCommand('request', '+');
  }
  response(command: string): string {
    return this.withCommand('response', command);
  }
  /** the command name of a request topic, or null if the topic is not one */
  commandOf(topic: string): string | null {
    const prefix = this.withCommand('request', '');
    return topic.startsWith(prefix) ? topic.slice(prefix.length) : null;
  }
  /** Why a request's response topic is refused, or null: see responseTopicProblem. */
  responseTopicProblem(topic: string): string | null {
    return responseTopicProblem(topic, this.responsePrefix);
  }
}

/** A response topic a request may choose: far below MQTT's 65535, since it is stored with every reply. */
export const MAX_RESPONSE_TOPIC_BYTES = 512;
/** MQTT 5 correlation data we keep with a reply (in the outbox, base64). */
export const MAX_CORRELATION_BYTES = 1024;

/** Why `topic` cannot be published to (a wildcard, NUL, empty, too long for MQTT), or null. */
export function publishTopicProblem(topic: string): string | null {
  if (topic.length === 0) return 'is empty';
  if (/[+#]/.test(topic)) return 'contains a wildcard (+ or #): a publish topic must be plain';
  if (topic.includes('\0')) return 'contains NUL';
  if (Buffer.byteLength(topic) > 65535) return 'is longer than MQTT allows (65535 bytes)';
  return null;
}

/**
 * Why a request-chosen response topic is refused, or null: it must be a plain topic, within
 * MAX_RESPONSE_TOPIC_BYTES, strictly under `prefix`. Replies can then never land on a box's
 * alert/status topics, on another box's topics, or be a wildcard the broker drops the connection for.
 */
export function responseTopicProblem(topic: string, prefix: string): string | null {
  const plain = publishTopicProblem(topic);
  if (plain) return plain;
  if (Buffer.byteLength(topic) > MAX_RESPONSE_TOPIC_BYTES) return `is longer than ${MAX_RESPONSE_TOPIC_BYTES} bytes`;
  if (!topic.startsWith(prefix) || topic.length === prefix.length) return `is not under ${prefix}`;
  return null;
}
