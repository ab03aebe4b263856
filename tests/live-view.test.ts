/**
 * The live view in a real browser: Playwright (playwright-core) driving Debian's chromium
 * headless against the daemon on the phantom. The canvas shows a mask, the nodule list fills,
 * the charts update, the calibrate view shows the ROI; a screenshot is kept as a test artifact.
 * Off loopback the token is enforced (and the config refuses such a bind without one).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import sharp from 'sharp';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PHANTOM } from '../src/capture/phantom.js';
import { ConfigError, validateConfig } from '../src/config/load.js';
import { startDaemon, testConfig } from './helpers/daemon.js';
import { freePort } from './helpers/mosquitto.js';
import { tempDir } from './helpers/fixtures.js';
import { makePki } from './helpers/pki.js';
import { requestRefusal } from '../src/live/request-guard.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = 'test-artifacts';

describe('live view: config rules', () => {
  it('a non-loopback bind needs a token and TLS (or an explicit opt-out)', () => {
    expect(() => validateConfig({ liveView: { enabled: true, host: '0.0.0.0' } })).toThrow(
      /liveView\.token: is required to serve on 0\.0\.0\.0/,
    );
    expect(() => validateConfig({ liveView: { enabled: true, host: '0.0.0.0', token: 'x'.repeat(20) } })).toThrow(
      /liveView\.tlsCertFile: TLS .* or set liveView\.allowInsecure/,
    );
    expect(() => validateConfig({ liveView: { enabled: true, host: '0.0.0.0', token: 'short' } })).toThrow(ConfigError);
    expect(
      validateConfig({ liveView: { enabled: true, host: '0.0.0.0', token: 'x'.repeat(20), allowInsecure: true } })
        .liveView.port,
    ).toBe(8080);
    expect(validateConfig({}).liveView.enabled).toBe(false); // production default: off
  });
});

describe('live view: who may ask (Host, Origin), and the calibrate grab', () => {
  it('request-guard: loopback names only without a token; an Origin must be the Host itself', () => {
    for (const host of ['localhost:8080', '127.0.0.1:8080', '127.3.4.5', '[::1]:8080', 'app.localhost:1'])
      expect(requestRefusal({ host }, false), host).toBeNull();
    for (const host of ['evil.example:8080', '10.0.0.7:8080', '[::2]:8080', undefined, ''])
      expect(requestRefusal({ host }, false), String(host)).toBe('host is not a loopback name');
    expect(requestRefusal({ host: 'box.ward:8443' }, true)).toBeNull(); // with a token any name may be used
    expect(requestRefusal({ host: 'localhost:8080', origin: 'http://localhost:8080' }, false)).toBeNull();
    expect(requestRefusal({ host: 'localhost:8080', origin: 'http://evil.example' }, false)).toBe(
      'cross-origin request',
    );
    expect(requestRefusal({ host: 'localhost:8080', origin: 'http://localhost:9999' }, false)).toBe(
      'cross-origin request',
    );
    expect(requestRefusal({ host: 'box.ward:8443', origin: 'https://evil.example' }, true)).toBe(
      'cross-origin request',
    );
    expect(requestRefusal({ host: 'localhost:8080', origin: 'null' }, false)).toBe('opaque origin');
  });

  it('a rebound name or a foreign page is refused (403); one grab serves a burst of calibrate requests', async () => {
    const d = await startDaemon(
      await testConfig(null, {
        mqtt: { url: null, embeddedPort: await freePort() },
        liveView: { enabled: true, port: 0 },
      }),
    );
    try {
      const { port } = new URL(d.live!.url);
      const get = (path: string, headers: Record<string, string>) =>
        new Promise<{ status: number; csp: string | undefined }>((resolve, reject) => {
          httpGet({ host: '127.0.0.1', port, path, headers }, (res) => {
            res.resume();
            resolve({ status: res.statusCode ?? 0, csp: res.headers['content-security-policy'] as string | undefined });
          }).on('error', reject);
        });
      const page = await get('/', { host: `localhost:${port}` });
      expect(page.status).toBe(200);
      expect(page.csp).toMatch(/default-src 'none'.*frame-ancestors 'none'/);
      expect((await get('/api/status', { host: `evil.example:${port}` })).status).toBe(403); // DNS rebinding
      expect((await get('/api/status', { host: `127.0.0.1:${port}`, origin: 'http://evil.example' })).status).toBe(403);
      const ws = (origin: string) =>
        new Promise<string>((resolve) => {
          const w = new WebSocket(`ws://127.0.0.1:${port}/ws`, { origin });
          w.on('unexpected-response', (_req, res) => resolve(`HTTP ${res.statusCode}`));
          w.on('open', () => {
            w.close();
            resolve('open');
          });
          w.on('error', (e) => resolve(e.message));
        });
      expect(await ws('http://evil.example')).toBe('HTTP 403'); // cross-site WebSocket from a page the browser opened
      expect(await ws(`http://127.0.0.1:${port}`)).toBe('open');
      // a page reloaded in a loop: one grab (on a V4L2 dongle each one pauses the pipeline) answers them all
      const daemon = d.daemon as unknown as { grabFullFrame: () => Promise<unknown> };
      const real = daemon.grabFullFrame.bind(daemon);
      let grabs = 0;
      daemon.grabFullFrame = () => {
        grabs++;
        return real();
      };
      const burst = await Promise.all(
        Array.from({ length: 5 }, () => get('/api/calibrate.json', { host: `127.0.0.1:${port}` })),
      );
      expect(burst.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
      expect((await get('/api/calibrate.json', { host: `127.0.0.1:${port}` })).status).toBe(200);
      expect(grabs).toBe(1);
      // the served screen hides the header's patient details: above the imaging area, every 16 px block is flat
      const body = await new Promise<string>((resolve, reject) => {
        httpGet({ host: '127.0.0.1', port, path: '/api/calibrate.json' }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => {
            text += c.toString();
          });
          res.on('end', () => resolve(text));
        }).on('error', reject);
      });
      const cal = JSON.parse(body) as { png: string };
      const { data, info } = await sharp(Buffer.from(cal.png, 'base64')).raw().toBuffer({ resolveWithObject: true });
      const header = Math.floor((DEFAULT_PHANTOM.roi.y - 4) / 16) * 16; // rows fully outside the ROI's margin
      expect(header).toBeGreaterThanOrEqual(32);
      let differing = 0;
      for (let y = 0; y < header; y++) {
        for (let x = 0; x < info.width; x++) {
          const v = data[(y * info.width + x) * info.channels] as number;
          const blockFirst = data[((y - (y % 16)) * info.width + (x - (x % 16))) * info.channels] as number;
          if (v !== blockFirst) differing++;
        }
      }
      expect(differing).toBe(0);
    } finally {
      await d.stop();
    }
  });
});

describe('live view over TLS', () => {
  it('serves https with the configured certificate when tlsCertFile/tlsKeyFile are set', async () => {
    const pki = await tempDir('te-live-pki-');
    await makePki(pki);
    const token = 'tls-token-0123456789';
    const d = await startDaemon(
      await testConfig(null, {
        mqtt: { url: null, embeddedPort: await freePort() },
        liveView: {
          enabled: true,
          host: '0.0.0.0',
          port: 0,
          token,
          tlsCertFile: join(pki, 'server.crt'),
          tlsKeyFile: join(pki, 'server.key'),
        },
      }),
    );
    try {
      expect(d.live!.url).toMatch(/^https:/);
      const port = new URL(d.live!.url).port;
      const ca = await readFile(join(pki, 'ca.crt'));
      const get = (path: string) =>
        new Promise<number>((resolve, reject) => {
          httpsGet({ host: '127.0.0.1', port, path, ca, servername: 'localhost' }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          }).on('error', reject);
        });
      expect(await get('/')).toBe(401);
      expect(await get(`/?token=${token}`)).toBe(200);
    } finally {
      await d.stop();
    }
  });
});

describe.skipIf(!existsSync(CHROMIUM))(
  `live view in chromium${existsSync(CHROMIUM) ? '' : ` (skipped: no ${CHROMIUM}; apt install chromium)`}`,
  () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
      await mkdir(ARTIFACTS, { recursive: true });
    });
    afterAll(async () => {
      await browser?.close();
    });

    it('shows the frame with its mask, the nodules, alerts, updating charts and the status', async () => {
      const d = await startDaemon(
        await testConfig(null, {
          mqtt: { url: null, embeddedPort: await freePort() },
          capture: { phantom: { fps: 10, cycleFrames: 0, nodules: 2 } },
          liveView: { enabled: true, port: 0 },
        }),
      );
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        await page.goto(d.live!.url);
        await page.waitForFunction(
          () => (window as unknown as { __live: { frames: number; lastMaskPixels: number } }).__live.lastMaskPixels > 0,
          null,
          { timeout: 30_000 },
        );
        await page.waitForSelector('#nodules tr.nodule', { timeout: 10_000 });
        // the alert history: the nodules always in view are confirmed within a second or so ("detected" rows)
        await page.waitForFunction(
          () => [...document.querySelectorAll('#alerts tr')].some((r) => r.children[1]?.textContent === 'detected'),
          null,
          { timeout: 20_000 },
        );
        const samples0 = await page.evaluate(
          () => (window as unknown as { __live: { samples: unknown[] } }).__live.samples.length,
        );
        await page.waitForFunction(
          (n) => (window as unknown as { __live: { samples: unknown[] } }).__live.samples.length >= n + 2,
          samples0,
          { timeout: 10_000 },
        );
        expect(await page.textContent('#model')).toMatch(/thyroid-nodule-int8 \(factory\) on cpu/);
        expect(await page.textContent('#capture')).toMatch(/running phantom/);
        expect(await page.textContent('#imaging')).toBe('yes'); // the imaging gate: phantom tissue in view
        // the charts are drawn: some non-background pixel in the fps chart
        const drawn = await page.evaluate(() => {
          const c = document.getElementById('fps') as HTMLCanvasElement;
          const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 3; i < d.length; i += 4) if (d[i]! > 0) n++;
          return n;
        });
        expect(drawn).toBeGreaterThan(50);
        await page.screenshot({ path: `${ARTIFACTS}/live-view.png` });

        const cal = await browser.newPage({ viewport: { width: 1280, height: 700 } });
        await cal.goto(`${d.live!.url}/calibrate`);
        await cal.waitForFunction(
          () => (window as unknown as { __calibrate?: unknown }).__calibrate !== undefined,
          null,
          { timeout: 20_000 },
        );
        const { x, y, width, height } = DEFAULT_PHANTOM.roi; // the phantom's imaging area, DDTI's median size
        expect(await cal.textContent('#configured')).toBe(`{ x: ${x}, y: ${y}, width: ${width}, height: ${height} }`);
        await cal.screenshot({ path: `${ARTIFACTS}/live-view-calibrate.png` });
      } finally {
        await d.stop();
      }
    });

    it('off loopback the token is enforced on the page, the API and the WebSocket', async () => {
      const token = 'tok-0123456789abcdef';
      const d = await startDaemon(
        await testConfig(null, {
          mqtt: { url: null, embeddedPort: await freePort() },
          liveView: { enabled: true, host: '0.0.0.0', port: 0, token, allowInsecure: true },
        }),
      );
      try {
        const base = d.live!.url.replace('0.0.0.0', '127.0.0.1');
        expect((await fetch(`${base}/`)).status).toBe(401);
        expect((await fetch(`${base}/?token=wrong-token-0123456`)).status).toBe(401);
        expect((await fetch(`${base}/api/status`)).status).toBe(401);
        expect((await fetch(`${base}/api/status`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
        const refused = await new Promise<string>((resolve) => {
          const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`);
          ws.on('unexpected-response', (_req, res) => resolve(`HTTP ${res.statusCode}`));
          ws.on('open', () => resolve('open'));
          ws.on('error', (e) => resolve(e.message));
        });
        expect(refused).toMatch(/401/);
        const page = await browser.newPage();
        await page.goto(`${base}/?token=${token}`);
        const framing = () =>
          page.waitForFunction(() => (window as unknown as { __live: { frames: number } }).__live.frames > 0, null, {
            timeout: 30_000,
          });
        await framing();
        // the token leaves the address bar and the history entry; an HttpOnly, SameSite=Strict cookie lets a
        // reload and the calibrate page in
        expect(page.url()).toBe(`${base}/`);
        const [cookie] = await page.context().cookies(base);
        expect(cookie).toMatchObject({ name: 'te_live_token', value: token, httpOnly: true, sameSite: 'Strict' });
        await page.reload();
        await framing();
        expect(page.url()).toBe(`${base}/`);
        expect((await page.goto(`${base}/calibrate`))?.status()).toBe(200);
      } finally {
        await d.stop();
      }
    });
  },
);
