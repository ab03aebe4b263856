/**
 * The image's data partition and a box's own settings, with the real tools (sfdisk, mkfs.ext4, debugfs,
 * systemd-tmpfiles, systemd-analyze) on a small GPT image laid out like wic/thyroid-edge-qemuarm64.wks:
 * deploy/yocto/provision-box.sh writes the box's layer there, the layer's tmpfiles.d hands it to the daemon's
 * group at boot, and the unit's drop-in has the daemon read it and keep its state beside it.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { tempDir } from './helpers/fixtures.js';
import { type Ran, runCommand } from './helpers/run.js';

const LAYER = 'deploy/yocto/meta-thyroid-edge';
const FILES = join(LAYER, 'recipes-thyroid-edge/thyroid-edge/files');
const IMAGE_CONFIG = join(FILES, 'config.yaml');
const PROVISION = 'deploy/yocto/provision-box.sh';
// sfdisk, mkfs.ext4, debugfs and systemd-tmpfiles live in sbin, which a non-root PATH may lack
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const MiB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;

function run(cmd: string, args: string[]): Promise<Ran> {
  return runCommand(cmd, args, { env, timeoutMs: 60_000 });
}

/** A 48 MiB GPT image: "root" (8 MiB of random bytes) then "tedata" (32 MiB), as wic lays them out. */
async function image(dir: string, partitions = 'size=8MiB, name=root\nsize=32MiB, name=tedata\n'): Promise<string> {
  const file = join(dir, 'thyroid-edge-image.wic');
  await writeFile(file, Buffer.alloc(48 * MiB));
  await writeFile(join(dir, 'layout.sfdisk'), `label: gpt\n${partitions}`);
  const r = await run('sh', ['-c', 'sfdisk -q "$0" < "$1"', file, join(dir, 'layout.sfdisk')]);
  expect(r.status, r.stderr).toBe(0);
  const bytes = await readFile(file);
  const root = await partition(file, 'root');
  for (let i = 0; i < root.size; i++) bytes[root.start + i] = (i * 2654435761) >>> 24;
  await writeFile(file, bytes);
  return file;
}

async function partition(file: string, name: string): Promise<{ start: number; size: number }> {
  const r = await run('sfdisk', ['--json', file]);
  const t = JSON.parse(r.stdout).partitiontable;
  const p = t.partitions.find((q: { name?: string }) => q.name === name);
  return { start: p.start * t.sectorsize, size: p.size * t.sectorsize };
}

async function sha256Of(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

/** The image's bytes outside one partition, hashed: what provisioning must leave alone. */
async function outside(file: string, part: { start: number; size: number }): Promise<string> {
  const b = await readFile(file);
  return createHash('sha256')
    .update(b.subarray(0, part.start))
    .update(b.subarray(part.start + part.size))
    .digest('hex');
}

async function debugfs(fs: string, request: string): Promise<string> {
  const r = await run('debugfs', ['-R', request, fs]);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

const BOX = 'deviceId: box-17\nmqtt:\n  url: mqtts://broker.ward.example:8883\n  caFile: /data/box/ca.pem\n';

describe('the data partition and a box of its own (deploy/yocto)', () => {
  it('provision-box.sh writes the box layer into tedata and leaves the rest of the image byte for byte', async () => {
    const dir = await tempDir();
    const file = await image(dir);
    const data = await partition(file, 'tedata');
    const before = await outside(file, data);
    await writeFile(join(dir, 'box.yaml'), BOX);
    await writeFile(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\n');
    const r = await run('bash', [PROVISION, file, join(dir, 'box.yaml'), join(dir, 'ca.pem')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('is now box box-17');
    expect(await outside(file, data)).toBe(before);

    const fs = join(dir, 'data.ext4');
    await writeFile(fs, (await readFile(file)).subarray(data.start, data.start + data.size));
    expect(await debugfs(fs, 'cat /box/config.yaml')).toBe(BOX);
    expect(await debugfs(fs, 'cat /box/ca.pem')).toBe('-----BEGIN CERTIFICATE-----\n');
    expect(await debugfs(fs, 'stat /box/ca.pem')).toMatch(/Mode:\s+0640/);
    expect(await debugfs(fs, 'stat /box')).toMatch(/Mode:\s+0750/);
    const sb = await run('dumpe2fs', ['-h', fs]);
    expect(sb.stdout).toMatch(/Filesystem volume name:\s+tedata/);
    // what the daemon then runs on: the image's settings with the box's over them
    const c = await loadConfig([IMAGE_CONFIG, join(dir, 'box.yaml')], {});
    expect(c).toMatchObject({ deviceId: 'box-17', capture: { source: 'v4l2' } });
    expect(c.mqtt).toMatchObject({ url: 'mqtts://broker.ward.example:8883', setConfigKeys: ['logLevel'] });
    expect(c.model.path).toBe('/usr/share/thyroid-edge/models/thyroid-nodule-int8.onnx');
  });

  it('refuses, image unchanged: a layer with a bad key or no deviceId, an image without tedata, a qcow2', async () => {
    const dir = await tempDir();
    const file = await image(dir);
    const whole = await sha256Of(file);
    await writeFile(join(dir, 'box.yaml'), 'deviceId: box-17\nmqtt:\n  url: mqtt://broker.ward.example\n');
    const bad = await run('bash', [PROVISION, file, join(dir, 'box.yaml')]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('mqtt.url: plain mqtt to broker.ward.example is refused');
    expect(bad.stderr).toContain('is unchanged');
    expect(await sha256Of(file)).toBe(whole);

    // a layer without its own deviceId: the box would join the fleet as the image's box-01, as every other would
    await writeFile(join(dir, 'box.yaml'), 'mqtt:\n  url: mqtts://broker.ward.example:8883\n');
    const anon = await run('bash', [PROVISION, file, join(dir, 'box.yaml')]);
    expect(anon.status).toBe(2);
    expect(anon.stderr).toContain("deviceId: must be set, to this box's own (the image's is box-01");
    expect(await sha256Of(file)).toBe(whole);

    // the image's own config need not be valid alone (a dongle without its ROI, which each box's layer brings)
    await writeFile(join(dir, 'site.yaml'), 'capture:\n  source: v4l2\nmqtt:\n  setConfigKeys: [logLevel]\n');
    await writeFile(
      join(dir, 'box.yaml'),
      'deviceId: box-5\ncapture:\n  roi: { x: 0, y: 0, width: 640, height: 480 }\n',
    );
    const site = await run('bash', [PROVISION, '--base', join(dir, 'site.yaml'), file, join(dir, 'box.yaml')]);
    expect(site.status, site.stderr).toBe(0);
    expect(site.stdout).toContain('is now box box-5');
    await writeFile(join(dir, 'box.yaml'), 'capture:\n  roi: { x: 0, y: 0, width: 640, height: 480 }\n');
    const siteAnon = await run('bash', [PROVISION, '--base', join(dir, 'site.yaml'), file, join(dir, 'box.yaml')]);
    expect(siteAnon.status).toBe(2);
    expect(siteAnon.stderr).toContain("deviceId: must be set, to this box's own (the image's is the default");

    await writeFile(join(dir, 'box.yaml'), BOX);
    const other = await image(await tempDir(), 'size=8MiB, name=root\nsize=32MiB, name=data\n');
    const none = await run('bash', [PROVISION, other, join(dir, 'box.yaml')]);
    expect(none.status).toBe(1);
    expect(none.stderr).toContain('0 partitions named tedata (want 1); names: root, data');

    await writeFile(
      join(dir, 'img.wic.qcow2'),
      Buffer.concat([Buffer.from([0x51, 0x46, 0x49, 0xfb]), Buffer.alloc(512)]),
    );
    const qcow = await run('bash', [PROVISION, join(dir, 'img.wic.qcow2'), join(dir, 'box.yaml')]);
    expect(qcow.status).toBe(1);
    expect(qcow.stderr).toContain('qemu-img convert -O raw');
  });

  it.skipIf(!isRoot)(
    `at boot, tmpfiles.d gives /data/box to root (group-readable by the daemon), the state dir to the daemon${
      isRoot ? '' : ' (skipped: systemd-tmpfiles --root chowns, which needs root; CI runs as root)'
    }`,
    async () => {
      const dir = await tempDir();
      const file = await image(dir);
      await writeFile(join(dir, 'box.yaml'), BOX);
      expect((await run('bash', [PROVISION, file, join(dir, 'box.yaml')])).status).toBe(0);
      const data = await partition(file, 'tedata');
      const fs = join(dir, 'data.ext4');
      await writeFile(fs, (await readFile(file)).subarray(data.start, data.start + data.size));
      // the box as booted: the partition's files under /data, the recipe's user (its fixed ids) in /etc/passwd
      const bb = await readFile(join(LAYER, 'recipes-thyroid-edge/thyroid-edge/thyroid-edge_0.1.0.bb'), 'utf8');
      const uid = /USERADD_PARAM:\$\{PN\} = "[^"]*--uid (\d+)/.exec(bb)?.[1];
      const gid = /GROUPADD_PARAM:\$\{PN\} = "[^"]*--gid (\d+)/.exec(bb)?.[1];
      expect(uid, 'the recipe fixes the uid').toBeDefined();
      expect(gid, 'the recipe fixes the gid').toBeDefined();
      const root = join(dir, 'root');
      await mkdir(join(root, 'etc'), { recursive: true });
      await mkdir(join(root, 'data'));
      await writeFile(
        join(root, 'etc/passwd'),
        `root:x:0:0::/root:/bin/sh\nthyroid-edge:x:${uid}:${gid}::/:/sbin/nologin\n`,
      );
      await writeFile(join(root, 'etc/group'), `root:x:0:\nvideo:x:44:thyroid-edge\nthyroid-edge:x:${gid}:\n`);
      await debugfs(fs, `rdump /box ${join(root, 'data')}`);
      // as written by whoever provisioned (not root), and a state directory left with another owner
      await mkdir(join(root, 'data/thyroid-edge'), { mode: 0o755 });
      const chown = await run('chown', ['-R', '1000:1000', join(root, 'data/box'), join(root, 'data/thyroid-edge')]);
      expect(chown.status, chown.stderr).toBe(0);
      const conf = join(dir, 'thyroid-edge-data.conf');
      await copyFile(join(FILES, 'thyroid-edge-data.conf'), conf);
      const t = await run('systemd-tmpfiles', ['--create', `--root=${root}`, conf]);
      expect(t.status, t.stderr).toBe(0);
      const stat = await run('stat', [
        '-c',
        '%n %a %u:%g',
        ...['box', 'box/config.yaml', 'thyroid-edge'].map((p) => join(root, 'data', p)),
      ]);
      expect(stat.stdout.replaceAll(`${root}/data/`, '').trim().split('\n')).toEqual([
        `box 750 0:${gid}`,
        `box/config.yaml 640 0:${gid}`,
        `thyroid-edge 700 ${uid}:${gid}`,
      ]);
    },
  );

  it("the unit with the image's drop-ins: verify clean, both layers, state on /data, exposure <= 3.0", async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'thyroid-edge.service.d'));
    await copyFile('deploy/systemd/thyroid-edge.service', join(dir, 'thyroid-edge.service'));
    for (const f of ['10-static-user.conf', '20-data-partition.conf'])
      await copyFile(join(FILES, f), join(dir, 'thyroid-edge.service.d', f));
    const unit = join(dir, 'thyroid-edge.service');
    const verify = await run('systemd-analyze', ['verify', unit]);
    expect(`${verify.stdout}${verify.stderr}`.trim()).toBe('');
    expect(verify.status).toBe(0);
    const security = await run('systemd-analyze', ['security', '--offline=true', unit]);
    const m = /Overall exposure level for thyroid-edge\.service: ([\d.]+)/.exec(security.stdout);
    expect(m, security.stdout + security.stderr).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(3.0);

    const dropIn = await readFile(join(FILES, '20-data-partition.conf'), 'utf8');
    expect(dropIn).toMatch(/^ExecStart=\n/m); // resets the unit's one ExecStart
    expect(dropIn).toContain('run --config /etc/thyroid-edge/config.yaml --config /data/box/config.yaml\n');
    expect(dropIn).toContain('RequiresMountsFor=/data\n');
    // the state directory the daemon is told, the one it may write, and the one tmpfiles makes its own agree
    expect(dropIn).toContain('Environment=THYROID_EDGE__stateDir=/data/thyroid-edge\n');
    expect(dropIn).toContain('ReadWritePaths=/data/thyroid-edge\n');
    const tmpfiles = await readFile(join(FILES, 'thyroid-edge-data.conf'), 'utf8');
    expect(tmpfiles).toContain('d /data/thyroid-edge 0700 thyroid-edge thyroid-edge -');
    // the partition wic makes is the one provision-box.sh looks for, mounted where the drop-in expects it
    const wks = await readFile(join(LAYER, 'wic/thyroid-edge-qemuarm64.wks'), 'utf8');
    expect(wks).toMatch(/^part \/data --fstype=ext4 --label tedata --part-name tedata /m);
    const bb = await readFile(join(LAYER, 'recipes-thyroid-edge/thyroid-edge/thyroid-edge_0.1.0.bb'), 'utf8');
    for (const f of ['20-data-partition.conf', 'thyroid-edge-data.conf']) expect(bb).toContain(`file://${f}`);
  });
});
