/**
 * Every MQTT payload the daemon publishes or accepts, as TypeBox schemas: the TypeScript types the
 * code uses, the validators the tests run on every message, and the JSON Schemas in docs/mqtt.md.
 * Which topic carries which payload, and how (QoS, retain, outbox, expiry), is topic-table.ts's; the
 * per-command request and result schemas are command-table.ts's.
 */
import { Type, type Static } from '@sinclair/typebox';

export const Rect = Type.Object({ x: Type.Number(), y: Type.Number(), width: Type.Number(), height: Type.Number() });
const Point = Type.Object({ x: Type.Number(), y: Type.Number() });
const Millis = Type.Integer({ description: 'ms since the Unix epoch' });

export const ImagingState = Type.Object(
  {
    imaging: Type.Boolean({
      description:
        'tissue is being imaged (the imaging gate); false: probe lifted, blank or frozen, and no alert is raised',
    }),
    reason: Type.Union(
      [Type.Literal('no_signal'), Type.Literal('reverberation'), Type.Literal('frozen'), Type.Null()],
      { description: 'why not imaging, else null' },
    ),
    viewChanges: Type.Integer({
      minimum: 0,
      description:
        'cuts to another scene the gate has seen since the daemon started (each one cleared the open alert tracks, ' +
        'reason view_changed); many on steady scanning mean imagingGate.viewChangeLevel is too low for this machine',
    }),
    viewRescales: Type.Integer({
      minimum: 0,
      description:
        'depth or zoom changes the gate has seen since the daemon started: structure changes over ' +
        'imagingGate.viewChangeLevel that a rescaled picture of the same scene explains (imagingGate.viewRescales); ' +
        'the tracks carried on',
    }),
  },
  { description: 'imaging gate state of the latest processed frame; null before the first' },
);

export const StatusPayload = Type.Object(
  {
    state: Type.Union([Type.Literal('online'), Type.Literal('degraded'), Type.Literal('offline')]),
    deviceId: Type.String(),
    version: Type.String(),
    model: Type.Union([
      Type.Object({
        name: Type.String(),
        sha256: Type.String(),
        provider: Type.String(),
        version: Type.Union([Type.String(), Type.Null()], {
          description: 'installed model bundle version; null = the factory model',
        }),
      }),
      Type.Null(),
    ]),
    capture: Type.Union([
      Type.Object({
        state: Type.String(),
        source: Type.String(),
        framesCaptured: Type.Integer(),
        badFrames: Type.Integer(),
        restarts: Type.Integer(),
        lastError: Type.Optional(Type.String()),
      }),
      Type.Null(),
    ]),
    reason: Type.Union([Type.String(), Type.Null()], { description: 'why degraded/offline, else null' }),
    imaging: Type.Optional(Type.Union([ImagingState, Type.Null()])),
    since: Type.String({ description: 'ISO time the daemon started (or, for the Last Will, connected)' }),
    time: Millis,
  },
  { $id: 'status', description: '"offline" is also the Last Will' },
);
export type StatusPayload = Static<typeof StatusPayload>;

const StageStat = Type.Object({
  p50: Type.Union([Type.Number(), Type.Null()]),
  p99: Type.Union([Type.Number(), Type.Null()]),
});

export const TelemetryPayload = Type.Object(
  {
    deviceId: Type.String(),
    time: Millis,
    processedFps: Type.Number(),
    droppedFps: Type.Number(),
    processed: Type.Integer(),
    dropped: Type.Integer(),
    frameErrors: Type.Integer(),
    stagesMs: Type.Record(Type.String(), StageStat),
    outbox: Type.Object({
      messages: Type.Integer(),
      bytes: Type.Integer(),
      dropped: Type.Integer(),
      deadLettered: Type.Integer({
        description:
          'messages moved to the dead-letter folder (refused by the broker, or failing every attempt): at start the ' +
          'letters on disk (the newest 100 are kept), then one more per message moved',
      }),
    }),
    resultsDroppedOffline: Type.Integer(),
    requestsDropped: Type.Integer({
      description: 'requests dropped unanswered since start because 2000 (or 16 MiB) were already waiting',
    }),
    imaging: Type.Union([ImagingState, Type.Null()]),
    cpu: Type.Object({
      loadPercent: Type.Union([Type.Number(), Type.Null()]),
      temperatureC: Type.Union([Type.Number(), Type.Null()]),
    }),
    memory: Type.Object({
      rssBytes: Type.Integer(),
      systemUsedBytes: Type.Union([Type.Integer(), Type.Null()]),
      systemTotalBytes: Type.Union([Type.Integer(), Type.Null()]),
    }),
    disk: Type.Union([
      Type.Object({ mount: Type.String(), usedBytes: Type.Integer(), sizeBytes: Type.Integer() }),
      Type.Null(),
    ]),
  },
  { $id: 'telemetry' },
);
export type TelemetryPayload = Static<typeof TelemetryPayload>;

export const NoduleSchema = Type.Object({
  id: Type.Integer(),
  bbox: Rect,
  centroid: Point,
  areaPx: Type.Integer(),
  areaFraction: Type.Number(),
  areaMm2: Type.Union([Type.Number(), Type.Null()]),
  meanProb: Type.Number(),
  maxProb: Type.Number(),
  capture: Type.Object({ bbox: Rect, centroid: Point }, { description: 'the same in original capture-frame pixels' }),
});

export const RleSchema = Type.Object(
  { size: Type.Tuple([Type.Integer(), Type.Integer()]), counts: Type.Array(Type.Integer()) },
  { description: 'COCO uncompressed RLE, [height, width], column-major, first run is background' },
);

export const ResultPayload = Type.Object(
  {
    deviceId: Type.String(),
    seq: Type.Integer({ description: 'frame sequence number of the source' }),
    capturedAt: Millis,
    processedAt: Millis,
    width: Type.Integer({ description: 'model frame width (the ROI scaled)' }),
    height: Type.Integer(),
    roi: Rect,
    nodules: Type.Array(NoduleSchema),
    latencyMs: Type.Number({ description: 'capture to result' }),
    imaging: Type.Boolean({
      description:
        'the imaging gate: false when the ROI shows no tissue (probe lifted, blank, frozen); nodules of such a ' +
        'frame raise no alert',
    }),
    imagingReason: Type.Union([
      Type.Literal('no_signal'),
      Type.Literal('reverberation'),
      Type.Literal('frozen'),
      Type.Null(),
    ]),
    viewChanged: Type.Boolean({
      description:
        'the imaging gate saw a cut: another scene replaced the view (not a moving probe), and open alert tracks ' +
        'ended here (nodule_cleared, reason view_changed)',
    }),
    viewRescaled: Type.Optional(
      Type.Number({
        description:
          'present on a frame whose picture the gate found rescaled from the last one (a depth or zoom change on ' +
          'the scanner, by this factor; > 1 magnifies): the same scene, no cut, the tracks carry on',
      }),
    ),
    mask: Type.Optional(RleSchema),
  },
  { $id: 'result' },
);
export type ResultPayload = Static<typeof ResultPayload>;

// The alert payload belongs to the alerts room (src/alerts/payload.ts), which stores it before MQTT sees it.
export { AlertPayload } from '../alerts/payload.js';

export const Transaction = Type.Union([Type.String({ maxLength: 200 }), Type.Number()], {
  description: "any id of the caller's choosing, echoed in the response",
});

export const RequestPayload = Type.Object(
  { transaction: Type.Optional(Transaction) },
  {
    $id: 'request',
    additionalProperties: true,
    description:
      'on <base>/<id>/request/<command>; the fields each command takes, and their schemas, are under Commands',
  },
);
export type RequestPayload = Static<typeof RequestPayload>;

export const ResponsePayload = Type.Object(
  {
    messageId: Type.String(),
    deviceId: Type.String(),
    command: Type.String(),
    transaction: Type.Union([Type.String(), Type.Number(), Type.Null()]),
    ok: Type.Boolean(),
    time: Millis,
    result: Type.Optional(
      Type.Unknown({ description: "when ok: the command's result; each command's result schema is under Commands" }),
    ),
    error: Type.Optional(Type.String()),
  },
  { $id: 'response', description: 'on <base>/<id>/response/<command>, and on the MQTT 5 response topic when given' },
);
export type ResponsePayload = Static<typeof ResponsePayload>;

export const UpdatePayload = Type.Object(
  {
    messageId: Type.String(),
    deviceId: Type.String(),
    time: Millis,
    state: Type.Union(
      ['downloading', 'verifying', 'testing', 'active', 'rolled_back', 'failed'].map((x) => Type.Literal(x)),
      {
        description: 'testing is reported twice: the self-test, then the health window after the switch',
      },
    ),
    kind: Type.Union([Type.Literal('model'), Type.Literal('config'), Type.Null()], {
      description: 'null until the manifest is read',
    }),
    name: Type.Union([Type.String(), Type.Null()]),
    version: Type.Union([Type.String(), Type.Null()]),
    url: Type.Union([Type.String(), Type.Null()], { description: 'null for a trial resumed at start-up' }),
    detail: Type.Union([Type.String(), Type.Null()]),
    reason: Type.Union([Type.String(), Type.Null()], {
      description: 'failed / rolled_back: why; the previous bundle keeps serving',
    }),
    transaction: Type.Union([Type.String(), Type.Number(), Type.Null()], {
      description: 'of the update request, if any',
    }),
  },
  { $id: 'update', description: 'every step of an update' },
);
export type UpdatePayload = Static<typeof UpdatePayload>;
