/**
 * ARM64 proof: `thyroid-edge infer` with the linux-arm64 builds of Node, onnxruntime-node and
 * sharp under qemu-user, its masks compared with x64's (INT8 kernels differ, so IoU, not equality).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers/fixtures.js';
import { output } from './helpers/run.js';

const missing = ['qemu-aarch64-static', 'unshare'].filter(
  (c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0,
);
if (!existsSync('/usr/aarch64-linux-gnu/lib')) missing.push('libc6-arm64-cross + libstdc++6-arm64-cross');

describe.skipIf(missing.length > 0)(
  `ARM64 under qemu-user${missing.length ? ` (skipped: missing ${missing.join(', ')}; .ci/run installs them)` : ''}`,
  () => {
    it('arm64 masks match x64 masks at IoU >= 0.97, on phantom and real frames', async () => {
      const out = await tempDir('te-arm64-');
      const stdout = await output('bash', ['deploy/arm64/proof.sh', out, '4', '6']);
      const s = JSON.parse(stdout.trim().split('\n').at(-1)!);
      console.log(`ARM64 proof: ${JSON.stringify(s)}`);
      expect(s.phantom.frames).toBe(4);
      expect(s.phantom.armVsX64MeanIoU).toBeGreaterThanOrEqual(0.97);
      if (existsSync('../shared/datasets/ddti/split.json')) {
        expect(s.real.frames).toBe(6);
        expect(s.real.armVsX64MeanIoU).toBeGreaterThanOrEqual(0.97);
        // the same accuracy against the ground truth both ways (within a point)
        expect(Math.abs(s.real.accuracyIoU.arm64 - s.real.accuracyIoU.x64)).toBeLessThan(0.01);
      } else {
        console.log('ARM64 proof: real frames skipped, ../shared/datasets/ddti is absent');
      }
    }, 600_000);

    // after the proof (same file, so never concurrently with it: both use the arm64 app tree)
    it('make-release.sh packs that arm64 tree for the Yocto recipe, with no foreign binaries', async () => {
      const sums = await output('bash', ['deploy/yocto/make-release.sh']);
      expect(sums).toMatch(/^[0-9a-f]{64} {2}thyroid-edge-\d+\.\d+\.\d+-linux-arm64\.tar\.gz$/m);
      const tarball = /thyroid-edge-[\d.]+-linux-arm64\.tar\.gz/.exec(sums)![0];
      const list = execFileSync('tar', ['-tzf', `deploy/yocto/release/${tarball}`], {
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      });
      expect(list).toContain('./dist/src/cli.js');
      expect(list).toContain('./deploy/systemd/thyroid-edge.service');
      expect(list).toContain('onnxruntime-node/bin/napi-v6/linux/arm64/');
      expect(list).not.toContain('onnxruntime-node/bin/napi-v6/linux/x64/');
    }, 600_000);
  },
);
