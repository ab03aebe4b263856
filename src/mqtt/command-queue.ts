/**
 * Requests as they arrive on request/<command>: one at a time, in arrival order (two set_config never
 * race a pipeline restart), a bounded backlog, the MQTT 5 response topic checked on arrival, and every
 * answer stored in the outbox (delivered in order, durable). Beyond the bound a request is dropped unanswered.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { CommandRouter } from './commands.js';
import { OutboxMessageTooLarge, type OutboxMessage } from './outbox.js';
import type { ResponsePayload } from './payloads.js';
import { outboxMessage } from './publisher.js';
import { MAX_CORRELATION_BYTES, type Topics } from './topics.js';

/**
 * waiting requests at most, and their bytes at most: beyond either, a request is dropped unanswered (an answer
 * would cost an outbox write each, which a flood would turn into disk churn), counted and logged once per interval
 */
export const MAX_PENDING_COMMANDS = 2000;
export const MAX_PENDING_BYTES = 16 * 1024 * 1024;
const DROP_LOG_INTERVAL_MS = 10_000;

export interface RequestProps {
  responseTopic?: string;
  correlationData?: Buffer;
}

export interface CommandQueueDeps {
  deviceId(): string;
  /** into the outbox; resolves once on disk */
  store(m: Omit<OutboxMessage, 'seq' | 'createdAt'>): Promise<unknown>;
  logger: Logger;
  /** ms clock, for the drop log's interval (tests) */
  now?: () => number;
}

/** Where an answer goes besides the default response topic: the request's own (MQTT 5), checked on arrival. */
interface AlsoTo {
  topic: string;
  correlationData: string | undefined;
}

export class CommandQueue {
  private chain: Promise<void> = Promise.resolve();
  private pending = 0;
  private pendingBytes = 0;
  /** requests dropped unanswered because the queue was full, since start */
  private dropped = 0;
  private droppedSinceLog = 0;
  private lastDropLog = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly router: CommandRouter,
    private readonly topics: Topics,
    private readonly deps: CommandQueueDeps,
  ) {}

  /** Requests dropped unanswered because the queue was full, since start. */
  get droppedFull(): number {
    return this.dropped;
  }

  /**
   * A message on any subscribed topic; anything but a request is ignored, and so is a retained one:
   * the broker hands it over again at every (re)connect, so it would run again each time (a retained
   * set_config would be a standing override no config file edit removes). A command is an act, sent now.
   */
  receive(topic: string, payload: Buffer, props?: RequestProps, retained = false): void {
    const command = this.topics.commandOf(topic);
    if (command === null) return;
    if (retained) {
      this.deps.logger.warn(
        { command, bytes: payload.length },
        'retained request ignored: commands are never retained',
      );
      return;
    }
    // refused by its size alone (the router's rule), so an oversized payload need not be held while it waits
    const tooBig = this.router.sizeRefusal(payload.length);
    const body = tooBig ? Buffer.alloc(0) : payload;
    // the response topic is judged now, and only what the answer needs is kept (not the request's properties)
    const topicRefusal = this.responseTopicRefusal(props);
    const alsoTo: AlsoTo | undefined =
      props?.responseTopic !== undefined && topicRefusal === null
        ? { topic: props.responseTopic, correlationData: props.correlationData?.toString('base64') }
        : undefined;
    const bytes = body.length + (alsoTo ? alsoTo.topic.length + (alsoTo.correlationData?.length ?? 0) : 0);
    if (this.pending >= MAX_PENDING_COMMANDS || this.pendingBytes + bytes > MAX_PENDING_BYTES) {
      this.dropFull(command);
      return;
    }
    this.pending++;
    this.pendingBytes += bytes;
    this.chain = this.chain
      .then(() => this.run(command, body, topicRefusal ?? tooBig, alsoTo))
      .finally(() => {
        this.pending--;
        this.pendingBytes -= bytes;
      });
  }

  private dropFull(command: string): void {
    this.dropped++;
    this.droppedSinceLog++;
    const now = (this.deps.now ?? Date.now)();
    if (now - this.lastDropLog < DROP_LOG_INTERVAL_MS) return;
    this.deps.logger.warn(
      { command, dropped: this.droppedSinceLog, droppedTotal: this.dropped },
      `requests dropped unanswered: more than ${MAX_PENDING_COMMANDS} waiting or ${MAX_PENDING_BYTES} bytes`,
    );
    this.droppedSinceLog = 0;
    this.lastDropLog = now;
  }

  /** Resolves once every request received so far is answered (in the outbox). */
  settled(): Promise<void> {
    return this.chain;
  }

  private async run(command: string, payload: Buffer, refusal: string | null, alsoTo: AlsoTo | undefined) {
    try {
      // a request-chosen response topic must be plain and under our response prefix; anything else refuses the
      // whole request, answered on the default response topic (never the one asked for: alsoTo is then unset)
      const reply = await this.router.handle(command, payload, refusal ?? undefined);
      const body: ResponsePayload = {
        messageId: randomUUID(),
        deviceId: this.deps.deviceId(),
        time: Date.now(),
        ...reply,
      };
      if (!reply.ok) this.deps.logger.warn({ command, error: reply.error }, 'command refused');
      const topic = this.topics.response(command.replace(/[#+]/g, '_'));
      try {
        await this.deps.store(outboxMessage('response', topic, body, alsoTo));
      } catch (err) {
        if (!(err instanceof OutboxMessageTooLarge)) throw err;
        // the asker still learns why there is no result (a snapshot of a pathological mask, say)
        const { result: _dropped, ...rest } = body;
        const error = `the answer was not sent: ${err.message}`;
        this.deps.logger.warn({ command, error }, 'command answer too large');
        await this.deps.store(outboxMessage('response', topic, { ...rest, ok: false, error }, alsoTo));
      }
    } catch (err) {
      this.deps.logger.error({ command, err }, 'command handling failed');
    }
  }

  private responseTopicRefusal(props: RequestProps | undefined): string | null {
    const rt = props?.responseTopic;
    if (rt === undefined) return null;
    const problem = this.topics.responseTopicProblem(rt);
    if (problem) return `response topic ${JSON.stringify(rt.slice(0, 200))} ${problem}; request refused`;
    const cd = props?.correlationData;
    if (cd && cd.length > MAX_CORRELATION_BYTES)
      return `correlation data of ${cd.length} bytes exceeds ${MAX_CORRELATION_BYTES}; request refused`;
    return null;
  }
}
