/**
 * Issue 14 against a real mosquitto and a real daemon: a poison response topic (D1), replies
 * steered onto other topics (D2), an outbox that never blocks on one message (old poison files,
 * a broker refusal), and set_config that may not choose programs or files (D3).
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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
  untilProgress,
} from './helpers/daemon.js';
import { tempDir } from './helpers/fixtures.js';

const root = 'thyroid-edge/box-a';
type Msg = { topic: string; payload: Buffer; props: Record<string, unknown> };
const body = (m: Msg) => JSON.parse(m.payload.toString()) as Record<string, unknown>;

/** A valid alert payload as an earlier run left it in the outbox. */
function staleAlert(messageId: string) {
  return {
    messageId,
    deviceId: 'box-a',
    time: Date.now(),
    event: 'nodule_cleared',
    trackId: 1,
    frameSeq: 1,
    peakProb: 0.9,
    largestAreaPx: 100,
    largestAreaFraction: 0.01,
    largestAreaMm2: null,
    firstSeenAt: 1,
    lastSeenAt: 2,
    bbox: { x: 1, y: 1, width: 2, height: 2 },
    centroid: { x: 2, y: 2 },
  };
}

describe('hostile requests and a resilient outbox (issue 14, real mosquitto)', () => {
  // each test stops its daemon and broker: several phantom pipelines at once would starve 2 cores
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup.length = 0;
  }, 300_000);

  async function setup(
    opts: {
      stateDir?: string;
      broker?: Mosquitto;
      mqtt?: Record<string, unknown>;
      fleet?: Record<string, unknown>;
    } = {},
  ) {
    const broker = opts.broker ?? (await Mosquitto.start(await tempDir('te-mq-')));
    cleanup.push(() => broker.stop());
    const all = await subscriber(broker.url, `${root}/#`, opts.fleet ?? {});
    cleanup.push(() => all.client.end(true));
    const cfg = await testConfig(broker.url, opts.mqtt ? { mqtt: opts.mqtt } : {});
    if (opts.stateDir) cfg.stateDir = opts.stateDir;
    const d = await startDaemon(cfg);
    cleanup.push(() => d.stop());
    const of = (sub: string) => all.messages.filter((m: Msg) => m.topic === `${root}/${sub}`);
    // waits key on progress (frames processed, outbox messages arriving), not on an idle machine's timing
    const moving = anyProgress(framesProgress(d), deliveredProgress(all.messages));
    const until = <T>(fn: () => T | undefined | false | Promise<T | undefined | false>, what: string) =>
      untilProgress(fn, moving, STALL_MS, what);
    /** the reply to `command` with this transaction, on its default response topic */
    const replyTo = (command: string, tx: string) =>
      until(
        () =>
          of(`response/${command}`)
            .map(body)
            .find((b) => b.transaction === tx),
        `reply ${command} ${tx}`,
      );
    return { broker, all, d, of, cfg, until, replyTo };
  }

  it('D1: the exact repro (response topic thyroid-edge/<id>/#) is refused on default topic; alerts flow', async () => {
    const { broker, d, of, until, replyTo } = await setup();
    await until(() => of('alert').length >= 1, 'first alert');
    execFileSync('mosquitto_pub', [
      '-h',
      '127.0.0.1',
      '-p',
      String(broker.port),
      '-V',
      'mqttv5',
      '-q',
      '1',
      '-t',
      `${root}/request/ping`,
      '-m',
      '{"transaction":"x"}',
      '-D',
      'publish',
      'response-topic',
      `${root}/#`,
    ]);
    const reply = await replyTo('ping', 'x');
    expect(reply.ok).toBe(false);
    expect(reply.error).toMatch(/response topic "thyroid-edge\/box-a\/#" contains a wildcard.*request refused/);
    const n = of('alert').length;
    await until(() => of('alert').length >= n + 3, 'three more alerts after the poison request');
    expect(d.mqtt.connected).toBe(true);
    expect(d.mqtt.outboxSize).toBeLessThan(3);
  }, 300_000);

  it('D2: a response topic of …/alert or …/status is refused; one under …/response/ is honoured', async () => {
    const { all, of, until, replyTo } = await setup();
    await until(() => of('status').some((m) => body(m).state === 'online'), 'online');
    const ask = (tx: string, responseTopic: string) =>
      all.client.publishAsync(`${root}/request/ping`, JSON.stringify({ transaction: tx }), {
        qos: 1,
        properties: { responseTopic, correlationData: Buffer.from(tx) },
      });
    await ask('to-alert', `${root}/alert`);
    await ask('to-status', `${root}/status`);
    await ask('to-other-box', 'thyroid-edge/box-b/response/ping');
    await ask('mine', `${root}/response/caller-7`);
    const mine = await until(
      () => all.messages.find((m: Msg) => m.topic === `${root}/response/caller-7`),
      'reply on the chosen response topic',
    );
    expect(body(mine)).toMatchObject({ ok: true, transaction: 'mine' });
    expect(Buffer.from(mine.props.correlationData as Buffer).toString()).toBe('mine');
    for (const tx of ['to-alert', 'to-status', 'to-other-box']) {
      const r = await replyTo('ping', tx);
      expect(r.ok, tx).toBe(false);
      expect(r.error, tx).toMatch(/is not under thyroid-edge\/box-a\/response\//);
    }
    await new Promise((r) => setTimeout(r, 1000));
    // no reply ever landed on alert or status
    expect(
      of('alert')
        .map(body)
        .filter((b) => 'command' in b),
    ).toEqual([]);
    expect(
      of('status')
        .map(body)
        .filter((b) => 'command' in b),
    ).toEqual([]);
  }, 300_000);

  it('an outbox file with a bad topic from an earlier version is dead-lettered, reason given; rest flows', async () => {
    const stateDir = await tempDir('te-state-');
    const outbox = join(stateDir, 'outbox');
    await mkdir(outbox, { recursive: true });
    const stored = (seq: number, kind: string, m: Record<string, unknown>) =>
      writeFile(
        join(outbox, `${String(seq).padStart(16, '0')}.${kind}.json`),
        JSON.stringify({ seq, kind, createdAt: Date.now(), ...m }),
      );
    const reply = JSON.stringify({
      messageId: 'old-reply',
      deviceId: 'box-a',
      time: Date.now(),
      command: 'ping',
      transaction: 'x',
      ok: true,
      result: { pong: true },
    });
    await stored(1, 'response', { topic: `${root}/response/ping`, payload: reply, alsoTo: { topic: `${root}/#` } });
    await stored(2, 'alert', { topic: `${root}/#`, payload: '{"messageId":"poison"}' });
    await stored(3, 'response', { topic: `${root}/response/ping`, payload: reply, alsoTo: { topic: `${root}/alert` } });
    const good = staleAlert('stale-good');
    await stored(4, 'alert', { topic: `${root}/alert`, payload: JSON.stringify(good) });
    const { d, of, until } = await setup({ stateDir });
    await until(() => of('alert').some((m) => body(m).messageId === 'stale-good'), 'the good stored alert');
    const n = of('alert').length;
    await until(() => of('alert').length >= n + 2, 'new alerts after the stored ones');
    const dead = (await readdir(join(stateDir, 'outbox-dead'))).sort();
    expect(dead).toEqual([
      '0000000000000001.response.json',
      '0000000000000002.alert.json',
      '0000000000000003.response.json',
    ]);
    const reasons = await Promise.all(
      dead.map(async (f) => JSON.parse(await readFile(join(stateDir, 'outbox-dead', f), 'utf8')).reason as string),
    );
    expect(reasons[0]).toMatch(/response topic "thyroid-edge\/box-a\/#" contains a wildcard/);
    expect(reasons[1]).toMatch(/topic "thyroid-edge\/box-a\/#" contains a wildcard/);
    expect(reasons[2]).toMatch(/response topic "thyroid-edge\/box-a\/alert" is not under/);
    const tele = await until(
      () =>
        of('telemetry')
          .map(body)
          .find((t) => (t.outbox as { deadLettered: number }).deadLettered === 3),
      'telemetry counting dead letters',
    );
    expect(tele.outbox).toMatchObject({ deadLettered: 3 });
    expect(d.mqtt.connected).toBe(true);
  }, 300_000);

  it('a message the broker refuses (PUBACK "not authorized") is dead-lettered; alerts keep flowing', async () => {
    const dir = await tempDir('te-mq-acl-');
    const pw = join(dir, 'passwd');
    execFileSync('mosquitto_passwd', ['-b', '-c', pw, 'box-a', 'a-secret']);
    execFileSync('mosquitto_passwd', ['-b', pw, 'fleet', 'f-secret']);
    // the box may answer on response/ping but not on response/audit: a broker policy the daemon cannot know
    await writeFile(
      join(dir, 'acl'),
      [
        'user fleet',
        'topic readwrite thyroid-edge/#',
        'user box-a',
        ...['status', 'telemetry', 'result', 'alert', 'update', 'response/ping'].map((t) => `topic write ${root}/${t}`),
        `topic read ${root}/request/#`,
        '',
      ].join('\n'),
    );
    const p = await freePort();
    const broker = await Mosquitto.start(dir, {
      port: p,
      listener: [
        `listener ${p} 127.0.0.1`,
        'allow_anonymous false',
        `password_file ${pw}`,
        `acl_file ${join(dir, 'acl')}`,
      ].join('\n'),
    });
    const { all, d, of, cfg, until, replyTo } = await setup({
      broker,
      mqtt: { username: 'box-a', password: 'a-secret' },
      fleet: { username: 'fleet', password: 'f-secret' },
    });
    await until(() => of('alert').length >= 1, 'first alert');
    await all.client.publishAsync(`${root}/request/ping`, '{"transaction":"audit"}', {
      qos: 1,
      properties: { responseTopic: `${root}/response/audit` },
    });
    await replyTo('ping', 'audit');
    // dead letters are the .json files: the daemon writes each one atomically (a .tmp beside it, then a rename)
    const letters = async () =>
      (await readdir(join(cfg.stateDir, 'outbox-dead')).catch(() => [] as string[])).filter((n) => n.endsWith('.json'));
    const dead = await until(async () => {
      const l = await letters();
      return l.length > 0 && l;
    }, 'the dead letter');
    expect(dead).toHaveLength(1);
    const letter = JSON.parse(await readFile(join(cfg.stateDir, 'outbox-dead', dead[0]!), 'utf8'));
    expect(letter.reason).toMatch(/refused by the broker \(reason code 0x87\)/);
    expect(letter.message.alsoTo.topic).toBe(`${root}/response/audit`);
    const n = of('alert').length;
    await until(() => of('alert').length >= n + 3, 'alerts after the refusal');
    expect(d.mqtt.connected).toBe(true);
  }, 300_000);

  it('a message failing maxAttempts times (broker drops the connection) is dead-lettered; the rest flows', async () => {
    // mosquitto drops a client that sends a packet over max_packet_size: a stored 20 kB alert can never get through
    const p = await freePort();
    const broker = await Mosquitto.start(await tempDir('te-mq-'), { port: p, extra: 'max_packet_size 8000' });
    const stateDir = await tempDir('te-state-');
    const outbox = join(stateDir, 'outbox');
    await mkdir(outbox, { recursive: true });
    const alert = (id: string, pad: number) => JSON.stringify({ ...staleAlert(id), pad: 'x'.repeat(pad) });
    await writeFile(
      join(outbox, '0000000000000001.alert.json'),
      JSON.stringify({
        seq: 1,
        kind: 'alert',
        createdAt: Date.now(),
        topic: `${root}/alert`,
        payload: alert('too-big', 20_000),
      }),
    );
    await writeFile(
      join(outbox, '0000000000000002.alert.json'),
      JSON.stringify({
        seq: 2,
        kind: 'alert',
        createdAt: Date.now(),
        topic: `${root}/alert`,
        payload: alert('behind-it', 0),
      }),
    );
    const { d, of, until } = await setup({ broker, stateDir }); // default mqtt.outbox.maxAttempts: 5
    await until(
      () => of('alert').some((m) => body(m).messageId === 'behind-it'),
      'the alert behind the undeliverable one',
    );
    const n = of('alert').length;
    await until(() => of('alert').length >= n + 2, 'new alerts');
    expect(of('alert').some((m) => body(m).messageId === 'too-big')).toBe(false);
    const dead = await readdir(join(stateDir, 'outbox-dead'));
    expect(dead).toEqual(['0000000000000001.alert.json']);
    const letter = JSON.parse(await readFile(join(stateDir, 'outbox-dead', dead[0]!), 'utf8'));
    expect(letter.reason).toMatch(/delivery failed 5 times in a row; last: connection closed/);
    expect(JSON.parse(letter.message.payload).messageId).toBe('too-big');
    expect(d.mqtt.connected).toBe(true);
  }, 300_000);

  it('D3: set_config naming capture.ffmpegPath or capture.file.path is refused with the key; none runs', async () => {
    const { all, d, of, until, replyTo } = await setup();
    await until(() => of('status').some((m) => body(m).state === 'online'), 'online');
    const dir = await tempDir('te-evil-');
    const marker = join(dir, 'ran');
    const script = join(dir, 'evil.sh');
    await writeFile(script, `#!/bin/sh\ntouch ${marker}\nsleep 30\n`);
    await chmod(script, 0o755);
    const ask = async (tx: string, config: unknown) => {
      await all.client.publishAsync(`${root}/request/set_config`, JSON.stringify({ transaction: tx, config }), {
        qos: 1,
      });
      return replyTo('set_config', tx);
    };
    const file = { path: '/etc/hostname', width: 64, height: 64 };
    const roi = { x: 0, y: 0, width: 64, height: 64 };
    const prog = await ask('prog', { capture: { source: 'file', ffmpegPath: script, file, roi } });
    expect(prog.ok).toBe(false);
    expect(prog.error).toMatch(/capture\.ffmpegPath.*cannot be changed at runtime/);
    const shadow = await ask('shadow', { capture: { file: { path: '/etc/shadow' } } });
    expect(shadow.ok).toBe(false);
    expect(shadow.error).toMatch(/config: capture\.file\.path: cannot be changed at runtime/);
    const alone = await ask('alone', { capture: { ffmpegPath: script } });
    expect(alone.error).toMatch(/config: capture\.ffmpegPath: cannot be changed at runtime/);
    await new Promise((r) => setTimeout(r, 3000));
    await expect(readFile(marker)).rejects.toThrow(/ENOENT/);
    const cfg = d.daemon.currentConfig;
    expect(cfg.capture.ffmpegPath).toBe('ffmpeg');
    expect(cfg.capture.source).toBe('phantom');
    expect(cfg.capture.file.path).toBe('');
    // runtime keys outside mqtt.setConfigKeys (default: the log level only) are refused too, named
    const tuning = await ask('tuning', { alerts: { minAreaPx: 41 }, logLevel: 'fatal' });
    expect(tuning.error).toMatch(/config: alerts\.minAreaPx: not in mqtt\.setConfigKeys \(logLevel\)/);
    expect(d.daemon.currentConfig.alerts.minAreaPx).not.toBe(41);
    const ok = await ask('level', { logLevel: 'fatal' });
    expect(ok.ok).toBe(true);
  }, 300_000);

  it.each([5, 4] as const)(
    'D4 (MQTT %i): a retained request never runs; a huge one is dropped by the broker (5) or refused by its size (4)',
    async (protocolVersion) => {
      const broker = await Mosquitto.start(await tempDir('te-mq-'));
      cleanup.push(() => broker.stop());
      // left on the broker before the box connects: a retained set_config would otherwise be a standing override
      const planter = await subscriber(broker.url, 'nothing/#');
      cleanup.push(() => planter.client.end(true));
      await planter.client.publishAsync(
        `${root}/request/set_config`,
        JSON.stringify({ transaction: 'retained', config: { alerts: { minAreaPx: 42 } } }),
        { qos: 1, retain: true },
      );
      const { all, d, of, until, replyTo } = await setup({ broker, mqtt: { protocolVersion } });
      await until(() => of('status').some((m) => body(m).state === 'online'), 'online');
      const huge = Buffer.from(JSON.stringify({ transaction: 'huge', pad: 'x'.repeat(3 * 65536) }));
      await all.client.publishAsync(`${root}/request/ping`, huge, { qos: 1 });
      await all.client.publishAsync(`${root}/request/ping`, JSON.stringify({ transaction: 'after' }), { qos: 1 });
      // commands run in arrival order: once 'after' is answered, anything before it has been handled
      await replyTo('ping', 'after');
      const replies = [...of('response/set_config'), ...of('response/ping')].map(body);
      expect(replies.some((b) => b.transaction === 'retained')).toBe(false);
      expect(d.daemon.currentConfig.alerts.minAreaPx).not.toBe(42);
      const hugeReply = of('response/ping')
        .map(body)
        .filter((b) => b.error !== undefined);
      if (protocolVersion === 5)
        expect(hugeReply).toEqual([]); // over twice the limit: the broker dropped it
      else
        expect(hugeReply.map((b) => b.error)).toEqual([`payload of ${huge.length} bytes exceeds the limit of 65536`]);
    },
    300_000,
  );
});
