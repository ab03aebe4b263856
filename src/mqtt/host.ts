/** What the MQTT side (and the live view) reads from the running daemon; the daemon implements it. */
import type { PipelineSummary } from '../capture/pipeline-stats.js';
import type { CaptureStatus } from '../capture/frame-source.js';
import type { ResultFeed } from '../alerts/service.js';
import type { FrameResult } from '../inference/frame-processor.js';

export interface DeviceStatus {
  version: string;
  deviceId: string;
  model: { name: string; sha256: string; file: string; provider: string; version: string | null } | null;
  capture: CaptureStatus | null;
  lastError: string | null;
  /** the imaging gate on the latest frame; null before the first */
  imaging: {
    imaging: boolean;
    reason: 'no_signal' | 'reverberation' | 'frozen' | null;
    viewChanges: number;
    viewRescales: number;
  } | null;
  since: string;
}

export interface MqttHost extends ResultFeed {
  /** the next processed frame, or an error after timeoutMs */
  nextResult(timeoutMs: number): Promise<FrameResult>;
  /** cheap: called every second */
  status(): DeviceStatus;
  /** frame counters and stage percentiles: called at telemetry pace */
  pipelineStats(): PipelineSummary | null;
}
