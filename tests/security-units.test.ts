/**
 * Pure rules behind issue 14: what counts as loopback (D6), which config keys may change at
 * runtime (D3), which response topics a request may choose (D1/D2), the client-id/certificate check (D5).
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, defaultConfig, isLoopbackHost, loadConfig, validateConfig } from '../src/config/load.js';
import { applyRuntimePatch, restartOnlyKeys, runtimeKeys } from '../src/config/patch.js';
import { checkClientIdentity } from '../src/mqtt/identity.js';
import { pinPlainToLoopback } from '../src/mqtt/client-options.js';
import { Topics, publishTopicProblem, responseTopicProblem } from '../src/mqtt/topics.js';
import { checkUrl } from '../src/updates/fetch-bundle.js';
import { isLoopbackAddress, loopbackAddressOf } from '../src/util/loopback.js';
import { tempDir } from './helpers/fixtures.js';

describe('loopback (D6)', () => {
  it('IP literals: 127/8, ::1 and IPv4-mapped 127.x are loopback; nothing else is', () => {
    for (const a of [
      '127.0.0.1',
      '127.255.0.9',
      '::1',
      '[::1]',
      '0:0:0:0:0:0:0:1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '[::ffff:7f00:1]',
    ]) {
      expect(isLoopbackAddress(a), a).toBe(true);
      expect(isLoopbackHost(a), a).toBe(true);
    }
    for (const a of ['128.0.0.1', '10.0.0.1', '0.0.0.0', '::', '::2', '::ffff:10.0.0.1', '::ffff:8.8.8.8']) {
      expect(isLoopbackAddress(a), a).toBe(false);
      expect(isLoopbackHost(a), a).toBe(false);
    }
  });

  it('a name is loopback only if it is localhost: 127.attacker.example and friends are names', () => {
    expect(isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('LOCALHOST.')).toBe(true);
    for (const h of [
      '127.attacker.example',
      '127.0.0.1.nip.io',
      '127.1',
      'localhost.attacker.example',
      'ward-broker',
      '',
    ]) {
      expect(isLoopbackHost(h), h).toBe(false);
    }
  });

  it(
    'at use time: localhost counts only if it resolves to loopback addresses only, ' +
      'and the address is what is used',
    async () => {
      expect(await loopbackAddressOf('127.0.0.1')).toBe('127.0.0.1');
      expect(await loopbackAddressOf('localhost', async () => [{ address: '127.0.0.1' }, { address: '::1' }])).toBe(
        '127.0.0.1',
      );
      expect(
        await loopbackAddressOf('localhost', async () => [{ address: '127.0.0.1' }, { address: '10.1.2.3' }]),
      ).toBeNull();
      expect(await loopbackAddressOf('localhost', async () => [])).toBeNull();
      expect(await loopbackAddressOf('localhost', async () => Promise.reject(new Error('ENOTFOUND')))).toBeNull();
      let asked = false;
      expect(
        await loopbackAddressOf('127.attacker.example', async () => {
          asked = true;
          return [{ address: '127.0.0.1' }];
        }),
      ).toBeNull();
      expect(asked).toBe(false); // never loopback, whatever a resolver says
      // the real resolver on this machine: localhost is loopback
      expect(isLoopbackAddress((await loopbackAddressOf('localhost')) ?? '')).toBe(true);
    },
  );

  it(
    'plain mqtt:// is pinned to the resolved loopback address; ' + 'a non-loopback name is refused at connect time',
    async () => {
      expect(await pinPlainToLoopback('mqtt://127.0.0.1:1883', false)).toBe('mqtt://127.0.0.1:1883');
      expect(isLoopbackHost(new URL(await pinPlainToLoopback('mqtt://localhost:1883', false)).hostname)).toBe(true);
      await expect(pinPlainToLoopback('mqtt://127.attacker.example:1883', false)).rejects.toThrow(
        /127\.attacker\.example.*refused/,
      );
      expect(await pinPlainToLoopback('mqtts://broker.example:8883', false)).toBe('mqtts://broker.example:8883');
      expect(await pinPlainToLoopback('mqtt://broker.example:1883', true)).toBe('mqtt://broker.example:1883');
    },
  );

  it('config: 127.attacker.example is refused for a plain mqtt url and for a token-less live view', async () => {
    const dir = await tempDir();
    const file = join(dir, 'box.yaml');
    await writeFile(
      file,
      'mqtt:\n  url: mqtt://127.attacker.example:1883\nliveView:\n  enabled: true\n  host: 127.attacker.example\n',
    );
    const err = await loadConfig(file, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/mqtt\.url: plain mqtt to 127\.attacker\.example is refused/);
    expect((err as Error).message).toMatch(/liveView\.token: is required to serve on 127\.attacker\.example/);
    // what worked before still works
    expect(() =>
      validateConfig({ mqtt: { url: 'mqtt://127.0.0.1:1883' }, liveView: { enabled: true, host: '127.0.0.1' } }),
    ).not.toThrow();
    expect(() =>
      validateConfig({ mqtt: { url: 'mqtt://localhost:1883' }, liveView: { enabled: true, host: 'localhost' } }),
    ).not.toThrow();
    expect(() =>
      validateConfig({ mqtt: { url: 'mqtt://[::1]:1883' }, liveView: { enabled: true, host: '::1' } }),
    ).not.toThrow();
  });
});

describe('runtime keys declared on the schema (D3)', () => {
  const current = defaultConfig();

  it(
    'thresholds, alert tuning, rates and the log level are runtime; ' +
      'paths, programs, devices, URLs and keys are not',
    () => {
      const rt = runtimeKeys();
      for (const k of [
        'logLevel',
        'alerts',
        'postprocess',
        'capture.roi',
        'capture.phantom',
        'capture.images.fps',
        'capture.v4l2.fps',
      ])
        expect(rt, k).toContain(k);
      for (const k of [
        'capture.ffmpegPath',
        'capture.file.path',
        'capture.images.dir',
        'capture.v4l2.device',
        'capture.source',
        'model',
        'model.path',
        'mqtt',
        'mqtt.url',
        'updates',
        'updates.trustedKeys',
        'liveView',
        'stateDir',
        'deviceId',
      ]) {
        expect(
          rt.some((r) => k === r || k.startsWith(`${r}.`)),
          k,
        ).toBe(false);
      }
    },
  );

  it('a patch naming a restart-only key is refused with the key named, and nothing is merged', () => {
    const cases: [unknown, string][] = [
      [{ capture: { ffmpegPath: '/tmp/evil.sh', source: 'file' } }, 'capture.ffmpegPath, capture.source'],
      [{ capture: { file: { path: '/etc/shadow' } } }, 'capture.file.path'],
      [{ capture: { v4l2: { device: '/dev/sda' } } }, 'capture.v4l2.device'],
      [{ capture: { images: { dir: '/root' } } }, 'capture.images.dir'],
      [{ model: { path: '/tmp/x.onnx' } }, 'model'],
      [{ mqtt: { url: 'mqtts://evil:8883' } }, 'mqtt'],
      [{ updates: { trustedKeys: ['x'.repeat(44)] } }, 'updates'],
      [{ liveView: { host: '0.0.0.0' } }, 'liveView'],
      [{ stateDir: '/' }, 'stateDir'],
      [{ capture: null }, 'capture'], // a reset of everything under capture would reset paths too
      [{ nonsense: 1 }, 'nonsense'],
    ];
    for (const [patch, named] of cases) {
      expect(() => applyRuntimePatch(current, patch, 'set_config'), JSON.stringify(patch)).toThrow(
        `set_config: ${named}: cannot be changed at runtime`,
      );
    }
  });

  it('runtime keys still apply (nothing that worked is lost)', () => {
    const next = applyRuntimePatch(
      current,
      {
        logLevel: 'debug',
        alerts: { memoryS: 2.5 },
        postprocess: { minAreaPx: 9 },
        capture: { roi: { x: 0, y: 0, width: 100, height: 100 }, phantom: { fps: 3 } },
      },
      'set_config',
    );
    expect(next.alerts.memoryS).toBe(2.5);
    expect(next.postprocess.minAreaPx).toBe(9);
    expect(next.capture.roi?.width).toBe(100);
    expect(next.capture.phantom.fps).toBe(3);
    expect(next.logLevel).toBe('debug');
    expect(restartOnlyKeys({ alerts: null, postprocess: { pixelSpacingMm: null } })).toEqual([]);
  });
});

describe('response topics (D1, D2)', () => {
  const t = new Topics('thyroid-edge', 'box-a');

  it('only plain topics under <base>/<id>/response/ are accepted', () => {
    expect(t.responseTopicProblem('thyroid-edge/box-a/response/client-7')).toBeNull();
    expect(t.responseTopicProblem('thyroid-edge/box-a/response/a/b/c')).toBeNull();
    const refused: [string, RegExp][] = [
      ['thyroid-edge/box-a/#', /wildcard/],
      ['thyroid-edge/box-a/response/#', /wildcard/],
      ['thyroid-edge/box-a/response/+/x', /wildcard/],
      ['thyroid-edge/box-a/alert', /not under thyroid-edge\/box-a\/response\//],
      ['thyroid-edge/box-a/status', /not under/],
      ['thyroid-edge/box-b/response/x', /not under/],
      ['thyroid-edge/box-a/response/', /not under/],
      ['thyroid-edge/box-a/response/a\0b', /NUL/],
      [`thyroid-edge/box-a/response/${'x'.repeat(600)}`, /longer than 512 bytes/],
      ['', /empty/],
    ];
    for (const [topic, why] of refused) expect(t.responseTopicProblem(topic), topic).toMatch(why);
  });

  it('a configured prefix moves the window; publish topics must be plain', () => {
    expect(responseTopicProblem('replies/box-a/x', 'replies/box-a/')).toBeNull();
    expect(responseTopicProblem('thyroid-edge/box-a/response/x', 'replies/box-a/')).toMatch(/not under/);
    expect(publishTopicProblem('thyroid-edge/box-a/alert')).toBeNull();
    expect(publishTopicProblem('thyroid-edge/box-a/#')).toMatch(/wildcard/);
    expect(() => validateConfig({ mqtt: { responseTopicPrefix: 'replies/#/' } })).toThrow(/mqtt\.responseTopicPrefix/);
  });
});

describe('update URLs (anyone on the broker may request an update)', () => {
  it('https only (file:// when allowed); with updates.allowedHosts, only those hosts and ports', () => {
    expect(checkUrl('https://fleet.example/m.json', false).hostname).toBe('fleet.example');
    expect(() => checkUrl('http://fleet.example/m.json', false)).toThrow(/http: is refused/);
    expect(() => checkUrl('file:///tmp/m.json', false)).toThrow(/file: is refused/);
    expect(checkUrl('file:///tmp/m.json', true).protocol).toBe('file:');
    const hosts = ['Fleet.Hospital.lan', '[::1]', 'mirror.hospital.lan:8443'];
    expect(checkUrl('https://fleet.hospital.lan/b/m.json', false, hosts).hostname).toBe('fleet.hospital.lan');
    expect(checkUrl('https://fleet.hospital.lan:443/b/m.json', false, hosts).port).toBe(''); // 443 is the default
    expect(checkUrl('https://mirror.hospital.lan:8443/m.json', false, hosts).port).toBe('8443');
    expect(checkUrl('https://[::1]/m.json', false, hosts).hostname).toBe('[::1]');
    for (const url of [
      'https://intranet.hospital.lan/',
      'https://fleet.hospital.lan.evil.example/m.json',
      'https://10.0.0.5/',
      // a listed host on another port: the broker could otherwise probe the fleet host's other services
      'https://fleet.hospital.lan:22/',
      'https://mirror.hospital.lan/m.json',
      'https://[::1]:8443/m.json',
    ]) {
      expect(() => checkUrl(url, false, hosts), url).toThrow(/is not in updates\.allowedHosts/);
    }
    expect(() => checkUrl('https://fleet.hospital.lan:22/', false, hosts)).toThrow(
      'url: host fleet.hospital.lan:22 is not in updates.allowedHosts',
    );
    expect(() => validateConfig({ updates: { allowedHosts: ['https://fleet.example'] } })).toThrow(
      /updates\.allowedHosts/,
    );
    expect(() => validateConfig({ updates: { allowedHosts: ['ok.lan', 'fleet.example:99999'] } })).toThrow(
      'config: updates.allowedHosts.1: "fleet.example:99999" is not a host or host:port',
    );
  });
});

describe('client id = certificate identity (D5)', () => {
  it('refuses a client id that differs from the certificate CN', async () => {
    const dir = await tempDir('te-cn-');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/O=ward/CN=box-a',
        '-keyout',
        'k.pem',
        '-out',
        'c.pem',
      ],
      { cwd: dir, stdio: 'ignore' },
    );
    const pem = await readFile(join(dir, 'c.pem'));
    expect(() => checkClientIdentity('box-a', pem)).not.toThrow();
    expect(() => checkClientIdentity('box-b', pem)).toThrow(
      /mqtt\.clientId: "box-b" differs from the identity of mqtt\.certFile \(CN=box-a\)/,
    );
    expect(() => checkClientIdentity('box-a', 'not a pem')).toThrow(/mqtt\.certFile: not a PEM certificate/);
  });
});
