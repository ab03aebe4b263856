/**
 * A/B slots for one bundle kind under <stateDir>/updates/<kind>/:
 *   slot-a/, slot-b/   complete installed bundles (manifest.json + files)
 *   current            symlink to the active slot; absent = the factory files from the config
 *   trial.json         an activated bundle that has not yet passed its health window
 *   highest.json       the highest version ever activated here: older or equal ones are never taken again
 *                      (unless allowDowngrade), so an old signed bundle cannot be replayed after a rollback
 *   staging.old-*      a replaced slot being deleted (removed at recovery)
 *
 * Crash safety rests on two atomic steps: rename(staging -> slot) and rename(current.tmp ->
 * current), each followed by an fsync of the directory. A slot is only ever pointed at after it
 * is complete, and the slot being written is never the one `current` points to, so a kill -9 at
 * any instant leaves exactly one complete active bundle: the old one or the new one.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, readlink, rename, rm, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import semver from 'semver';
import { syncDir, writeAtomic } from '../util/durable-fs.js';
import { parseManifest, type BundleManifest } from './manifest.js';

export type SlotName = 'slot-a' | 'slot-b';
/** null = the factory bundle (config.model.path, or no config overlay) */
export type ActiveSlot = SlotName | null;

export interface Trial {
  slot: SlotName;
  previous: ActiveSlot;
  version: string;
  /** daemon starts seen while this trial was active; a second start means it never proved itself */
  boots: number;
  startedAt: string;
}

export interface Recovery {
  active: ActiveSlot;
  manifest: BundleManifest | null;
  /** set when recovery rolled a trial back */
  rolledBack: { version: string; reason: string } | null;
  /** a trial still running its health window (its boots already counted) */
  trial: Trial | null;
}

const SLOTS: readonly SlotName[] = ['slot-a', 'slot-b'];

export class SlotStore {
  constructor(readonly root: string) {}

  slotDir(slot: SlotName): string {
    return join(this.root, slot);
  }

  private get currentLink(): string {
    return join(this.root, 'current');
  }

  private get trialFile(): string {
    return join(this.root, 'trial.json');
  }

  private get highestFile(): string {
    return join(this.root, 'highest.json');
  }

  /** The highest version ever activated in this store (null: none yet). */
  async highestActivated(): Promise<string | null> {
    try {
      const v = (JSON.parse(await readFile(this.highestFile, 'utf8')) as { version?: unknown }).version;
      return typeof v === 'string' && semver.valid(v) ? v : null;
    } catch {
      return null;
    }
  }

  async active(): Promise<ActiveSlot> {
    try {
      const target = await readlink(this.currentLink);
      return (SLOTS as readonly string[]).includes(target) ? (target as SlotName) : null;
    } catch {
      return null;
    }
  }

  async inactive(): Promise<SlotName> {
    return (await this.active()) === 'slot-a' ? 'slot-b' : 'slot-a';
  }

  async manifestOf(slot: ActiveSlot): Promise<BundleManifest | null> {
    if (!slot) return null;
    return parseManifest(await readFile(join(this.slotDir(slot), 'manifest.json')));
  }

  async trial(): Promise<Trial | null> {
    try {
      return JSON.parse(await readFile(this.trialFile, 'utf8')) as Trial;
    } catch {
      return null;
    }
  }

  /** Replace the inactive slot with a complete staging directory. */
  async install(staging: string): Promise<SlotName> {
    const slot = await this.inactive();
    const dir = this.slotDir(slot);
    // move the old contents aside first so the slot name only ever holds a complete bundle
    const trash = join(this.root, `staging.old-${randomBytes(4).toString('hex')}`);
    await rename(dir, trash).catch(() => undefined);
    await rename(staging, dir);
    await syncDir(this.root);
    await rm(trash, { recursive: true, force: true });
    return slot;
  }

  private async pointAt(slot: ActiveSlot): Promise<void> {
    if (slot === null) {
      await unlink(this.currentLink).catch(() => undefined);
    } else {
      const tmp = `${this.currentLink}.tmp`;
      await unlink(tmp).catch(() => undefined);
      await symlink(slot, tmp);
      await rename(tmp, this.currentLink);
    }
    await syncDir(this.root);
  }

  /** Record the trial, then switch. Recovery drops a trial whose slot never became current. */
  async activate(slot: SlotName, version: string, boots: number): Promise<Trial> {
    const trial: Trial = { slot, previous: await this.active(), version, boots, startedAt: new Date().toISOString() };
    const highest = await this.highestActivated();
    if (highest === null || semver.gt(version, highest))
      await writeAtomic(this.highestFile, JSON.stringify({ version, at: trial.startedAt }));
    await writeAtomic(this.trialFile, JSON.stringify(trial));
    await syncDir(this.root);
    await this.pointAt(slot);
    return trial;
  }

  async markGood(): Promise<void> {
    await unlink(this.trialFile).catch(() => undefined);
    await syncDir(this.root);
  }

  /** Back to the slot that was active before the trial. */
  async rollback(): Promise<ActiveSlot> {
    const t = await this.trial();
    if (!t) return this.active();
    await this.pointAt(t.previous);
    await this.markGood();
    return t.previous;
  }

  /**
   * Run at every daemon start (and by `bundle status`): remove partial downloads, drop a trial
   * that never switched, count a start against a trial that did, and roll back a trial that
   * already had a start and never passed its health window.
   */
  async recover(opts: { countBoot: boolean; maxTrialBoots?: number } = { countBoot: true }): Promise<Recovery> {
    const maxTrialBoots = opts.maxTrialBoots ?? 1;
    await mkdir(this.root, { recursive: true });
    for (const n of await readdir(this.root)) {
      if (n.startsWith('staging.') || n.endsWith('.tmp'))
        await rm(join(this.root, n), { recursive: true, force: true });
    }
    let rolledBack: Recovery['rolledBack'] = null;
    let trial = await this.trial();
    if (trial && (await this.active()) !== trial.slot) {
      await this.markGood(); // the crash came before the switch: the old bundle never stopped being active
      trial = null;
    }
    if (trial && opts.countBoot) {
      if (trial.boots >= maxTrialBoots) {
        await this.rollback();
        rolledBack = {
          version: trial.version,
          reason: `restarted ${trial.boots} time(s) before passing its health window`,
        };
        trial = null;
      } else {
        trial = { ...trial, boots: trial.boots + 1 };
        await writeAtomic(this.trialFile, JSON.stringify(trial));
      }
    }
    const active = await this.active();
    return { active, manifest: await this.manifestOf(active), rolledBack, trial };
  }
}
