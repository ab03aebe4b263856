/**
 * "Latest frame wins": a one-place mailbox between capture and inference. Putting a frame while
 * one is pending replaces it and counts a drop, so memory stays flat at any source rate and the
 * result always describes the newest image.
 */
export class LatestFrameSlot<T> {
  private pending: T | null = null;
  private waiter: ((v: T | null) => void) | null = null;
  private closed = false;
  dropped = 0;

  /** Returns true when a pending item was replaced (dropped). */
  put(item: T): boolean {
    if (this.closed) return false;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(item);
      return false;
    }
    const replaced = this.pending !== null;
    if (replaced) this.dropped++;
    this.pending = item;
    return replaced;
  }

  /** Resolves with the newest item, or null once closed and empty. */
  take(): Promise<T | null> {
    if (this.pending !== null) {
      const p = this.pending;
      this.pending = null;
      return Promise.resolve(p);
    }
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /**
   * No more puts. A pending item is still handed out by take() (a source that ended naturally),
   * unless `discard` is set (stopping): then it counts as dropped.
   */
  close(discard = false): void {
    this.closed = true;
    if (discard && this.pending !== null) {
      this.pending = null;
      this.dropped++;
    }
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(null);
    }
  }

  get size(): number {
    return this.pending === null ? 0 : 1;
  }
}
