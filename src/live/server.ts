/**
 * The live view: a small http(s) server with the page, the calibrate view, and a WebSocket that
 * pushes frames (JPEG + RLE mask + nodules), status and alerts. Frames are rate-limited per page
 * and skipped while a page's socket still holds the previous one: a slow browser sees fewer
 * frames, never older ones. Loopback by default; elsewhere only with a token and TLS (config).
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { parseCookie, stringifySetCookie } from 'cookie';
import sharp from 'sharp';
import { WebSocketServer, type WebSocket } from 'ws';
import { findImagingArea } from '../capture/calibrate.js';
import { roiPng } from '../capture/roi-png.js';
import type { Config } from '../config/schema.js';
import type { AlertPayload } from '../alerts/payload.js';
import type { FullFrame } from '../capture/grab.js';
import type { Rect } from '../inference/frame.js';
import type { MqttHost } from '../mqtt/host.js';
import { readCpu } from '../system/readings.js';
import type { FrameResult } from '../inference/frame-processor.js';
import { encodeRle } from '../inference/mask-encoding.js';
import { calibratePage, livePage } from './page.js';
import { requestRefusal } from './request-guard.js';
import { loopbackAddressOf } from '../util/loopback.js';

/** What the page reads from the running daemon: results, status, stats, and a full frame to calibrate on. */
export interface LiveHost extends Pick<MqttHost, 'onResult' | 'status' | 'pipelineStats'> {
  grabFullFrame(): Promise<{ frame: FullFrame; roi: Rect | null }>;
}

export interface LiveDeps {
  daemon: LiveHost;
  onAlert(l: (a: AlertPayload) => void): () => void;
  mqttConnected(): boolean;
}

export interface StatusSample {
  t: number;
  processedFps: number;
  droppedFps: number;
  stagesMs: Record<string, number | null>;
  temperatureC: number | null;
  loadPercent: number | null;
}

interface Client {
  ws: WebSocket;
  nextFrameAt: number;
  sent: number;
  skipped: number;
}

const HISTORY = 300; // 5 minutes of 1 s samples
const MAX_BUFFERED = 256 * 1024;

/** how long one calibrate grab answers further requests */
const GRAB_REUSE_MS = 3000;
const TOKEN_COOKIE = 'te_live_token';

/** A request's path and query (the host part is a placeholder: only these are read). */
const requestUrl = (req: IncomingMessage) => new URL(req.url ?? '/', 'http://x');

export class LiveViewServer {
  private server: Server | null = null;
  private wss: WebSocketServer | null = null;
  private readonly clients = new Set<Client>();
  private readonly history: StatusSample[] = [];
  private readonly alerts: AlertPayload[] = [];
  private offs: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  private encoding = false;
  private grab: { until: number; value: Promise<{ frame: FullFrame; roi: Rect | null }> } | null = null;

  constructor(
    private readonly opts: Config['liveView'],
    private readonly deps: LiveDeps,
    private readonly logger: Logger,
  ) {}

  get url(): string {
    const a = this.server?.address() as AddressInfo | null;
    const scheme = this.opts.tlsCertFile ? 'https' : 'http';
    return a ? `${scheme}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : '';
  }

  get stats(): { clients: number; sent: number; skipped: number } {
    let sent = 0;
    let skipped = 0;
    for (const c of this.clients) {
      sent += c.sent;
      skipped += c.skipped;
    }
    return { clients: this.clients.size, sent, skipped };
  }

  async start(): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    this.server =
      this.opts.tlsCertFile && this.opts.tlsKeyFile
        ? createHttps({ cert: readFileSync(this.opts.tlsCertFile), key: readFileSync(this.opts.tlsKeyFile) }, handler)
        : createHttp(handler);
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 1024 });
    this.server.on('upgrade', (req, socket, head) => {
      if (this.refusal(req) !== null) {
        socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      const url = requestUrl(req);
      if (url.pathname !== '/ws' || !this.authorized(req, url)) {
        socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      this.wss!.handleUpgrade(req, socket, head, (ws) => this.addClient(ws));
    });
    const host = await this.bindAddress();
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.opts.port, host, () => resolve());
    });
    this.offs.push(this.deps.daemon.onResult((r) => this.onResult(r)));
    this.offs.push(this.deps.onAlert((a) => this.onAlertEvent(a)));
    this.timer = setInterval(() => void this.tick(), 1000);
    this.logger.info({ url: this.url }, 'live view serving');
  }

  /**
   * Without a token the page may only be served on loopback: a name (localhost) must resolve to
   * loopback addresses only, now, and the server binds to the address resolved here (not the name again).
   */
  private async bindAddress(): Promise<string> {
    const host = this.opts.host;
    if (this.opts.token) return host;
    const addr = await loopbackAddressOf(host);
    if (addr === null)
      throw new Error(
        `liveView.host: ${host} is not loopback (or does not resolve to loopback addresses only); a token is required`,
      );
    return addr;
  }

  /**
   * One grab at a time, and a grab serves every request for GRAB_REUSE_MS: on a V4L2 dongle each grab
   * pauses the pipeline, so a page reloaded in a loop must not stop the box's alerts.
   */
  private grabFullFrame(): Promise<{ frame: FullFrame; roi: Rect | null }> {
    if (this.grab && Date.now() < this.grab.until) return this.grab.value;
    // answers every request while it runs, then for GRAB_REUSE_MS; a failed grab is not kept
    const g = { until: Number.POSITIVE_INFINITY, value: this.deps.daemon.grabFullFrame() };
    g.value.then(
      () => {
        g.until = Date.now() + GRAB_REUSE_MS;
      },
      () => {
        g.until = 0;
      },
    );
    this.grab = g;
    return g.value;
  }

  /** Host and Origin (see request-guard.ts): the reason to refuse, logged, or null. */
  private refusal(req: IncomingMessage): string | null {
    const r = requestRefusal({ host: req.headers.host, origin: req.headers.origin }, !!this.opts.token);
    if (r !== null) this.logger.warn({ host: req.headers.host, origin: req.headers.origin, r }, 'live view refused');
    return r;
  }

  /**
   * Token from ?token=, "Authorization: Bearer" or the cookie the page got with it (so that the token can
   * leave the address bar); no token configured = open (loopback only, config enforces).
   */
  private authorized(req: IncomingMessage, url: URL): boolean {
    const want = this.opts.token;
    if (!want) return true;
    const exp = Buffer.from(want);
    const matches = (v: string | null | undefined) => {
      const got = Buffer.from(v ?? '');
      return got.length === exp.length && timingSafeEqual(got, exp);
    };
    const q = url.searchParams.get('token');
    const h = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    return matches(q) || matches(h) || matches(parseCookie(req.headers.cookie ?? '')[TOKEN_COOKIE]);
  }

  /**
   * Set with a page opened by ?token=: HttpOnly (no script reads it), SameSite=Strict (no other site's page
   * sends it; the Origin check stands as well), Secure over TLS, gone when the browser closes.
   */
  private tokenCookie(): string {
    return stringifySetCookie(TOKEN_COOKIE, this.opts.token ?? '', {
      path: '/',
      httpOnly: true,
      sameSite: 'strict',
      secure: !!(this.opts.tlsCertFile && this.opts.tlsKeyFile),
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = requestUrl(req);
    const withCookie = !!this.opts.token && url.searchParams.has('token');
    const send = (code: number, type: string, body: string | Buffer) => {
      res.writeHead(code, {
        ...(withCookie && code === 200 && type.startsWith('text/html') ? { 'set-cookie': this.tokenCookie() } : {}),
        'content-type': type,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        // the pages' scripts and styles are inline; nothing loads from elsewhere, nothing may frame them
        'content-security-policy':
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; " +
          "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      });
      res.end(body);
    };
    const refused = this.refusal(req);
    if (refused !== null) return send(403, 'text/plain', `live view: refused (${refused})\n`);
    if (!this.authorized(req, url)) return send(401, 'text/plain', 'live view: token required (?token=...)\n');
    const path = url.pathname;
    const title = `thyroid-edge ${this.deps.daemon.status().deviceId}`;
    try {
      if (path === '/') return send(200, 'text/html; charset=utf-8', livePage(title));
      if (path === '/calibrate') return send(200, 'text/html; charset=utf-8', calibratePage(title));
      if (path === '/api/status')
        return send(200, 'application/json', JSON.stringify(this.statusMessage(this.history.at(-1) ?? null)));
      if (path === '/api/calibrate.json') {
        const { frame, roi } = await this.grabFullFrame();
        const suggested = findImagingArea(frame.data, frame.width, frame.height);
        const rects = [{ rect: suggested, rgb: [0, 200, 255] as [number, number, number] }];
        if (roi) rects.push({ rect: roi, rgb: [255, 200, 0] });
        // served over the network: the screen outside the rectangles (patient name, ID) is pixelated
        const png = await roiPng(frame, rects, true);
        return send(
          200,
          'application/json',
          JSON.stringify({
            width: frame.width,
            height: frame.height,
            configured: roi,
            suggested,
            png: png.toString('base64'),
          }),
        );
      }
      send(404, 'text/plain', 'not found\n');
    } catch (err) {
      this.logger.warn({ path, err }, 'live view request failed');
      send(500, 'text/plain', `${(err as Error).message}\n`);
    }
  }

  private addClient(ws: WebSocket): void {
    const c: Client = { ws, nextFrameAt: 0, sent: 0, skipped: 0 };
    this.clients.add(c);
    ws.on('close', () => this.clients.delete(c));
    ws.on('error', () => this.clients.delete(c));
    ws.send(
      JSON.stringify({
        type: 'hello',
        history: this.history,
        alerts: this.alerts,
        status: this.statusMessage(null).status,
      }),
    );
  }

  private onResult(r: FrameResult): void {
    if (this.clients.size === 0 || this.encoding) return;
    const now = Date.now();
    const due = [...this.clients].filter((c) => {
      if (now < c.nextFrameAt) return false;
      if (c.ws.bufferedAmount > MAX_BUFFERED) {
        c.skipped++; // the page has not taken the last frame yet: skip, do not queue
        return false;
      }
      return true;
    });
    if (due.length === 0) return;
    this.encoding = true; // one encode at a time; frames arriving meanwhile are skipped
    void sharp(Buffer.from(r.image.data), { raw: { width: r.image.width, height: r.image.height, channels: 1 } })
      .jpeg({ quality: 80 })
      .toBuffer()
      .then((jpeg) => {
        const msg = JSON.stringify({
          type: 'frame',
          seq: r.seq,
          width: r.width,
          height: r.height,
          latencyMs: r.processedAt - r.capturedAt,
          imaging: r.imaging.imaging,
          imagingReason: r.imaging.reason,
          nodules: r.nodules,
          mask: encodeRle(r.mask, r.width, r.height),
          jpeg: jpeg.toString('base64'),
        });
        for (const c of due) {
          if (c.ws.readyState !== c.ws.OPEN) continue;
          c.ws.send(msg);
          c.sent++;
          c.nextFrameAt = now + 1000 / this.opts.maxFps;
        }
      })
      .catch((err: unknown) => this.logger.warn({ err }, 'live view frame encode failed'))
      .finally(() => {
        this.encoding = false;
      });
  }

  private onAlertEvent(a: AlertPayload): void {
    this.alerts.push(a);
    if (this.alerts.length > 50) this.alerts.shift();
    this.broadcast(JSON.stringify({ type: 'alert', alert: a }));
  }

  private statusMessage(sample: StatusSample | null) {
    return {
      type: 'status',
      sample,
      status: { daemon: this.deps.daemon.status(), mqttConnected: this.deps.mqttConnected(), liveView: this.stats },
    };
  }

  private async tick(): Promise<void> {
    const p = this.deps.daemon.pipelineStats();
    const cpu = await readCpu();
    const sample: StatusSample = {
      t: Date.now(),
      processedFps: p?.processedFps ?? 0,
      droppedFps: p?.droppedFps ?? 0,
      stagesMs: Object.fromEntries(Object.entries(p?.stagesMs ?? {}).map(([k, v]) => [k, v.p50])),
      ...cpu,
    };
    this.history.push(sample);
    if (this.history.length > HISTORY) this.history.shift();
    this.broadcast(JSON.stringify(this.statusMessage(sample)));
  }

  private broadcast(msg: string): void {
    for (const c of this.clients) if (c.ws.readyState === c.ws.OPEN) c.ws.send(msg);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const off of this.offs) off();
    this.offs = [];
    for (const c of this.clients) c.ws.terminate();
    this.clients.clear();
    this.wss?.close();
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}
