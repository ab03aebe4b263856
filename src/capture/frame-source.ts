/** The one interface every capture source implements, and the frame it yields. */

// Frame and Rect live with the code that consumes them (src/inference); sources produce them.
import type { Frame } from '../inference/frame.js';
export type { Frame, Rect } from '../inference/frame.js';

export type CaptureState = 'idle' | 'starting' | 'running' | 'retrying' | 'ended' | 'stopped';

export interface CaptureStatus {
  state: CaptureState;
  source: string;
  framesCaptured: number;
  badFrames: number;
  restarts: number;
  lastError?: string;
}

export interface FrameSource {
  readonly name: string;
  /** frames until the source ends or stop() is called; faults are retried inside */
  frames(): AsyncIterable<Frame>;
  stop(): Promise<void>;
  status(): CaptureStatus;
}
