/**
 * TLS with client certificates and per-device ACLs, against a real mosquitto. The identity test
 * (issue 14, D5) runs the shipped deploy/mosquitto/mosquitto.conf and acl themselves, with only
 * the port and certificate paths changed.
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Mosquitto, freePort } from './helpers/mosquitto.js';
import {
  STALL_MS,
  anyProgress,
  deliveredProgress,
  framesProgress,
  startDaemon,
  subscriber,
  testConfig,
  until,
  untilProgress,
} from './helpers/daemon.js';
import { tempDir } from './helpers/fixtures.js';
import { makePki } from './helpers/pki.js';

/** The shipped broker config, pointed at a test port and PKI (persistence is the helper's own). */
async function shippedListener(port: number, pki: string): Promise<string> {
  const conf = await readFile(join(process.cwd(), 'deploy/mosquitto/mosquitto.conf'), 'utf8');
  return conf
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('persistence'))
    .map((l) => {
      const [k] = l.split(/\s+/);
      if (k === 'listener') return `listener ${port} 127.0.0.1`;
      if (k === 'cafile') return `cafile ${pki}/ca.crt`;
      if (k === 'certfile') return `certfile ${pki}/server.crt`;
      if (k === 'keyfile') return `keyfile ${pki}/server.key`;
      if (k === 'acl_file') return `acl_file ${process.cwd()}/deploy/mosquitto/acl`;
      return l;
    })
    .join('\n');
}

describe('MQTT security (real mosquitto)', () => {
  // each test stops its daemon and broker: pipelines left running under the next test starve 2 cores
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup.length = 0;
  }, 120_000);
  /** waits on a daemon key on its progress (frames processed, outbox messages arriving), not on an idle machine */
  const whileMoving = <T>(
    d: Awaited<ReturnType<typeof startDaemon>>,
    messages: { topic: string }[],
    fn: () => T | undefined | false,
    what: string,
  ) => untilProgress(fn, anyProgress(framesProgress(d), deliveredProgress(messages)), STALL_MS, what);

  it('mTLS: the daemon connects with its client certificate; a client without one is refused', async () => {
    const dir = await tempDir('te-pki-');
    await makePki(dir, ['box-a', 'fleet-manager']);
    const port = await freePort();
    const broker = await Mosquitto.start(dir, {
      port,
      listener: [
        `listener ${port} 127.0.0.1`,
        `cafile ${dir}/ca.crt`,
        `certfile ${dir}/server.crt`,
        `keyfile ${dir}/server.key`,
        'require_certificate true',
        'use_identity_as_username true',
        'allow_anonymous false',
        `acl_file ${process.cwd()}/deploy/mosquitto/acl`,
      ].join('\n'),
    });
    cleanup.push(() => broker.stop());
    const url = `mqtts://127.0.0.1:${port}`;
    const ca = await readFile(join(dir, 'ca.crt'));
    const fleet = await subscriber(url, 'thyroid-edge/#', {
      ca,
      cert: await readFile(join(dir, 'fleet-manager.crt')),
      key: await readFile(join(dir, 'fleet-manager.key')),
      clientId: 'fleet-manager',
    });
    cleanup.push(() => fleet.client.end(true));
    const d = await startDaemon(
      await testConfig(url, {
        mqtt: { caFile: join(dir, 'ca.crt'), certFile: join(dir, 'box-a.crt'), keyFile: join(dir, 'box-a.key') },
      }),
    );
    cleanup.push(() => d.stop());
    const status = await whileMoving(
      d,
      fleet.messages,
      () => fleet.messages.find((m) => m.topic === 'thyroid-edge/box-a/status'),
      'status over mTLS',
    );
    expect(JSON.parse(status.payload.toString()).state).toBe('online');
    // no client certificate: the TLS handshake fails
    const anon = mqtt.connect(url, { ca, reconnectPeriod: 0, connectTimeout: 5000 });
    const outcome = await new Promise<string>((resolve) => {
      anon.once('connect', () => resolve('connected'));
      anon.once('error', (e) => resolve(`error: ${e.message}`));
      anon.once('close', () => resolve('closed'));
    });
    anon.end(true);
    expect(outcome).not.toBe('connected');
  }, 300_000);

  it('ACL (shipped deploy/mosquitto/acl): box A cannot write box B topics nor read its requests', async () => {
    const dir = await tempDir('te-acl-');
    const pw = join(dir, 'passwd');
    execFileSync('mosquitto_passwd', ['-b', '-c', pw, 'fleet-manager', 'fm-secret']);
    execFileSync('mosquitto_passwd', ['-b', pw, 'box-a', 'a-secret']);
    execFileSync('mosquitto_passwd', ['-b', pw, 'box-b', 'b-secret']);
    const port = await freePort();
    const broker = await Mosquitto.start(dir, {
      port,
      listener: [
        `listener ${port} 127.0.0.1`,
        'allow_anonymous false',
        `password_file ${pw}`,
        `acl_file ${process.cwd()}/deploy/mosquitto/acl`,
      ].join('\n'),
    });
    cleanup.push(() => broker.stop());
    const fleet = await subscriber(broker.url, 'thyroid-edge/#', {
      username: 'fleet-manager',
      password: 'fm-secret',
      clientId: 'fleet-manager',
    });
    cleanup.push(() => fleet.client.end(true));
    const boxA = await subscriber(broker.url, 'thyroid-edge/box-b/request/#', {
      username: 'box-a',
      password: 'a-secret',
      clientId: 'box-a',
    });
    cleanup.push(() => boxA.client.end(true));
    await boxA.client.subscribeAsync('thyroid-edge/box-a/request/#', { qos: 1 });

    await boxA.client.publishAsync('thyroid-edge/box-b/alert', '{"forged":true}', { qos: 1 }).catch(() => undefined);
    await boxA.client.publishAsync('thyroid-edge/box-b/status', '{"forged":true}', { qos: 1 }).catch(() => undefined);
    await boxA.client.publishAsync('thyroid-edge/box-a/alert', '{"own":true}', { qos: 1 });
    await fleet.client.publishAsync('thyroid-edge/box-b/request/ping', '{}', { qos: 1 });
    await fleet.client.publishAsync('thyroid-edge/box-a/request/ping', '{}', { qos: 1 });
    await until(() => fleet.messages.some((m) => m.topic === 'thyroid-edge/box-a/alert'), 60_000, 'own alert');
    await until(() => boxA.messages.some((m) => m.topic === 'thyroid-edge/box-a/request/ping'), 60_000, 'own request');
    await new Promise((r) => setTimeout(r, 500));
    expect(
      fleet.messages.filter((m) => m.topic.startsWith('thyroid-edge/box-b/') && !m.topic.includes('/request/')),
    ).toEqual([]);
    expect(boxA.messages.filter((m) => m.topic.startsWith('thyroid-edge/box-b/'))).toEqual([]);

    // and the daemon itself works inside those ACLs; it connects as client id box-a, so the test's
    // box-a client leaves first (two clients with one id would take the connection from each other)
    await boxA.client.endAsync(true);
    const d = await startDaemon(await testConfig(broker.url, { mqtt: { username: 'box-a', password: 'a-secret' } }));
    cleanup.push(() => d.stop());
    await whileMoving(
      d,
      fleet.messages,
      () => fleet.messages.some((m) => m.topic === 'thyroid-edge/box-a/status'),
      'daemon status under ACL',
    );
    await fleet.client.publishAsync('thyroid-edge/box-a/request/ping', '{"transaction":"acl"}', { qos: 1 });
    const resp = await whileMoving(
      d,
      fleet.messages,
      () => fleet.messages.find((m) => m.topic === 'thyroid-edge/box-a/response/ping'),
      'response under ACL',
    );
    expect(JSON.parse(resp.payload.toString())).toMatchObject({ ok: true, transaction: 'acl' });
  }, 300_000);

  it("D5: box A's certificate with client id box-b cannot publish box B's alert/status, read its requests, " +
    'or kick it off; the daemon refuses such a config', async () => {
    const dir = await tempDir('te-id-');
    await makePki(dir, ['box-a', 'box-b', 'fleet-manager']);
    const port = await freePort();
    const listener = await shippedListener(port, dir);
    expect(listener).toContain('use_identity_as_username true');
    expect(listener).toContain('use_username_as_clientid true');
    const broker = await Mosquitto.start(dir, { port, listener });
    cleanup.push(() => broker.stop());
    const url = `mqtts://127.0.0.1:${port}`;
    const ca = await readFile(join(dir, 'ca.crt'));
    const tls = async (who: string) => ({
      ca,
      cert: await readFile(join(dir, `${who}.crt`)),
      key: await readFile(join(dir, `${who}.key`)),
    });
    const fleet = await subscriber(url, 'thyroid-edge/#', {
      ...(await tls('fleet-manager')),
      clientId: 'fleet-manager',
    });
    cleanup.push(() => fleet.client.end(true));
    // the real box B
    const b = await startDaemon(
      await testConfig(url, {
        deviceId: 'box-b',
        mqtt: { caFile: join(dir, 'ca.crt'), certFile: join(dir, 'box-b.crt'), keyFile: join(dir, 'box-b.key') },
      }),
    );
    cleanup.push(() => b.stop());
    const bStatus = () =>
      fleet.messages
        .filter((m) => m.topic === 'thyroid-edge/box-b/status')
        .map((m) => JSON.parse(m.payload.toString()));
    await whileMoving(b, fleet.messages, () => bStatus().some((s) => s.state === 'online'), 'box B online');
    // box A's certificate, asking for client id box-b
    const spoof = await subscriber(url, 'thyroid-edge/box-b/request/#', {
      ...(await tls('box-a')),
      clientId: 'box-b',
      reconnectPeriod: 0,
    });
    cleanup.push(() => spoof.client.end(true));
    const forged = JSON.stringify({ forged: true, state: 'offline', event: 'nodule_detected' });
    const refusals: string[] = [];
    for (const t of ['thyroid-edge/box-b/alert', 'thyroid-edge/box-b/status']) {
      await spoof.client
        .publishAsync(t, forged, { qos: 1, retain: t.endsWith('status') })
        .catch((e: Error) => refusals.push(e.message));
    }
    expect(refusals).toHaveLength(2);
    expect(refusals.every((r) => /Not authorized/i.test(r))).toBe(true);
    await fleet.client.publishAsync('thyroid-edge/box-b/request/ping', '{"transaction":"still-b"}', { qos: 1 });
    const resp = await whileMoving(
      b,
      fleet.messages,
      () => fleet.messages.find((m) => m.topic === 'thyroid-edge/box-b/response/ping'),
      'box B answers',
    );
    expect(JSON.parse(resp.payload.toString())).toMatchObject({ ok: true, transaction: 'still-b', deviceId: 'box-b' });
    await new Promise((r) => setTimeout(r, 1000));
    expect(
      fleet.messages.filter(
        (m) => m.topic.startsWith('thyroid-edge/box-b/') && m.payload.toString().includes('forged'),
      ),
    ).toEqual([]);
    expect(spoof.messages).toEqual([]); // box B's requests never reach box A's certificate
    expect(b.mqtt.connected).toBe(true); // not kicked off: the spoofer's client id became box-a
    expect(bStatus().at(-1)!.state).toBe('online');
    // and a daemon configured that way refuses to start, naming the key
    const bad = await startDaemon(
      await testConfig(url, {
        deviceId: 'box-b',
        mqtt: {
          clientId: 'box-b',
          caFile: join(dir, 'ca.crt'),
          certFile: join(dir, 'box-a.crt'),
          keyFile: join(dir, 'box-a.key'),
        },
      }),
    ).catch((e: Error) => e);
    expect(bad).toBeInstanceOf(Error);
    expect((bad as Error).message).toMatch(
      /mqtt\.clientId: "box-b" differs from the identity of mqtt\.certFile \(CN=box-a\)/,
    );
  }, 300_000);
});
