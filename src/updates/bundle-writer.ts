/**
 * The operator's side: golden frames made by the bundle's own model, and a signed manifest over
 * a folder of files. The daemon side (fetch, verify, self-test) never trusts what this wrote
 * without the signature.
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import type { Logger } from 'pino';
import sharp from 'sharp';
import { frameFromImage } from '../capture/images-source.js';
import { FrameProcessor } from '../inference/frame-processor.js';
import { encodePng } from '../inference/mask-encoding.js';
import { loadModelCard } from '../inference/model-card.js';
import { Segmenter } from '../inference/segmenter.js';
import { BundleError, type BundleFile, type BundleManifest } from './manifest.js';
import { signManifest } from './signing.js';
import { sha256OfFile } from './verify-bundle.js';

export interface SignOptions {
  kind: BundleManifest['kind'];
  name: string;
  version: string;
  minDaemonVersion: string;
  privateKeyPem: string;
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) {
      for (const f of await readdir(join(dir, e.name), { withFileTypes: true }))
        if (f.isFile()) out.push(`${e.name}/${f.name}`);
    } else if (e.isFile() && !e.name.startsWith('manifest.json')) {
      out.push(e.name);
    }
  }
  return out.sort();
}

function roleOf(path: string, kind: BundleManifest['kind']): BundleFile['role'] {
  if (kind === 'config') {
    if (path === 'config.json') return 'config';
  } else if (path.endsWith('.onnx') && !path.includes('/')) {
    return 'model';
  } else if (path.endsWith('.json') && !path.includes('/')) {
    return 'card';
  } else if (path.startsWith('golden/') && path.endsWith('.mask.png')) {
    return 'golden-mask';
  } else if (path.startsWith('golden/') && path.endsWith('.png')) {
    return 'golden-image';
  }
  throw new BundleError(
    `${path}: no place in a ${kind} bundle (model: one .onnx, its card .json, golden/NAME.png + ` +
      'golden/NAME.mask.png; config: config.json)',
  );
}

/** Writes manifest.json and manifest.json.sig for the files in `dir`. */
export async function signBundle(dir: string, o: SignOptions): Promise<BundleManifest> {
  const files: BundleFile[] = [];
  for (const path of await listFiles(dir)) {
    const full = join(dir, path);
    files.push({ path, sha256: await sha256OfFile(full), size: (await stat(full)).size, role: roleOf(path, o.kind) });
  }
  const manifest: BundleManifest = {
    schemaVersion: 1,
    kind: o.kind,
    name: o.name,
    version: o.version,
    created: new Date().toISOString(),
    minDaemonVersion: o.minDaemonVersion,
    files,
  };
  if (o.kind === 'model') {
    const card = files.find((f) => f.role === 'card');
    if (!card) throw new BundleError('a model bundle needs the model card (.json) beside the .onnx');
    manifest.input = (await loadModelCard(join(dir, card.path))).input;
    manifest.golden = files
      .filter((f) => f.role === 'golden-image')
      .map((f) => ({ image: f.path, mask: f.path.replace(/\.png$/, '.mask.png') }));
  }
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2));
  const sig = signManifest(bytes, o.privateKeyPem);
  await writeFile(join(dir, 'manifest.json'), bytes);
  await writeFile(join(dir, 'manifest.json.sig'), JSON.stringify(sig));
  return manifest;
}

/**
 * golden/NAME.png (the frame) and golden/NAME.mask.png (what the bundle's model makes of it), for
 * each image: the self-test on the box must then reproduce these masks.
 */
export async function writeGolden(dir: string, images: string[], logger: Logger): Promise<number> {
  const names = await readdir(dir);
  const onnx = names.filter((n) => n.endsWith('.onnx'));
  if (onnx.length !== 1) throw new BundleError(`${dir}: expected one .onnx file, found ${onnx.length}`);
  const modelPath = join(dir, onnx[0] as string);
  const card = await loadModelCard(modelPath.replace(/\.onnx$/, '.json'));
  const seg = await Segmenter.create({ modelPath, card, executionProviders: ['cpu'], intraOpThreads: 1, logger });
  try {
    const proc = new FrameProcessor(seg, { minAreaPx: 0, pixelSpacingMm: null });
    await mkdir(join(dir, 'golden'), { recursive: true });
    for (const [i, img] of images.entries()) {
      const bytes = await readFile(img);
      const r = await proc.process(await frameFromImage(bytes, card.preprocessing, i + 1));
      const name = basename(img, extname(img));
      // the frame is stored as PNG whatever it came as, so the self-test decodes exactly these pixels
      await writeFile(join(dir, 'golden', `${name}.png`), await sharp(bytes).png().toBuffer());
      await writeFile(join(dir, 'golden', `${name}.mask.png`), await encodePng(r.mask, r.width, r.height));
    }
  } finally {
    await seg.release();
  }
  return images.length;
}
