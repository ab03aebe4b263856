/**
 * Downloads a bundle (manifest.json, manifest.json.sig and the files it lists, relative to the
 * manifest's URL) into a staging directory, with a byte cap. https:// always; file:// only when
 * allowed (tests, field service from a USB stick). Nothing is trusted here: verify-bundle checks.
 */
import { constants } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { writeSynced } from '../util/durable-fs.js';
import { BundleError, parseSignature, type BundleManifest, type SignatureFile } from './manifest.js';

/** What every download obeys. */
export interface NetOptions {
  timeoutMs: number;
  /** https hosts the box may fetch from, redirects included; null: any */
  allowedHosts: readonly string[] | null;
}

export interface FetchOptions extends NetOptions {
  /** total bytes a bundle may occupy in staging */
  maxBytes: number;
  allowFileUrls: boolean;
}

export interface FetchedBundle {
  manifest: BundleManifest;
  manifestBytes: Buffer;
  signature: SignatureFile;
  /** bytes actually received per file path (the verifier compares them with the manifest) */
  received: Map<string, number>;
}

const MAX_MANIFEST_BYTES = 1 << 20;
const MAX_SIGNATURE_BYTES = 4096;

/**
 * An allowedHosts entry as URL.host spells it: lower case, the port only when it is not 443. "fleet.lan" is
 * fleet.lan:443 alone; another port has to be named ("fleet.lan:8443").
 */
export function hostEntry(entry: string): string {
  return new URL(`https://${entry}`).host;
}

/**
 * A bundle URL the box may fetch: https (to a host and port in `allowedHosts` when that is a list), or file://
 * when allowed. Anyone on the broker may ask for an update: the list keeps the box from fetching from any host,
 * and the port from being used to probe the fleet host's other services.
 */
export function checkUrl(url: string, allowFileUrls: boolean, allowedHosts: readonly string[] | null = null): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new BundleError(`url: "${url}" is not a URL`);
  }
  if (u.protocol === 'https:') {
    if (allowedHosts && !allowedHosts.some((h) => hostEntry(h) === u.host))
      throw new BundleError(`url: host ${u.host} is not in updates.allowedHosts (${allowedHosts.join(', ')})`);
    return u;
  }
  if (u.protocol === 'file:' && allowFileUrls) return u;
  throw new BundleError(`url: ${u.protocol} is refused (https:${allowFileUrls ? ' or file:' : ''} only)`);
}

/** Redirects followed at most (each one checked like the first URL). */
export const MAX_REDIRECTS = 5;

/**
 * GET over https, following redirects by hand: each hop must pass checkUrl again with file://
 * off (an https server never sends us to a local file), so https holds all the way; at most
 * MAX_REDIRECTS hops, all within one timeout.
 */
async function httpsGet(u: URL, net: NetOptions): Promise<Response> {
  const signal = AbortSignal.timeout(net.timeoutMs);
  let url = u;
  for (let hop = 0; ; hop++) {
    const res = await fetch(url, { signal, redirect: 'manual' }).catch((err: Error) => {
      throw new BundleError(`cannot fetch ${url.href}: ${err.message}`);
    });
    const location = res.status >= 300 && res.status < 400 ? res.headers.get('location') : null;
    if (location === null) return res;
    await res.body?.cancel().catch(() => undefined);
    if (hop >= MAX_REDIRECTS) throw new BundleError(`cannot fetch ${u.href}: more than ${MAX_REDIRECTS} redirects`);
    let next: URL;
    try {
      next = checkUrl(new URL(location, url).href, false, net.allowedHosts);
    } catch (err) {
      // where it pointed, but only its scheme and host: the rest of a Location may carry a session or a token
      const t = URL.canParse(location, url) ? new URL(location, url) : null;
      const where = t ? `${t.protocol}//${t.host}` : 'an invalid URL';
      throw new BundleError(`cannot fetch ${u.href}: redirect from ${url.href} to ${where} refused (${refusal(err)})`);
    }
    url = next;
  }
}

/** checkUrl's reason without the URL it quotes (a redirect's target is the remote host's words) */
function refusal(err: unknown): string {
  const m = (err as Error).message;
  return m.startsWith('url: "') ? 'not a URL' : m;
}

async function openStream(u: URL, net: NetOptions): Promise<Readable> {
  if (u.protocol === 'file:') {
    // O_NONBLOCK so that opening a FIFO does not wait for a writer; then only a regular file is read
    // (a FIFO, a device or a socket would hang the updater or stream forever).
    const fh = await open(fileURLToPath(u), constants.O_RDONLY | constants.O_NONBLOCK).catch((err: Error) => {
      throw new BundleError(`cannot read ${u.href}: ${err.message}`);
    });
    const st = await fh.stat().catch(async (err: Error) => {
      await fh.close();
      throw new BundleError(`cannot read ${u.href}: ${err.message}`);
    });
    if (!st.isFile()) {
      await fh.close();
      throw new BundleError(`cannot read ${u.href}: not a regular file`);
    }
    return fh.createReadStream();
  }
  const res = await httpsGet(u, net);
  if (!res.ok || !res.body) throw new BundleError(`cannot fetch ${u.href}: HTTP ${res.status}`);
  return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
}

/** Reads a small document whole, refusing more than maxBytes. */
async function fetchSmall(u: URL, maxBytes: number, net: NetOptions): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of await openStream(u, net)) {
    n += (chunk as Buffer).length;
    if (n > maxBytes) throw new BundleError(`${u.href}: larger than ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Streams one file to disk, stopping past `limit` bytes; fsync'd so a crash leaves nothing half-trusted. */
async function fetchToFile(u: URL, dest: string, limit: number, net: NetOptions): Promise<number> {
  await mkdir(dirname(dest), { recursive: true });
  const fh = await open(dest, 'w');
  let n = 0;
  try {
    for await (const chunk of await openStream(u, net)) {
      n += (chunk as Buffer).length;
      if (n > limit)
        throw new BundleError(`${u.href}: more bytes than the manifest declares or the staging cap allows (${limit})`);
      await fh.write(chunk as Buffer);
    }
    await fh.sync();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOSPC' || e.code === 'EDQUOT')
      throw new BundleError(`disk full while writing ${dest} (${e.code})`);
    if (err instanceof BundleError) throw err;
    throw new BundleError(`${u.href}: download interrupted after ${n} bytes (${e.message})`);
  } finally {
    await fh.close();
  }
  return n;
}

/**
 * Only the manifest and its signature, no file: enough for a scheduled check to decide whether anything is new.
 * `accept` checks the signature before the manifest is parsed, as for an install.
 */
export async function peekManifest(
  url: string,
  o: FetchOptions,
  accept: (manifestBytes: Buffer, signature: SignatureFile) => BundleManifest,
): Promise<BundleManifest> {
  const { manifestBytes, signature } = await fetchSigned(url, o);
  return accept(manifestBytes, signature);
}

/** The manifest's bytes (unread) and its signature file, from `url` and `url`.sig. */
async function fetchSigned(
  url: string,
  o: FetchOptions,
): Promise<{ base: URL; manifestBytes: Buffer; signature: SignatureFile }> {
  const base = checkUrl(url, o.allowFileUrls, o.allowedHosts);
  const manifestBytes = await fetchSmall(base, MAX_MANIFEST_BYTES, o);
  const signature = parseSignature(await fetchSmall(new URL(`${base.href}.sig`), MAX_SIGNATURE_BYTES, o));
  return { base, manifestBytes, signature };
}

/**
 * Manifest and signature first; `accept` (signature, then parsing, then version rules) runs on them before any
 * file is fetched, so an unsigned or stale bundle costs the box two small downloads, not a staging area's worth.
 */
export async function fetchBundle(
  url: string,
  staging: string,
  o: FetchOptions,
  accept: (manifestBytes: Buffer, signature: SignatureFile) => Promise<BundleManifest>,
): Promise<FetchedBundle> {
  const { base, manifestBytes, signature } = await fetchSigned(url, o);
  const manifest = await accept(manifestBytes, signature);
  const declared = manifest.files.reduce((s, f) => s + f.size, 0);
  if (declared > o.maxBytes)
    throw new BundleError(
      `bundle declares ${declared} bytes, over the staging cap of ${o.maxBytes} (updates.maxBundleBytes)`,
    );
  await mkdir(staging, { recursive: true });
  const received = new Map<string, number>();
  for (const f of manifest.files) {
    // one byte of slack past the declared size tells "too long" from "exact"; a listed path is relative (the
    // manifest's schema), so the file comes from the manifest's host, which checkUrl allowed
    received.set(f.path, await fetchToFile(new URL(f.path, base), join(staging, f.path), f.size + 1, o));
  }
  await writeSynced(join(staging, 'manifest.json'), manifestBytes);
  await writeSynced(join(staging, 'manifest.json.sig'), JSON.stringify(signature));
  return { manifest, manifestBytes, signature, received };
}
