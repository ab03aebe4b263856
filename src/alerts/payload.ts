/** The alert message: what the alert service stores (track file, outbox) and MQTT delivers. */
import { Type, type Static } from '@sinclair/typebox';
import { CLEAR_REASONS } from './tracker.js';

const Rect = Type.Object({ x: Type.Number(), y: Type.Number(), width: Type.Number(), height: Type.Number() });
const Point = Type.Object({ x: Type.Number(), y: Type.Number() });
const Millis = Type.Integer({ description: 'ms since the Unix epoch' });

export const AlertPayload = Type.Object(
  {
    messageId: Type.String({ description: 'unique per message: deduplicate on it (QoS 1 may redeliver)' }),
    deviceId: Type.String(),
    event: Type.Union([
      Type.Literal('nodule_detected'),
      Type.Literal('nodule_updated'),
      Type.Literal('nodule_cleared'),
    ]),
    trackId: Type.Integer({ description: 'unique across restarts (a persisted counter)' }),
    reason: Type.Optional(
      Type.Union(
        CLEAR_REASONS.map((x) => Type.Literal(x)),
        {
          description:
            'nodule_cleared only: lost (not seen for alerts.memoryS), no_imaging (imaging gate), view_changed ' +
            '(the imaging gate saw a cut to another scene), ' +
            'config_changed (alerts.* changed), shutdown, restart (the track was open when the daemon stopped ' +
            'without a shutdown)',
        },
      ),
    ),
    frameSeq: Type.Integer({ description: 'frame sequence number of the source (restarts with the source)' }),
    time: Millis,
    peakProb: Type.Number(),
    largestAreaPx: Type.Integer(),
    largestAreaFraction: Type.Number(),
    largestAreaMm2: Type.Union([Type.Number(), Type.Null()]),
    firstSeenAt: Millis,
    lastSeenAt: Millis,
    bbox: Rect,
    centroid: Point,
  },
  { $id: 'alert', description: 'delivered in order, none lost (see Delivery guarantees in docs/mqtt.md)' },
);
export type AlertPayload = Static<typeof AlertPayload>;
