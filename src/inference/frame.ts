/** A captured frame as the inference path consumes it (capture sources produce it). */

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Frame {
  /** increasing per source, starting at 1; gaps mean frames lost before they reached us */
  seq: number;
  /** wall-clock capture time, ms since the epoch */
  capturedAt: number;
  /**
   * grey ROI image, full range, one byte per pixel: at the model input size (images, phantom) or at
   * ROI size (ffmpeg sources; the frame processor resizes it with the card's kernel)
   */
  width: number;
  height: number;
  data: Uint8Array;
  /** where the ROI sits in the original capture frame, to map results back */
  roi: Rect;
  sourceWidth: number;
  sourceHeight: number;
  /** ground-truth nodule mask at width x height (phantom only; 0/1) */
  truth?: Uint8Array;
  /** milliseconds spent producing/decoding this frame inside the source */
  decodeMs?: number;
}
