#!/usr/bin/env node
/** thyroid-edge command line: run, infer, check-config, calibrate. */
import { Command, Option } from 'commander';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { findImagingArea } from './capture/calibrate.js';
import { grabFullFrame } from './capture/grab.js';
import { roiPng } from './capture/roi-png.js';
import { configOption } from './config/cli-option.js';
import { ConfigError, loadConfig, modelCardPath } from './config/load.js';
import { runDaemon } from './daemon/run.js';
import { FrameProcessor } from './inference/frame-processor.js';
import { encodePng, encodeRle } from './inference/mask-encoding.js';
import { loadModelCard } from './inference/model-card.js';
import { decodeMask } from './inference/preprocess.js';
import { frameFromImage } from './capture/images-source.js';
import { Segmenter } from './inference/segmenter.js';
import { iou } from './inference/scoring.js';
import { createLogger } from './util/logger.js';
import { ProgressBar } from './util/progress.js';
import { VERSION } from './version.js';
import { bundleCommand } from './updates/bundle-cli.js';
import { PhantomSource } from './capture/phantom-source.js';
import type { Frame } from './capture/frame-source.js';
import { DEFAULT_PHANTOM } from './capture/phantom.js';

const program = new Command('thyroid-edge')
  .version(VERSION, '-V, --version')
  .description('Thyroid-nodule segmentation at the edge');

program
  .command('run')
  .description('run the daemon')
  .addOption(configOption())
  .action(async (o: { config?: string[] }) => {
    const config = await loadConfig(o.config);
    await runDaemon(config, createLogger(config.logLevel));
  });

program
  .command('check-config')
  .description('validate a config file and print the effective config')
  .argument('<files...>', 'one file, or several merged in order (later ones override earlier)')
  .action(async (files: string[]) => {
    const config = await loadConfig(files);
    console.log(JSON.stringify(config, null, 2));
    console.error(`${files.join(' + ')}: OK`);
  });

program
  .command('infer')
  .description('segment image files (or phantom frames) without a broker: mask PNG + JSON per image and a summary line')
  .argument('[images...]')
  .addOption(configOption('config file (model, thresholds)'))
  .option('-o, --out <dir>', 'output folder for masks and JSON')
  .option('--truth <dir>', 'folder of ground-truth masks with the same names: report IoU')
  .addOption(
    new Option('--phantom <n>', 'segment n phantom frames and score them against their ground truth').argParser((v) =>
      Number.parseInt(v, 10),
    ),
  )
  .option('--phantom-seed <n>', 'phantom seed', (v) => Number.parseInt(v, 10), 1)
  .option('--quiet', 'no progress bar')
  .action(
    async (
      images: string[],
      o: { config?: string[]; out?: string; truth?: string; phantom?: number; phantomSeed: number; quiet?: boolean },
    ) => {
      const config = await loadConfig(o.config);
      const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, true);
      const card = await loadModelCard(modelCardPath(config));
      const seg = await Segmenter.create({
        modelPath: config.model.path,
        card,
        executionProviders: config.model.executionProviders,
        intraOpThreads: config.model.threads,
        logger,
      });
      const proc = new FrameProcessor(seg, {
        minAreaPx: config.postprocess.minAreaPx,
        pixelSpacingMm: config.postprocess.pixelSpacingMm,
      });
      if (o.out) await mkdir(o.out, { recursive: true });
      const phantom = o.phantom
        ? new PhantomSource(
            { ...DEFAULT_PHANTOM, seed: o.phantomSeed, nodules: 1, cycleFrames: 0, fps: 0, maxFrames: o.phantom },
            card.preprocessing,
          )
        : null;
      const items = phantom
        ? Array.from({ length: o.phantom ?? 0 }, (_, i) => `phantom-${String(i).padStart(4, '0')}`)
        : images;
      if (items.length === 0) throw new ConfigError('infer: give image files or --phantom N');
      const bar = new ProgressBar('infer', items.length, o.quiet || items.length < 2);
      const ious: number[] = [];
      const failures: { input: string; error: string }[] = [];
      let nodules = 0;
      let ms = 0;
      // one bad file (not an image, empty, too large, unreadable) gets its own error line; the batch goes on
      for (const [i, item] of items.entries()) {
        const name = phantom ? item : basename(item, extname(item));
        try {
          const frame: Frame = phantom
            ? await phantom.renderFrame(i)
            : await frameFromImage(await readFile(item), card.preprocessing, i + 1);
          const t0 = performance.now();
          const r = await proc.process(frame);
          ms += performance.now() - t0;
          nodules += r.nodules.length;
          let score: number | null = null;
          let truth = frame.truth;
          if (!truth && o.truth) {
            truth = await decodeMask(
              join(o.truth, basename(item)),
              card.preprocessing.width,
              card.preprocessing.height,
            );
          }
          if (truth) {
            score = iou(r.mask, truth);
            ious.push(score);
          }
          if (o.out) {
            await writeFile(join(o.out, `${name}.mask.png`), await encodePng(r.mask, r.width, r.height));
            await writeFile(
              join(o.out, `${name}.json`),
              JSON.stringify(
                {
                  input: item,
                  seq: r.seq,
                  width: r.width,
                  height: r.height,
                  roi: r.roi,
                  nodules: r.nodules,
                  iou: score,
                  rle: encodeRle(r.mask, r.width, r.height),
                },
                null,
                1,
              ),
            );
          }
        } catch (err) {
          const error = (err as Error).message;
          failures.push({ input: item, error });
          console.error(`thyroid-edge: infer: ${item}: ${error}`);
        }
        bar.tick(name);
      }
      bar.done();
      const done = items.length - failures.length;
      const meanIoU = ious.length ? ious.reduce((a, b) => a + b, 0) / ious.length : null;
      console.log(
        JSON.stringify({
          images: items.length,
          ok: done,
          failed: failures.length,
          nodules,
          meanIoU: meanIoU === null ? null : Math.round(meanIoU * 10000) / 10000,
          scored: ious.length,
          msPerImage: done ? Math.round((ms / done) * 10) / 10 : null,
          provider: seg.provider,
          model: card.name,
          failures,
        }),
      );
      if (failures.length) process.exitCode = 1;
      await seg.release();
    },
  );

program
  .command('calibrate')
  .description(
    'grab a full frame from the configured source, find the imaging area, print the ROI and write a PNG with it drawn',
  )
  .addOption(configOption())
  .option(
    '-o, --out <file>',
    'PNG with the ROI drawn (outside it pixelated: the header holds patient data)',
    'calibrate.png',
  )
  .action(async (o: { config?: string[]; out: string }) => {
    // a new box's config has no ROI yet: finding it is this command's job
    const config = await loadConfig(o.config, process.env, { roiPending: true });
    const full = await grabFullFrame(config.capture);
    const roi = findImagingArea(full.data, full.width, full.height);
    // as the live view's calibrate page: the image area shows, the patient header around it does not
    await writeFile(o.out, await roiPng(full, [{ rect: roi, rgb: [255, 200, 0] }], true));
    console.log(`# imaging area found on a ${full.width}x${full.height} frame; paste into the config:`);
    console.log(`capture:\n  roi: { x: ${roi.x}, y: ${roi.y}, width: ${roi.width}, height: ${roi.height} }`);
    console.error(`wrote ${o.out}`);
  });

program.addCommand(bundleCommand());

program.parseAsync().catch((err: unknown) => {
  const e = err as Error;
  console.error(`thyroid-edge: ${e.message}`);
  process.exit(e instanceof ConfigError ? 2 : 1);
});
