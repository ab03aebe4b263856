import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, applyEnvOverrides, loadConfig, validateConfig, modelCardPath } from '../src/config/load.js';
import { configMarkdown } from '../src/config/docs.js';
import { readFileSync } from 'node:fs';
import { tempDir } from './helpers/fixtures.js';

function errorOf(raw: unknown): string {
  try {
    validateConfig(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('an empty config gets every default and runs the phantom', () => {
    const c = validateConfig({});
    expect(c.capture.source).toBe('phantom');
    expect(c.model.executionProviders).toEqual(['cpu']);
    expect(modelCardPath(c)).toBe('models/thyroid-nodule-int8.json');
  });

  it.each([
    [{ bogus: 1 }, 'bogus: unknown key'],
    [{ capture: { phantom: { speed: 2 } } }, 'capture.phantom.speed: unknown key'],
    [{ model: { threads: 'two' } }, 'model.threads: must be integer'],
    [{ model: { threads: 0 } }, 'model.threads: must be >= 1'],
    [{ capture: { source: 'webcam' } }, 'capture.source'],
    [{ capture: { v4l2: { fps: -5 } } }, 'capture.v4l2.fps: must be > 0'],
    [{ deviceId: 'box 1/#' }, 'deviceId: must match pattern'],
    [{ capture: { roi: { x: 0, y: 0, width: 8, height: 100 } } }, 'capture.roi'],
    [{ capture: { source: 'v4l2' } }, 'capture.roi: is required for source "v4l2"'],
    [
      { capture: { source: 'v4l2', roi: { x: 1800, y: 0, width: 400, height: 400 } } },
      'capture.roi: lies outside the 1920x1080',
    ],
    [{ capture: { source: 'file', roi: { x: 0, y: 0, width: 100, height: 100 } } }, 'capture.file.path: is required'],
    [{ capture: { source: 'images' } }, 'capture.images.dir: is required'],
    [{ postprocess: { pixelSpacingMm: { x: 0, y: 0.1 } } }, 'postprocess.pixelSpacingMm'],
    [[1, 2], 'top level must be a mapping'],
    [
      { mqtt: { url: 'mqtt://broker.hospital.example:1883' } },
      'mqtt.url: plain mqtt to broker.hospital.example is refused',
    ],
  ])('%j is refused naming its key', (raw, key) => {
    expect(errorOf(raw)).toContain(key);
  });

  it('reads YAML and JSON files and names the file in errors', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.yaml'), 'deviceId: ward-3\ncapture:\n  phantom:\n    fps: 5\n');
    const c = await loadConfig(join(dir, 'a.yaml'), {});
    expect(c.deviceId).toBe('ward-3');
    expect(c.capture.phantom.fps).toBe(5);
    await writeFile(join(dir, 'b.json'), '{"deviceId": ');
    await expect(loadConfig(join(dir, 'b.json'), {})).rejects.toThrow(/b\.json: not valid JSON/);
    await writeFile(join(dir, 'c.yaml'), 'model:\n  treads: 2\n');
    await expect(loadConfig(join(dir, 'c.yaml'), {})).rejects.toThrow(/c\.yaml: model\.treads: unknown key/);
    await expect(loadConfig(join(dir, 'missing.yaml'), {})).rejects.toThrow(/cannot read config/);
  });

  it('layers files in order: each merged over the ones before, null removes a key, errors name all', async () => {
    const dir = await tempDir();
    const base = join(dir, 'image.yaml');
    const box = join(dir, 'box.yaml');
    await writeFile(base, 'deviceId: box-01\nmodel:\n  threads: 2\ncapture:\n  phantom:\n    fps: 5\n    seed: 3\n');
    await writeFile(box, 'deviceId: box-17\ncapture:\n  phantom:\n    fps: 10\n    seed: null\n');
    const c = await loadConfig([base, box], {});
    expect(c.deviceId).toBe('box-17');
    expect(c.model.threads).toBe(2); // kept from the first layer
    expect(c.capture.phantom.fps).toBe(10);
    expect(c.capture.phantom.seed).toBe(validateConfig({}).capture.phantom.seed); // removed: back to the default
    // the environment still wins over every file
    expect((await loadConfig([base, box], { THYROID_EDGE__deviceId: 'box-99' })).deviceId).toBe('box-99');
    await writeFile(box, 'model:\n  threads: many\n');
    await expect(loadConfig([base, box], {})).rejects.toThrow(`${base} + ${box}: model.threads`);
    await expect(loadConfig([base, join(dir, 'absent.yaml')], {})).rejects.toThrow(
      `cannot read config ${join(dir, 'absent.yaml')}`,
    );
    await writeFile(box, '- a list\n');
    await expect(loadConfig([base, box], {})).rejects.toThrow(`${box}: the top level must be a mapping of keys`);
  });

  it('environment overrides win over the file and are validated too', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.yaml'), 'capture:\n  source: phantom\n');
    const env = {
      THYROID_EDGE__capture__source: 'images',
      THYROID_EDGE__capture__images__dir: '/data',
      THYROID_EDGE__model__threads: '4',
    };
    const c = await loadConfig(join(dir, 'a.yaml'), env);
    expect(c.capture.source).toBe('images');
    expect(c.capture.images.dir).toBe('/data');
    expect(c.model.threads).toBe(4);
    await expect(loadConfig(undefined, { THYROID_EDGE__model__threads: 'many' })).rejects.toThrow(/model\.threads/);
    expect(applyEnvOverrides({ a: 1 }, { OTHER: 'x' })).toEqual({ a: 1 });
  });

  it('docs/config.md is generated from the schema and up to date', () => {
    const md = configMarkdown();
    // the second column says whether set_config may change a key at runtime: a device path may not (issue 14, D3)
    expect(md).toContain('| `capture.v4l2.device` |  | string | `"/dev/video0"` |');
    expect(readFileSync('docs/config.md', 'utf8')).toBe(md);
  });
});

describe('docs/mqtt.md', () => {
  it('is generated from the payload schemas and up to date', async () => {
    const { mqttMarkdown } = await import('../src/mqtt/docs.js');
    expect(readFileSync('docs/mqtt.md', 'utf8')).toBe(mqttMarkdown());
    expect(mqttMarkdown()).toContain('"nodule_detected"');
  });
});

describe('docs/updates.md', () => {
  it('is generated from the bundle schemas and up to date', async () => {
    const { updatesMarkdown } = await import('../src/updates/docs.js');
    expect(readFileSync('docs/updates.md', 'utf8')).toBe(updatesMarkdown());
    expect(updatesMarkdown()).toContain('"minDaemonVersion"');
  });
});
