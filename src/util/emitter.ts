/**
 * A typed event with many listeners. One listener that throws (or rejects) is logged with `{ err }`
 * and the others still hear the event: a broken live-view client must not stop alerts reaching MQTT.
 */
import type { Logger } from 'pino';

export type Listener<T> = (value: T) => void | Promise<void>;

export class Emitter<T> {
  private readonly listeners = new Set<Listener<T>>();
  private snapshot: Listener<T>[] | null = null;

  constructor(
    /** names the event in the log line of a failing listener */
    private readonly event: string,
    private readonly logger: Pick<Logger, 'error'>,
  ) {}

  /** Returns the unsubscribe. */
  on(l: Listener<T>): () => void {
    this.listeners.add(l);
    this.snapshot = null;
    return () => {
      if (this.listeners.delete(l)) this.snapshot = null;
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
    // a fixed list: a listener may (un)subscribe while we iterate. Rebuilt only after a change, so the
    // per-frame emit allocates nothing.
    this.snapshot ??= [...this.listeners];
    for (const l of this.snapshot) {
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
