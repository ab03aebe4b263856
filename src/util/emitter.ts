/**
 * A typed event with many listeners. One listener that throws (or rejects) is logged with `{ err }`
 * and the others still hear the event: a broken live-view client must not stop alerts reaching MQTT.
 */
import type { Logger } from 'pino';

export type Listener<T> = (value: T) => void | Promise<void>;

export class Emitter<T> {
  private readonly listeners = new Set<Listener<T>>();

  constructor(
    /** names the event in the log line of a failing listener */
    private readonly event: string,
    private readonly logger: Pick<Logger, 'error'>,
  ) {}

  /** Returns the unsubscribe. */
  on(l: Listener<T>): () => void {
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
    };
  }

  /** The next value, or an error after timeoutMs. */
  next(timeoutMs: number, what = this.event): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on((v) => {
        clearTimeout(timer);
        off();
        resolve(v);
      });
    });
  }

  get size(): number {
    return this.listeners.size;
  }

  emit(value: T): void {
    // a copy: a listener may unsubscribe itself (or another) while we iterate
    for (const l of [...this.listeners]) {
      try {
        const r = l(value);
        if (r && typeof (r as Promise<void>).catch === 'function')
          (r as Promise<void>).catch((err: unknown) => this.failed(err));
      } catch (err) {
        this.failed(err);
      }
    }
  }

  private failed(err: unknown): void {
    this.logger.error({ err, event: this.event }, `a ${this.event} listener failed; the others still heard it`);
  }
}
