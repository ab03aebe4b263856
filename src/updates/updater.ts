/**
 * The update state machine for model and config bundles:
 *   downloading -> verifying -> testing (self-test) -> switch -> testing (health window)
 *   -> active | rolled_back, or failed at any step before the switch.
 * Whatever fails, the bundle that was serving keeps serving; every step is reported (progress
 * listeners: MQTT <base>/<id>/update and the log).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { modelCardPath } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { ModelLocation } from '../inference/model-slot.js';
import type { FrameResult } from '../inference/frame-processor.js';
import type { ModelCard } from '../inference/model-card.js';
import { VERSION } from '../version.js';
import semver from 'semver';
import { checkUrl, fetchBundle, peekManifest, type FetchOptions } from './fetch-bundle.js';
import { BundleError, type BundleManifest } from './manifest.js';
import { modelFiles, selfTestConfig, selfTestModel } from './self-test.js';
import { SlotStore, type ActiveSlot, type Recovery } from './slots.js';
import { checkVersions, parseSignedManifest, verifyFiles } from './verify-bundle.js';
import { Emitter } from '../util/emitter.js';

export type UpdateState = 'downloading' | 'verifying' | 'testing' | 'active' | 'rolled_back' | 'failed';
export type BundleKind = BundleManifest['kind'];

export interface UpdateProgress {
  state: UpdateState;
  kind: BundleKind | null;
  name: string | null;
  version: string | null;
  url: string | null;
  detail: string | null;
  /** why it failed or was rolled back */
  reason: string | null;
  transaction: string | number | null;
}

/** What the updater needs from the running daemon (absent for an offline `bundle install`). */
export interface UpdateHost {
  config(): Config;
  swapModel(location: ModelLocation, card: ModelCard): Promise<void>;
  commitModel(): Promise<void>;
  /** back to the previous model; `fallback` locates it when it is no longer in memory */
  revertModel(fallback: ModelLocation): Promise<void>;
  applyConfig(c: Config): Promise<void>;
  onResult(l: (r: FrameResult) => void): () => void;
  frameErrors(): number;
  /** p50 inference ms of the model serving now, or null before any frame */
  inferenceP50(): number | null;
  /** ms epoch of the last frame with a nodule, or null */
  lastNoduleAt(): number | null;
}

export interface ActiveBundles {
  model: ModelLocation & { recovery: Recovery };
  config: { config: Config; version: string | null; recovery: Recovery };
}

type UpdatesConfig = Config['updates'];
type Step = (state: UpdateState, extra?: Partial<UpdateProgress>) => UpdateProgress;

/** the longest failure reason reported; past it, cut (the rest names what a remote host sent, at length) */
const MAX_REASON_CHARS = 600;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.floor((s.length - 1) / 2)] as number) : 0;
};

export class Updater {
  readonly stores: Record<BundleKind, SlotStore>;
  /** <stateDir>/updates: staging.* downloads live here, on the slots' filesystem (install = rename) */
  private readonly root: string;
  private host: UpdateHost | null = null;
  private running: Promise<UpdateProgress> | null = null;
  private readonly progress: Emitter<UpdateProgress>;
  private readonly backlog: UpdateProgress[] = [];
  private stopping = false;
  private abortWindow: (() => void) | null = null;
  /** the config file as loaded, before any config bundle: config bundles merge over it */
  private readonly baseConfig: Config;

  constructor(
    config: Config,
    private readonly logger: Logger,
  ) {
    this.baseConfig = config;
    this.root = join(config.stateDir, 'updates');
    this.stores = { model: new SlotStore(join(this.root, 'model')), config: new SlotStore(join(this.root, 'config')) };
    this.progress = new Emitter<UpdateProgress>('update progress', logger);
  }

  /** updates.* and model.* are not runtime keys: the config file's values hold for the whole run */
  private get opts(): UpdatesConfig {
    return this.baseConfig.updates;
  }

  onProgress(l: (p: UpdateProgress) => void): () => void {
    const off = this.progress.on(l);
    // what recovery reported before anyone listened (a rollback at start-up) goes to the first listener
    for (const p of this.backlog.splice(0)) l(p);
    return off;
  }

  get busy(): boolean {
    return this.running !== null;
  }

  private emit(progress: UpdateProgress): UpdateProgress {
    // a reason can quote what a remote host sent; it goes to the log and the outbox, so it stays short
    const p =
      progress.reason && progress.reason.length > MAX_REASON_CHARS
        ? {
            ...progress,
            reason: `${progress.reason.slice(0, MAX_REASON_CHARS)}… (${progress.reason.length} characters)`,
          }
        : progress;
    const log = { state: p.state, kind: p.kind, name: p.name, version: p.version, detail: p.detail, reason: p.reason };
    if (p.state === 'failed' || p.state === 'rolled_back') this.logger.warn(log, `update ${p.state}`);
    else this.logger.info(log, `update ${p.state}`);
    if (this.progress.size === 0) this.backlog.push(p);
    this.progress.emit(p);
    return p;
  }

  /**
   * Start-up: recover both slot stores (crash leftovers, trials), and say which model files and
   * which config the daemon must start with. A config bundle that no longer validates against
   * the config file is ignored with an error (the file config still runs).
   */
  async recover(opts = { countBoot: true }): Promise<ActiveBundles> {
    await mkdir(this.root, { recursive: true });
    for (const n of await readdir(this.root)) {
      if (n.startsWith('staging.')) await rm(join(this.root, n), { recursive: true, force: true });
    }
    const m = await this.stores.model.recover(opts);
    const c = await this.stores.config.recover(opts);
    for (const [kind, r] of [
      ['model', m],
      ['config', c],
    ] as const) {
      if (r.rolledBack) {
        this.emit({
          ...this.blank(kind),
          state: 'rolled_back',
          version: r.rolledBack.version,
          reason: r.rolledBack.reason,
        });
      }
    }
    const model = { ...this.modelLocation(m.active, m.manifest), recovery: m };
    let config = this.baseConfig;
    if (c.manifest && c.active) {
      try {
        config = (await selfTestConfig(this.stores.config.slotDir(c.active), c.manifest, this.baseConfig)).config;
      } catch (err) {
        this.logger.error(
          { err, version: c.manifest.version },
          'installed config bundle no longer applies; running the config file',
        );
      }
    }
    return { model, config: { config, version: c.manifest?.version ?? null, recovery: c } };
  }

  /** Attach the running daemon; a trial found at start-up gets its health window now. */
  attach(host: UpdateHost, bundles: ActiveBundles): void {
    this.host = host;
    for (const kind of ['model', 'config'] as const) {
      const t = bundles[kind].recovery.trial;
      if (!t) continue;
      const manifest = bundles[kind].recovery.manifest;
      const base = { ...this.blank(kind), name: manifest?.name ?? null, version: t.version };
      this.running = this.resumeTrial(kind, base).finally(() => {
        this.running = null;
      });
    }
  }

  /** The model files of a slot, or the factory model of the config file (slot null). */
  private modelLocation(slot: ActiveSlot, manifest: BundleManifest | null): ModelLocation {
    if (slot && manifest)
      return { ...modelFiles(this.stores.model.slotDir(slot), manifest), version: manifest.version };
    return { modelPath: this.baseConfig.model.path, cardPath: modelCardPath(this.baseConfig), version: null };
  }

  private blank(kind: BundleKind | null): UpdateProgress {
    return {
      state: 'downloading',
      kind,
      name: null,
      version: null,
      url: null,
      detail: null,
      reason: null,
      transaction: null,
    };
  }

  private async newStaging(): Promise<string> {
    const dir = join(this.root, `staging.${randomBytes(6).toString('hex')}`);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  /** Version of the active bundle of a kind (null: the factory one). */
  async activeVersion(kind: BundleKind): Promise<string | null> {
    return (await this.stores[kind].manifestOf(await this.stores[kind].active()))?.version ?? null;
  }

  /** Install a bundle from its manifest URL. Resolves with the final progress; never throws. */
  install(url: string, transaction: string | number | null = null): Promise<UpdateProgress> {
    if (this.running) return Promise.reject(new Error('an update is already in progress'));
    this.running = this.doInstall(url, transaction).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /**
   * Throws when a bundle at `url` is not to be fetched at all, before anything is: no trusted key (every bundle
   * would be refused, and anyone on the broker may ask for an update), a URL the box may not fetch, or an https
   * URL while the box knows no fleet host (neither updates.allowedHosts nor an https updates.manifestUrl): the
   * request would have the box connect wherever the sender likes on the hospital network, and the answer would
   * tell an open port from a closed one. The operator's `bundle install` on the box is not a request: it is not
   * held to this.
   */
  checkRequest(url: string): void {
    if (this.opts.trustedKeys.length === 0) {
      throw new BundleError('updates.trustedKeys is empty: this box accepts no bundle, so it fetches none');
    }
    const hosts = this.allowedHosts();
    const u = checkUrl(url, this.opts.allowFileUrls, hosts);
    if (u.protocol === 'https:' && hosts === null) {
      throw new BundleError(
        'updates.allowedHosts is unset and updates.manifestUrl is not an https URL: this box fetches no bundle ' +
          'a request names until its fleet hosts are configured',
      );
    }
  }

  /**
   * updates.allowedHosts, or when unset, the host and port of updates.manifestUrl: a box that knows its fleet host
   * is not sent elsewhere on the hospital network by whoever publishes `request/update`. Neither set: null (any
   * host for the operator's `bundle install`; none for a request, see checkRequest).
   */
  private allowedHosts(): readonly string[] | null {
    const o = this.opts;
    if (o.allowedHosts) return o.allowedHosts;
    if (!o.manifestUrl) return null;
    const u = new URL(o.manifestUrl);
    return u.protocol === 'https:' ? [u.host] : null;
  }

  /** What every download obeys, from the current updates config. */
  private fetchOptions(): FetchOptions {
    const o = this.opts;
    return {
      maxBytes: o.maxBundleBytes,
      allowFileUrls: o.allowFileUrls,
      allowedHosts: this.allowedHosts(),
      timeoutMs: o.downloadTimeoutS * 1000,
    };
  }

  /** Scheduled check: install the bundle at updates.manifestUrl if it is newer than the active one. */
  async checkScheduled(): Promise<UpdateProgress | null> {
    const o = this.opts;
    if (!o.manifestUrl) return null;
    const last = this.host?.lastNoduleAt() ?? null;
    if (last !== null && Date.now() - last < o.quietS * 1000) {
      this.logger.info(
        { lastNoduleAgoS: Math.round((Date.now() - last) / 1000) },
        'scheduled update check deferred: a scan is running',
      );
      return null;
    }
    if (this.running) return null;
    this.checkRequest(o.manifestUrl);
    const peek = await peekManifest(
      o.manifestUrl,
      this.fetchOptions(),
      (bytes, signature) => parseSignedManifest(bytes, signature, o.trustedKeys).manifest,
    );
    const active = await this.activeVersion(peek.kind);
    const highest = await this.stores[peek.kind].highestActivated();
    // the highest ever activated is never below the active one (which a box from before highest.json has alone)
    const floor = highest ?? active;
    if (floor !== null && !semver.gt(peek.version, floor)) {
      this.logger.info({ active, highest, offered: peek.version }, 'scheduled update check: nothing newer');
      return null;
    }
    return this.install(o.manifestUrl);
  }

  private async doInstall(url: string, transaction: string | number | null): Promise<UpdateProgress> {
    const { step, current, note } = this.stepper({ ...this.blank(null), url, transaction });
    let staging: string | null = null;
    let store: SlotStore | null = null;
    try {
      step('downloading');
      const o = this.opts;
      staging = await this.newStaging();
      const fetched = await fetchBundle(
        url,
        staging,
        this.fetchOptions(),
        // signature, then the manifest, then versions: before any file is fetched
        async (bytes, signature) => {
          const { manifest: m } = parseSignedManifest(bytes, signature, o.trustedKeys);
          note({ kind: m.kind, name: m.name, version: m.version });
          if (o.acceptNames && !o.acceptNames.includes(m.name)) {
            throw new BundleError(
              `bundle "${m.name}" is not in updates.acceptNames (${o.acceptNames.join(', ')}); ` +
                'signed, but not for this box',
            );
          }
          checkVersions(m, {
            daemonVersion: VERSION,
            activeVersion: await this.activeVersion(m.kind),
            highestVersion: await this.stores[m.kind].highestActivated(),
            allowDowngrade: o.allowDowngrade,
          });
          return m;
        },
      );
      const m = fetched.manifest;
      store = this.stores[m.kind];
      step('verifying');
      await verifyFiles(staging, m, fetched.received);
      const trial = await store.trial();
      if (trial) throw new BundleError(`${m.kind} ${trial.version} is still in its health window; try again after it`);
      const slot = await store.install(staging);
      staging = null;
      const dir = store.slotDir(slot);
      step('testing', { detail: 'self-test' });
      let card: ModelCard | null = null;
      let nextConfig: Config | null = null;
      if (m.kind === 'model') {
        const t = await selfTestModel(dir, m, {
          goldenMinIou: o.goldenMinIou,
          threads: this.baseConfig.model.threads,
          logger: this.logger,
        });
        card = t.card;
        step('testing', { detail: `self-test passed: golden IoU ${t.goldenIou.map((x) => x.toFixed(3)).join(', ')}` });
      } else {
        nextConfig = (await selfTestConfig(dir, m, this.baseConfig)).config;
      }
      const baselineP50 = this.host?.inferenceP50() ?? null;
      const previousConfig = this.host?.config() ?? null;
      // a live switch counts as the trial's first start: a crash in the window rolls back
      await store.activate(slot, m.version, this.host ? 1 : 0);
      if (!this.host) {
        return step('testing', { detail: 'activated; its health window runs at the next daemon start' });
      }
      try {
        if (m.kind === 'model') await this.host.swapModel({ ...modelFiles(dir, m), version: m.version }, card!);
        else await this.host.applyConfig(nextConfig!);
      } catch (err) {
        await store.rollback();
        return step('rolled_back', { detail: null, reason: `switch failed: ${(err as Error).message}` });
      }
      return await this.healthWindowThenDecide(m.kind, current, step, baselineP50, previousConfig);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const reason = e.code === 'ENOSPC' || e.code === 'EDQUOT' ? `disk full (${e.code}): ${e.message}` : e.message;
      return step('failed', { detail: null, reason });
    } finally {
      if (staging) await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /**
   * Progress reporting for one update: each step merges into the report and emits it. Once the
   * daemon is stopping, any step but `failed` ends the install instead.
   */
  private stepper(initial: UpdateProgress): {
    step: Step;
    current: () => UpdateProgress;
    note: (extra: Partial<UpdateProgress>) => void;
  } {
    let p = initial;
    // what the next report will carry, without emitting one (reports already sent stay as they were)
    const note = (extra: Partial<UpdateProgress>) => {
      p = { ...p, ...extra };
    };
    const step: Step = (state, extra = {}) => {
      if (this.stopping && state !== 'failed') throw new BundleError('daemon stopping');
      p = { ...p, state, ...extra };
      return this.emit(p);
    };
    return { step, current: () => p, note };
  }

  private async resumeTrial(kind: BundleKind, p: UpdateProgress): Promise<UpdateProgress> {
    const { step, current } = this.stepper(p);
    // after a restart there is no previous model in memory to compare latency with
    return this.healthWindowThenDecide(kind, current, step, null, null);
  }

  private async healthWindowThenDecide(
    kind: BundleKind,
    current: () => UpdateProgress,
    step: Step,
    baselineP50: number | null,
    previousConfig: Config | null,
  ): Promise<UpdateProgress> {
    const host = this.host!;
    const h = this.opts.health;
    step('testing', { detail: `health window: ${h.frames} frames within ${h.timeoutS} s` });
    const failure = await this.healthWindow(kind, baselineP50);
    if (this.stopping) return current(); // undecided: recovery at the next start rolls the trial back
    const store = this.stores[kind];
    if (failure === null) {
      await store.markGood();
      if (kind === 'model') await host.commitModel();
      return step('active', { detail: `passed its health window (${h.frames} frames)` });
    }
    const back = await store.rollback();
    const backManifest = await store.manifestOf(back);
    if (kind === 'model') {
      await host.revertModel(this.modelLocation(back, backManifest));
    } else {
      const prev =
        previousConfig ??
        (back && backManifest
          ? (await selfTestConfig(store.slotDir(back), backManifest, this.baseConfig)).config
          : this.baseConfig);
      await host.applyConfig(prev);
    }
    return step('rolled_back', { detail: null, reason: `health window: ${failure}` });
  }

  /** null when the window passed, else the reason. */
  private healthWindow(kind: BundleKind, baselineP50: number | null): Promise<string | null> {
    const host = this.host!;
    const h = this.opts.health;
    const errors0 = host.frameErrors();
    const latencies: number[] = [];
    return new Promise((resolve) => {
      let done = false;
      const finish = (reason: string | null) => {
        if (done) return;
        done = true;
        this.abortWindow = null;
        off();
        clearTimeout(timer);
        clearInterval(poll);
        resolve(reason);
      };
      const judge = () => {
        const errors = host.frameErrors() - errors0;
        if (errors > 0) return finish(`${errors} frame error(s)`);
        if (latencies.length < h.frames) return;
        const p50 = median(latencies);
        if (kind === 'model' && baselineP50 !== null && p50 > h.latencyFactor * baselineP50) {
          return finish(
            `inference p50 ${p50.toFixed(1)} ms is over ${h.latencyFactor} x the previous model's ` +
              `${baselineP50.toFixed(1)} ms`,
          );
        }
        finish(null);
      };
      const off = host.onResult((r) => {
        latencies.push(r.timingsMs.inference);
        judge();
      });
      // a model that fails every frame produces no results: errors are polled too
      const poll = setInterval(judge, 200);
      this.abortWindow = () => finish('daemon stopping');
      const timer = setTimeout(
        () => finish(`only ${latencies.length} of ${h.frames} frames in ${h.timeoutS} s`),
        h.timeoutS * 1000,
      );
    });
  }

  /** Waits for a running install or health window (tests). */
  async settled(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  /**
   * Shutdown: an install stops at its next step (failed: daemon stopping); a health window ends
   * undecided, and its trial is rolled back at the next start (it never proved itself).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abortWindow?.();
    await this.settled();
  }
}
