/** The shipped unit: `systemd-analyze verify` clean, `systemd-analyze security` exposure printed and <= 3.0. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const UNIT = 'deploy/systemd/thyroid-edge.service';

describe('deploy/systemd/thyroid-edge.service', () => {
  it('systemd-analyze verify is clean', () => {
    const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
    expect(r.error, 'systemd-analyze missing: apt install systemd').toBeUndefined();
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  });

  it('systemd-analyze security: exposure <= 3.0', () => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=true', UNIT], { encoding: 'utf8' });
    const m = /Overall exposure level for thyroid-edge\.service: ([\d.]+)/.exec(r.stdout);
    expect(m, r.stdout + r.stderr).not.toBeNull();
    console.log(`systemd-analyze security: exposure ${m![1]} (${UNIT})`);
    expect(Number(m![1])).toBeLessThanOrEqual(3.0);
  });

  it('has the notify/watchdog contract and the hardening the issue names', () => {
    const unit = readFileSync(UNIT, 'utf8');
    for (const line of [
      'Type=notify',
      'NotifyAccess=all',
      'WatchdogSec=',
      'DynamicUser=yes',
      'StateDirectory=thyroid-edge',
      'SupplementaryGroups=video',
      'DevicePolicy=closed',
      'DeviceAllow=char-video4linux rw',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'NoNewPrivileges=yes',
      'RestrictAddressFamilies=',
      'CapabilityBoundingSet=\n',
      'SystemCallFilter=@system-service',
    ])
      expect(unit).toContain(line);
    expect(unit).not.toMatch(/^MemoryDenyWriteExecute=/m); // V8's JIT needs W+X memory
  });
});
