/**
 * The daemon's configuration: one TypeBox schema that types the code, validates files (with
 * defaults) and generates docs/config.md.
 */
import { Type, type Static } from '@sinclair/typebox';
import { CaptureConfigSchema } from '../capture/config.js';
// RT (`runtime: true`) on a key lets set_config change it while running: see RUNTIME in util/schema.ts
import { RUNTIME as RT, section as Obj } from '../util/schema.js';
import { DEFAULT_GATE } from '../inference/imaging-gate.js';
import { DEFAULT_TRACKER } from '../alerts/tracker.js';

export const ConfigSchema = Type.Object(
  {
    deviceId: Type.String({
      pattern: '^[A-Za-z0-9_-]{1,64}$',
      default: 'box-01',
      description: 'Identifies this box in MQTT topics (<base>/<deviceId>/...). Letters, digits, _ and - only.',
    }),
    logLevel: Type.Union(
      ['trace', 'debug', 'info', 'warn', 'error', 'fatal'].map((l) => Type.Literal(l)),
      { default: 'info', description: 'Log level of the structured (JSON) log on stdout.', ...RT },
    ),
    stateDir: Type.String({
      default: 'state',
      description: 'Writable directory for the MQTT outbox and installed model slots (systemd: StateDirectory).',
    }),
    model: Obj(
      {
        path: Type.String({ default: 'models/thyroid-nodule-int8.onnx', description: 'ONNX model file.' }),
        card: Type.Optional(
          Type.String({ description: 'Model card JSON. Default: the model path with .json instead of .onnx.' }),
        ),
        executionProviders: Type.Array(Type.String({ minLength: 1 }), {
          default: ['cpu'],
          minItems: 1,
          description:
            'onnxruntime execution providers in order of preference (e.g. ["xnnpack","cpu"]). Unavailable ones ' +
            'are skipped with a warning; CPU is always the last resort.',
        }),
        threads: Type.Integer({ minimum: 1, maximum: 64, default: 2, description: 'intra-op threads for inference.' }),
      },
      'The segmentation model.',
    ),
    capture: CaptureConfigSchema,
    postprocess: Obj(
      {
        minAreaPx: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
          default: null,
          description:
            "Components smaller than this (model pixels) are dropped as specks. null: the model card's " +
            'decision rule (decision.minAreaPx, chosen on val with the model; 40 for older cards).',
        }),
        pixelSpacingMm: Type.Union(
          [
            Type.Object(
              { x: Type.Number({ exclusiveMinimum: 0 }), y: Type.Number({ exclusiveMinimum: 0 }) },
              { additionalProperties: false },
            ),
            Type.Null(),
          ],
          { default: null, description: 'mm per capture pixel, to report nodule areas in mm^2.' },
        ),
      },
      'Turning the model output into nodules.',
      RT,
    ),
    mqtt: Obj(
      {
        url: Type.Union([Type.String({ pattern: '^(mqtts?|wss?|tcp|ssl)://' }), Type.Null()], {
          default: null,
          description:
            'Broker URL (mqtt://, mqtts://, ws://, wss://). null: run an embedded broker on 127.0.0.1 ' +
            '(out-of-the-box mode). A configured URL always wins.',
        }),
        embeddedPort: Type.Integer({
          minimum: 1,
          maximum: 65535,
          default: 1883,
          description: 'Port of the embedded broker (only when url is null).',
        }),
        baseTopic: Type.String({
          pattern: '^[A-Za-z0-9_/-]+$',
          default: 'thyroid-edge',
          description: 'Topics are <baseTopic>/<deviceId>/...',
        }),
        clientId: Type.Optional(
          Type.String({
            minLength: 1,
            description:
              "MQTT client id. Default: the deviceId. With mqtt.certFile it must equal the certificate's CN " +
              '(checked at start): the broker knows a box by its certificate (deploy/mosquitto).',
          }),
        ),
        protocolVersion: Type.Union([Type.Literal(4), Type.Literal(5)], {
          default: 5,
          description:
            'MQTT 5 (message expiry, content type, response topics) or 3.1.1. The embedded broker speaks 3.1.1.',
        }),
        username: Type.Optional(Type.String()),
        password: Type.Optional(
          Type.String({
            description: 'Prefer THYROID_EDGE__mqtt__password in the environment (systemd credentials) over the file.',
          }),
        ),
        caFile: Type.Optional(Type.String({ description: 'CA certificate (PEM) to verify the broker (mqtts/wss).' })),
        certFile: Type.Optional(Type.String({ description: 'Client certificate (PEM) for mTLS.' })),
        keyFile: Type.Optional(Type.String({ description: 'Client private key (PEM) for mTLS.' })),
        allowInsecure: Type.Boolean({
          default: false,
          description: 'Allow plain TCP/WebSocket to a non-loopback broker. Off: such a URL is refused.',
        }),
        keepaliveS: Type.Integer({ minimum: 5, maximum: 600, default: 30 }),
        reconnectMinMs: Type.Integer({
          minimum: 100,
          default: 1000,
          description: 'First reconnect delay; doubles up to reconnectMaxMs.',
        }),
        reconnectMaxMs: Type.Integer({ minimum: 100, default: 30000 }),
        resultExpiryS: Type.Integer({
          minimum: 1,
          default: 10,
          description: 'MQTT 5 message expiry of result messages.',
        }),
        telemetryIntervalS: Type.Number({ minimum: 1, maximum: 3600, default: 10 }),
        maxCommandBytes: Type.Integer({
          minimum: 256,
          maximum: 1048576,
          default: 65536,
          description:
            'Larger command payloads are answered with an error; with MQTT 5 the broker drops those over twice this ' +
            '(plus 4 KiB) before they reach the box.',
        }),
        setConfigKeys: Type.Union(
          [Type.Array(Type.String({ minLength: 1, pattern: '^[A-Za-z0-9]+(\\.[A-Za-z0-9]+)*$' })), Type.Null()],
          {
            // anyone on the ward's broker may publish a request: by default an unsigned one changes nothing
            // that decides what the box reports
            default: ['logLevel'],
            description:
              'The keys (or subtrees, e.g. "alerts") that the MQTT set_config command may change, among the runtime ' +
              'keys; null: all of them. The default lets an unsigned request change the log level only: ' +
              'postprocess, alerts, imagingGate and capture.roi decide what the box reports, and the fleet changes ' +
              "them with signed config bundles, which this list does not limit. Widen it only where the broker's " +
              'ACL lets the fleet manager alone publish requests.',
          },
        ),
        responseTopicPrefix: Type.Union([Type.String({ minLength: 1, pattern: '^[^+#\\u0000]+/$' }), Type.Null()], {
          default: null,
          description:
            'An MQTT 5 response topic chosen by a request is honoured only if it is a plain topic (no ' +
            'wildcard, at most 512 bytes) under this prefix; anything else is refused in the reply on the ' +
            'default response topic. null: <baseTopic>/<deviceId>/response/.',
        }),
        mask: Obj(
          {
            mode: Type.Union([Type.Literal('off'), Type.Literal('png'), Type.Literal('rle')], {
              default: 'off',
              description: 'off; png: PNG bytes on <base>/<id>/mask; rle: COCO RLE inside result.',
            }),
            maxPerSecond: Type.Number({
              exclusiveMinimum: 0,
              maximum: 60,
              default: 2,
              description: 'Rate limit for masks.',
            }),
          },
          'Mask publishing (off by default).',
        ),
        outbox: Obj(
          {
            maxMessages: Type.Integer({ minimum: 10, default: 10000 }),
            maxBytes: Type.Integer({ minimum: 10000, default: 50000000 }),
            maxAttempts: Type.Integer({
              minimum: 1,
              maximum: 1000,
              default: 5,
              description:
                'A message whose delivery fails this many times in a row while connected (the connection drops ' +
                'under it, or no acknowledgement in attemptTimeoutS) moves to the dead-letter folder so the ' +
                'rest flows on.',
            }),
            attemptTimeoutS: Type.Integer({
              minimum: 1,
              maximum: 3600,
              default: 30,
              description: "One delivery attempt waits this long for the broker's acknowledgement.",
            }),
          },
          'On-disk outbox for alerts and command responses. When full the oldest command responses go first, ' +
            'then the oldest alerts; every drop is counted in telemetry. A message the broker refuses (an error ' +
            'reason code, an invalid topic) or that fails maxAttempts times moves to <stateDir>/outbox-dead/ ' +
            'with its reason, logged and counted in telemetry (outbox.deadLettered); it never blocks the rest.',
        ),
      },
      'MQTT connection and contract.',
    ),
    alerts: Obj(
      {
        minAreaPx: Type.Integer({
          minimum: 0,
          default: DEFAULT_TRACKER.minAreaPx,
          description: 'Detections smaller than this (model px, fragments merged) do not count for alerts.',
        }),
        fragmentGapPx: Type.Number({
          minimum: 0,
          default: DEFAULT_TRACKER.fragmentGapPx,
          description:
            'Components whose boxes are closer than this (model px) are one nodule (fragments of one nodule), ' +
            'unless each continues a different confirmed track.',
        }),
        fragmentGrowFraction: Type.Number({
          minimum: 0,
          maximum: 2,
          default: DEFAULT_TRACKER.fragmentGrowFraction,
          description:
            "Components touching one another's box grown by this fraction of its width/height on each side are " +
            'one nodule (a big nodule outlined in parts).',
        }),
        minIou: Type.Number({
          exclusiveMinimum: 0,
          maximum: 1,
          default: DEFAULT_TRACKER.minIou,
          description:
            'Minimum box overlap between a track and a detection to continue the track: IoU, or half the ' +
            'overlap over the smaller box (a part of a big nodule outlined alone).',
        }),
        matchDistance: Type.Number({
          exclusiveMinimum: 0,
          maximum: 1,
          default: DEFAULT_TRACKER.matchDistance,
          description:
            'Fallback when boxes do not overlap: max centroid distance (fraction of the frame diagonal) to ' +
            'continue a track. Large (0.4) because a nodule wider than the view is outlined in different parts as ' +
            'the probe pans; a cut to another scene ends the tracks first (imagingGate.viewChangeLevel).',
        }),
        confirmEvidenceS: Type.Number({
          exclusiveMinimum: 0,
          default: DEFAULT_TRACKER.confirmEvidenceS,
          description:
            'A track is confirmed (nodule_detected) once its evidence, seconds on screen weighted by the peak ' +
            'probability of each sighting, reaches this ...',
        }),
        minDurationS: Type.Number({
          minimum: 0,
          default: DEFAULT_TRACKER.minDurationS,
          description: '... and it has been seen over at least this many seconds (first to last sighting).',
        }),
        evidenceDecayPerS: Type.Number({
          minimum: 0,
          default: DEFAULT_TRACKER.evidenceDecayPerS,
          description:
            'Evidence a track loses per second while it is not seen (stray false positives fade before they confirm).',
        }),
        memoryS: Type.Number({
          minimum: 0,
          default: DEFAULT_TRACKER.memoryS,
          description:
            'A track survives this long without being seen: a nodule that leaves the view briefly and returns ' +
            'keeps its trackId. After that: nodule_cleared (reason lost).',
        }),
        growthFraction: Type.Number({
          exclusiveMinimum: 0,
          default: DEFAULT_TRACKER.growthFraction,
          description: 'nodule_updated when the area grew by this fraction since the last event ...',
        }),
        updateMinIntervalS: Type.Number({
          minimum: 0,
          default: DEFAULT_TRACKER.updateMinIntervalS,
          description: '... and at most once per this many seconds per track.',
        }),
      },
      'Alert tracker (src/alerts): nodule_detected / nodule_updated / nodule_cleared from per-frame nodules. ' +
        'Defaults chosen on DDTI val scan clips with `npm run bench:alerts` (docs/alerts.md). A change at ' +
        'runtime closes open tracks (nodule_cleared, reason config_changed).',
      RT,
    ),
    imagingGate: Obj(
      {
        centralFraction: Type.Number({
          exclusiveMinimum: 0,
          maximum: 1,
          default: DEFAULT_GATE.centralFraction,
          description:
            'The statistics look at this central part of the ROI (width and height), away from margins and overlays.',
        }),
        minMean: Type.Number({
          minimum: 0,
          maximum: 255,
          default: DEFAULT_GATE.minMean,
          description: 'Mean grey level (raw frame, 0-255) below which the ROI shows no tissue (probe lifted, blank).',
        }),
        brightLevel: Type.Integer({
          minimum: 0,
          maximum: 255,
          default: DEFAULT_GATE.brightLevel,
          description: 'A pixel brighter than this counts as echo.',
        }),
        minBrightFraction: Type.Number({
          minimum: 0,
          maximum: 1,
          default: DEFAULT_GATE.minBrightFraction,
          description: 'Fraction of echo pixels below which the ROI shows no tissue.',
        }),
        maxRowStructure: Type.Number({
          minimum: 0,
          maximum: 1,
          default: DEFAULT_GATE.maxRowStructure,
          description:
            'Variance of the row means over the total variance above which the image is horizontal bands ' +
            '(reverberation of a lifted probe).',
        }),
        frozenDiff: Type.Number({
          minimum: 0,
          default: DEFAULT_GATE.frozenDiff,
          description:
            'Mean absolute difference to the previous frame (grey levels) below which a frame is unchanged; ' +
            'unchanged frames are no evidence for alerts.',
        }),
        frozenMs: Type.Integer({
          minimum: 0,
          default: DEFAULT_GATE.frozenMs,
          description: 'Unchanged this long = a frozen image: no imaging.',
        }),
        offFrames: Type.Integer({
          minimum: 1,
          default: DEFAULT_GATE.offFrames,
          description:
            'Consecutive frames without tissue before the state turns to no imaging (open tracks clear once, ' +
            'reason no_imaging).',
        }),
        onFrames: Type.Integer({
          minimum: 1,
          default: DEFAULT_GATE.onFrames,
          description: 'Consecutive frames with tissue before imaging is back.',
        }),
        viewChangeLevel: Type.Number({
          minimum: 0,
          maximum: 2,
          default: DEFAULT_GATE.viewChangeLevel,
          description:
            'A cut: 1 - the correlation of coarse block means (8x6 over the central part) between a frame and the ' +
            'last frame with tissue above this means another scene replaced the view (not a moving probe); open ' +
            'tracks clear (reason view_changed) and `result.viewChanged` is true. In the val scan clips a pan gives ' +
            'at most 0.053 at 15 fps (0.27 with 3 of 4 frames dropped), a cut 0.37-1.29. 2 turns it off.',
        }),
        viewRescales: Type.Array(Type.Number({ minimum: 0.2, maximum: 5 }), {
          maxItems: 16,
          default: DEFAULT_GATE.viewRescales,
          description:
            'Before a structure change counts as a cut, the last frame with tissue is rescaled about the top centre ' +
            'of the ROI (the probe face) by each of these factors (> 1 magnifies): a depth or zoom change on the ' +
            'scanner rescales the picture of the same scene, and a frame that matches one of them below ' +
            'viewChangeLevel keeps its tracks (`result.viewRescaled`). Assumes a calibrated ROI whose top edge is ' +
            'the probe face. [] treats every rescale as a cut.',
        }),
      },
      'Imaging gate: frames with no tissue in the ROI (probe lifted, blank, frozen) raise no alert; ' +
        '`result.imaging` and status/telemetry show the state. It also tells a cut to another scene from a moving ' +
        'probe (`viewChangeLevel`).',
      RT,
    ),
    liveView: Obj(
      {
        enabled: Type.Boolean({
          default: false,
          description:
            'Serve the live view (a web page with the live image, mask overlay, nodules, alerts and health). ' +
            'Off in production configs; on in the `npm start` config.',
        }),
        host: Type.String({
          default: '127.0.0.1',
          description:
            'Bind address. Anything but loopback requires `token` and TLS (or `allowInsecure`): the page shows ' +
            'patient images.',
        }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: '0 = any free port (logged).' }),
        token: Type.Union([Type.String({ minLength: 16 }), Type.Null()], {
          default: null,
          description:
            'Access token (>= 16 characters), required as ?token= or "Authorization: Bearer". A page opened ' +
            'with ?token= sets an HttpOnly, SameSite=Strict session cookie and drops the token from the address ' +
            'bar. Prefer THYROID_EDGE__liveView__token in the environment.',
        }),
        tlsCertFile: Type.Union([Type.String(), Type.Null()], {
          default: null,
          description: 'PEM certificate: serve https/wss.',
        }),
        tlsKeyFile: Type.Union([Type.String(), Type.Null()], { default: null }),
        allowInsecure: Type.Boolean({
          default: false,
          description:
            'Allow plain http on a non-loopback address (explicit opt-out of TLS; the token is still required).',
        }),
        maxFps: Type.Number({
          exclusiveMinimum: 0,
          maximum: 30,
          default: 10,
          description:
            'Frames per second sent to each page at most; a page that falls behind gets fewer, never a backlog.',
        }),
      },
      'Bedside web page.',
    ),
    updates: Obj(
      {
        trustedKeys: Type.Array(Type.String({ minLength: 40 }), {
          default: [],
          description:
            'Ed25519 public keys (base64 SPKI, as `thyroid-edge bundle keygen` prints) whose signatures are ' +
            'accepted. Empty: every bundle is refused.',
        }),
        allowDowngrade: Type.Boolean({ default: false, description: 'Accept a bundle older than the active one.' }),
        allowFileUrls: Type.Boolean({
          default: false,
          description: 'Accept file:// bundle URLs (field service, tests); https:// is always accepted.',
        }),
        allowedHosts: Type.Union(
          [
            Type.Array(Type.String({ minLength: 1, pattern: '^([A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?$' })),
            Type.Null(),
          ],
          {
            default: null,
            description:
              'The https hosts (names as in the URL, e.g. "fleet.hospital.lan", port 443; another port named, ' +
              'e.g. "fleet.hospital.lan:8443") the box may fetch bundles from, redirects and listed files included; ' +
              'null: the host and port of `manifestUrl` when that is an https URL; with neither, an `update` request ' +
              "for an https URL is refused (the operator's `bundle install` on the box may fetch from any host). " +
              'Anyone who can publish on the broker may send an ' +
              '`update` request: a list keeps the box from being sent to other hosts of the hospital network (the ' +
              'signature protects what is installed, not where the box connects).',
          },
        ),
        acceptNames: Type.Union([Type.Array(Type.String({ minLength: 1, maxLength: 100 })), Type.Null()], {
          default: null,
          description:
            "The bundle names (the manifest's `name`) this box installs, e.g. its model's and its site's config " +
            'bundle; null: any. One signing key often serves several sites or products: without a list, anyone ' +
            "on the broker may have the box install another site's signed config bundle (its ROI, thresholds) " +
            "or another product's model, and raise the version floor past every real release.",
        }),
        maxBundleBytes: Type.Integer({
          minimum: 1024,
          default: 209715200,
          description: 'Staging cap: a bundle that declares or sends more is refused.',
        }),
        downloadTimeoutS: Type.Integer({ minimum: 1, default: 300 }),
        goldenMinIou: Type.Number({
          minimum: 0,
          maximum: 1,
          default: 0.9,
          description: 'Self-test: each golden frame must reproduce its expected mask at least this well.',
        }),
        schedule: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
          default: null,
          description:
            'node-cron expression for the scheduled check of manifestUrl, e.g. "0 3 * * *" (03:00 daily, ' +
            'inside the maintenance window). null: only on request.',
        }),
        manifestUrl: Type.Union([Type.String({ pattern: '^(https|file)://' }), Type.Null()], {
          default: null,
          description: 'Bundle manifest polled by the schedule; installed when newer than the active one.',
        }),
        quietS: Type.Integer({
          minimum: 0,
          default: 300,
          description:
            'A scheduled check is deferred while a scan runs: a nodule was seen less than this many seconds ago.',
        }),
        health: Obj(
          {
            frames: Type.Integer({
              minimum: 1,
              default: 30,
              description: 'Frames the new bundle must process without an error.',
            }),
            timeoutS: Type.Integer({
              minimum: 1,
              default: 120,
              description: 'Rolled back if those frames do not arrive in time.',
            }),
            latencyFactor: Type.Number({
              exclusiveMinimum: 0,
              default: 2,
              description:
                "Rolled back if the new model's p50 inference time exceeds this factor times the previous model's.",
            }),
          },
          'Health window after a switch; failing it rolls back automatically.',
        ),
      },
      'Signed model and config bundles (docs/updates.md).',
    ),
  },
  { additionalProperties: false, $id: 'thyroid-edge-config' },
);

export type Config = Static<typeof ConfigSchema>;
