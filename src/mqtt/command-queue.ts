/**
 * Requests as they arrive on request/<command>: one at a time, in arrival order (two set_config never
 * race a pipeline restart), a bounded backlog, the MQTT 5 response topic checked, and every answer
 * stored in the outbox (delivered in order, durable).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { CommandRouter } from './commands.js';
import type { OutboxMessage } from './outbox.js';
import type { ResponsePayload } from './payloads.js';
import { outboxMessage } from './publisher.js';
import { MAX_CORRELATION_BYTES, type Topics } from './topics.js';

/** waiting requests at most, and their payload bytes at most: beyond either, each is refused as busy */
const MAX_PENDING_COMMANDS = 2000;
const MAX_PENDING_BYTES = 16 * 1024 * 1024;

export interface RequestProps {
  responseTopic?: string;
  correlationData?: Buffer;
}

export interface CommandQueueDeps {
  deviceId(): string;
  /** into the outbox; resolves once on disk */
  store(m: Omit<OutboxMessage, 'seq' | 'createdAt'>): Promise<unknown>;
  logger: Logger;
}

export class CommandQueue {
  private chain: Promise<void> = Promise.resolve();
  private pending = 0;
  private pendingBytes = 0;

  constructor(
    private readonly router: CommandRouter,
    private readonly topics: Topics,
    private readonly deps: CommandQueueDeps,
  ) {}

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
    this.pending++;
    const busy =
      this.pending > MAX_PENDING_COMMANDS || (!tooBig && this.pendingBytes + payload.length > MAX_PENDING_BYTES);
    // an oversized payload, or one refused as busy, waits in the queue as its size only, not as its bytes
    const body = tooBig || busy ? Buffer.alloc(0) : payload;
    this.pendingBytes += body.length;
    this.chain = this.chain
      .then(() => this.run(command, body, props, busy, tooBig))
      .finally(() => {
        this.pending--;
        this.pendingBytes -= body.length;
      });
  }

  /** Resolves once every request received so far is answered (in the outbox). */
  settled(): Promise<void> {
    return this.chain;
  }

  private async run(
    command: string,
    payload: Buffer,
    props: RequestProps | undefined,
    busy: boolean,
    tooBig: string | null,
  ): Promise<void> {
    try {
      // a request-chosen response topic must be plain and under our response prefix; anything else
      // refuses the whole request, answered on the default response topic (never the one asked for)
      const topicRefusal = this.responseTopicRefusal(props);
      const refusal = topicRefusal ?? tooBig;
      const reply = busy
        ? {
            command,
            transaction: null,
            ok: false,
            error: `too many pending commands (> ${MAX_PENDING_COMMANDS} or ${MAX_PENDING_BYTES} bytes); try again`,
          }
        : await this.router.handle(command, payload, refusal ?? undefined);
      const body: ResponsePayload = {
        messageId: randomUUID(),
        deviceId: this.deps.deviceId(),
        time: Date.now(),
        ...reply,
      };
      if (!reply.ok) this.deps.logger.warn({ command, error: reply.error }, 'command refused');
      const alsoTo =
        props?.responseTopic !== undefined && topicRefusal === null
          ? { topic: props.responseTopic, correlationData: props.correlationData?.toString('base64') }
          : undefined;
      await this.deps.store(
        outboxMessage('response', this.topics.response(command.replace(/[#+]/g, '_')), body, alsoTo),
      );
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
