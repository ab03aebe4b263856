/** The Yocto layer: oelint-adv clean (suppressions inline, each with its reason), layer and kas file consistent. */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { loadConfig } from '../src/config/load.js';

const LAYER = 'deploy/yocto/meta-thyroid-edge';
const OELINT = 'deploy/yocto/.venv-lint/bin/oelint-adv';

function recipes(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(bb|bbappend)$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

describe('deploy/yocto/meta-thyroid-edge', () => {
  it("the image's /etc/thyroid-edge/config.yaml loads, reads the installed model and narrows set_config", async () => {
    const c = await loadConfig(join(LAYER, 'recipes-thyroid-edge/thyroid-edge/files/config.yaml'), {});
    expect(c.model.path).toBe('/usr/share/thyroid-edge/models/thyroid-nodule-int8.onnx');
    expect(c.capture.source).toBe('v4l2');
    // anyone on the ward broker may publish requests: only the log level, not what the box reports
    expect(c.mqtt.setConfigKeys).toEqual(['logLevel']);
  });

  it.skipIf(!existsSync(OELINT) && !process.env.CI)(
    `oelint-adv --release scarthgap is clean${
      existsSync(OELINT)
        ? ''
        : ' (skipped: run .ci/run or pip install -r deploy/yocto/requirements-lint.txt into deploy/yocto/.venv-lint)'
    }`,
    () => {
      const files = recipes(LAYER);
      expect(files.length).toBeGreaterThanOrEqual(4);
      const r = spawnSync(OELINT, ['--quiet', '--release', 'scarthgap', ...files], { encoding: 'utf8' });
      expect(r.error).toBeUndefined();
      expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
      expect(r.status).toBe(0);
      // every suppression says why
      for (const f of files) {
        for (const line of readFileSync(f, 'utf8')
          .split('\n')
          .filter((l) => l.includes('nooelint')))
          expect(line).toMatch(/nooelint: [\w.]+ - \S.{10,}/);
      }
    },
  );

  it('layer.conf targets scarthgap and depends on oe-core and meta-oe', () => {
    const conf = readFileSync(join(LAYER, 'conf/layer.conf'), 'utf8');
    expect(conf).toMatch(/LAYERSERIES_COMPAT_thyroid-edge = "scarthgap"/);
    expect(conf).toMatch(/LAYERDEPENDS_thyroid-edge = "core openembedded-layer"/);
  });

  it('the kas file builds the image for qemuarm64 from scarthgap with this layer', () => {
    const kas = YAML.parse(readFileSync('deploy/yocto/kas/qemuarm64.yml', 'utf8'));
    expect(kas).toMatchObject({
      machine: 'qemuarm64',
      target: 'thyroid-edge-image',
      repos: { poky: { branch: 'scarthgap' }, 'meta-openembedded': { branch: 'scarthgap' } },
    });
    expect(existsSync(kas.repos['meta-thyroid-edge'].path)).toBe(true);
    // the daemon recipe installs the very unit the systemd tests check, and the model is its own package
    const bb = readFileSync(join(LAYER, 'recipes-thyroid-edge/thyroid-edge/thyroid-edge_0.1.0.bb'), 'utf8');
    expect(bb).toContain('deploy/systemd/thyroid-edge.service');
    expect(bb).toMatch(/RDEPENDS:\$\{PN\} = ".*ffmpeg.*nodejs.*thyroid-edge-model/);
  });
});
