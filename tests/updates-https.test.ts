/**
 * Bundles over real https (a node https server with a certificate from a throwaway CA), installed
 * by the CLI the way a field engineer or the daemon would: a good bundle, and a connection cut
 * in the middle of the model file. Redirects (issue 14, D4): https→https followed, a hop to
 * http:// refused (a real http server serves the same bundle, so following it would succeed),
 * more than MAX_REDIRECTS hops refused.
 */
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, type KeyPair } from '../src/updates/signing.js';
import { MAX_REDIRECTS } from '../src/updates/fetch-bundle.js';
import { fixtureModel, makeModelBundle, phantomPngs } from './helpers/bundles.js';
import { tempDir } from './helpers/fixtures.js';
import { makePki } from './helpers/pki.js';

const run = promisify(execFile);

describe('bundles over https', () => {
  let server: Server;
  let plain: HttpServer;
  let port = 0;
  let plainPort = 0;
  let pki: string;
  let key: KeyPair;
  let bundle: string;
  let cutModel = false;

  beforeAll(async () => {
    pki = await tempDir('te-https-pki-');
    await makePki(pki);
    key = generateKeyPair();
    bundle = await makeModelBundle({
      model: fixtureModel('brightness-b'),
      version: '1.0.0',
      key,
      golden: await phantomPngs(1),
    });
    server = createServer(
      { key: await readFile(join(pki, 'server.key')), cert: await readFile(join(pki, 'server.crt')) },
      async (req, res) => {
        const path = new URL(req.url ?? '/', 'https://x').pathname;
        // /chain/<n>/<file>: n redirects (https) before /b/<file>; /to-http/<file>: one redirect to the plain server
        const chain = /^\/chain\/(\d+)\/(.+)$/.exec(path);
        if (chain) {
          const n = Number(chain[1]);
          return res
            .writeHead(302, {
              location: n > 1 ? `/chain/${n - 1}/${chain[2]}` : `https://127.0.0.1:${port}/b/${chain[2]}`,
            })
            .end();
        }
        const toHttp = /^\/to-http\/(.+)$/.exec(path);
        if (toHttp) return res.writeHead(302, { location: `http://127.0.0.1:${plainPort}/b/${toHttp[1]}` }).end();
        // /to-name/<file>: one https redirect to the same server by another host name
        const toName = /^\/to-name\/(.+)$/.exec(path);
        if (toName) return res.writeHead(302, { location: `https://localhost:${port}/b/${toName[1]}` }).end();
        return serve(path, res);
      },
    );
    plain = createHttpServer(
      (req: IncomingMessage, res: ServerResponse) => void serve(new URL(req.url ?? '/', 'http://x').pathname, res),
    );
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    plainPort = (plain.address() as { port: number }).port;
    async function serve(path: string, res: ServerResponse): Promise<void> {
      const file = join(bundle, decodeURIComponent(path).replace(/^\/b\//, ''));
      try {
        const size = (await stat(file)).size;
        res.writeHead(200, { 'content-length': size });
        if (cutModel && file.endsWith('model.onnx')) {
          // half the bytes, then the connection drops
          res.write((await readFile(file)).subarray(0, Math.floor(size / 2)), () =>
            setTimeout(() => res.socket?.destroy(), 50),
          );
          return;
        }
        createReadStream(file).pipe(res);
      } catch {
        res.writeHead(404).end();
      }
    }
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });

  afterAll(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await new Promise<void>((r) => (plain ? plain.close(() => r()) : r()));
  });

  async function install(
    path = '/b/manifest.json',
    updates: Record<string, unknown> = {},
  ): Promise<{ state: string; reason: string | null }[]> {
    const state = await tempDir('te-https-state-');
    const cfg = join(state, 'config.json');
    await writeFile(cfg, JSON.stringify({ stateDir: state, updates: { trustedKeys: [key.publicKey], ...updates } }));
    const out = await run(
      'node',
      ['dist/src/cli.js', 'bundle', 'install', `https://127.0.0.1:${port}${path}`, '-c', cfg],
      {
        env: { ...process.env, NODE_EXTRA_CA_CERTS: join(pki, 'ca.crt') }, // the CA a hospital would install
      },
    ).catch((err: { stdout: string }) => ({ stdout: err.stdout }));
    return out.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
  }

  it('downloads, verifies, self-tests and activates a bundle served over https', async () => {
    cutModel = false;
    const steps = await install();
    expect(steps.map((s) => s.state)).toEqual(['downloading', 'verifying', 'testing', 'testing', 'testing']);
    expect(steps.at(-1)!.reason).toBeNull();
  });

  it('a connection cut in the middle of the model fails the install with the reason', async () => {
    cutModel = true;
    const steps = await install();
    expect(steps.at(-1)!.state).toBe('failed');
    expect(steps.at(-1)!.reason).toMatch(/model\.onnx: download interrupted after \d+ bytes/);
  });

  it('D4: redirects: https→https is followed; a hop to http:// is refused; so are > MAX_REDIRECTS hops', async () => {
    cutModel = false;
    const ok = await install('/chain/2/manifest.json');
    expect(ok.map((s) => s.state)).toEqual(['downloading', 'verifying', 'testing', 'testing', 'testing']);
    expect(ok.at(-1)!.reason).toBeNull();
    const http = await install('/to-http/manifest.json');
    expect(http.at(-1)!.state).toBe('failed');
    expect(http.at(-1)!.reason).toMatch(
      new RegExp(
        String.raw`redirect from https:\/\/127\.0\.0\.1:\d+\/to-http\/manifest\.json ` +
          String.raw`to http:\/\/127\.0\.0\.1:\d+ refused \(url: http: is refused`,
      ),
    );
    const many = await install(`/chain/${MAX_REDIRECTS + 1}/manifest.json`);
    expect(many.at(-1)!.state).toBe('failed');
    expect(many.at(-1)!.reason).toMatch(new RegExp(`more than ${MAX_REDIRECTS} redirects`));
    const most = await install(`/chain/${MAX_REDIRECTS}/manifest.json`);
    expect(most.at(-1)!.reason).toBeNull();
  }, 120_000);

  it('updates.allowedHosts: a host in the list installs; another host, or a redirect to one, is refused', async () => {
    cutModel = false;
    const listed = await install('/chain/1/manifest.json', { allowedHosts: [`127.0.0.1:${port}`] });
    expect(listed.at(-1)!.reason).toBeNull();
    // the host without its port means port 443: this server's port is another service of that host
    const portless = await install('/b/manifest.json', { allowedHosts: ['127.0.0.1'] });
    expect(portless.at(-1)!.reason).toMatch(
      /url: host 127\.0\.0\.1:\d+ is not in updates\.allowedHosts \(127\.0\.0\.1\)/,
    );
    const other = await install('/b/manifest.json', { allowedHosts: ['fleet.hospital.example'] });
    expect(other.at(-1)).toMatchObject({ state: 'failed' });
    expect(other.at(-1)!.reason).toMatch(
      /url: host 127\.0\.0\.1:\d+ is not in updates\.allowedHosts \(fleet\.hospital\.example\)/,
    );
    const hop = await install('/to-name/manifest.json', { allowedHosts: [`127.0.0.1:${port}`] });
    expect(hop.at(-1)!.state).toBe('failed');
    expect(hop.at(-1)!.reason).toMatch(
      /to https:\/\/localhost:\d+ refused \(url: host localhost:\d+ is not in/, // scheme and host only, not the path
    );
  }, 120_000);
});
