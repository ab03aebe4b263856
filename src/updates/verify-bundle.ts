/** Everything that must hold before a staged bundle may be installed: signature, versions, bytes. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { readFile } from 'node:fs/promises';
import { BundleError, parseManifest, parseSignature, type BundleManifest, type SignatureFile } from './manifest.js';
import { verifyManifest } from './signing.js';

export interface VerifyOptions {
  trustedKeys: readonly string[];
  daemonVersion: string;
  /** version of the active bundle of the same kind, or null for the factory one */
  activeVersion: string | null;
  /** the highest version of this kind ever activated on the box (null: none) */
  highestVersion: string | null;
  allowDowngrade: boolean;
}

export async function sha256OfFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * The manifest's bytes checked against the signature, then parsed: nothing in a document no trusted key signed
 * is read (a crafted manifest from anywhere costs one signature check). Throws BundleError with the reason.
 */
export function parseSignedManifest(
  manifestBytes: Buffer,
  signature: SignatureFile,
  trustedKeys: readonly string[],
): { manifest: BundleManifest; keyId: string } {
  const keyId = verifyManifest(manifestBytes, signature, trustedKeys);
  return { manifest: parseManifest(manifestBytes), keyId };
}

/** The version rules for a signed manifest; throws BundleError with the reason. */
export function checkVersions(manifest: BundleManifest, o: Omit<VerifyOptions, 'trustedKeys'>): void {
  if (!semver.gte(o.daemonVersion, manifest.minDaemonVersion)) {
    throw new BundleError(`bundle needs daemon ${manifest.minDaemonVersion} or newer; this is ${o.daemonVersion}`);
  }
  if (o.activeVersion !== null) {
    if (semver.eq(manifest.version, o.activeVersion))
      throw new BundleError(`${manifest.kind} ${manifest.version} is already active`);
    if (semver.lt(manifest.version, o.activeVersion) && !o.allowDowngrade) {
      throw new BundleError(
        `downgrade from ${o.activeVersion} to ${manifest.version} refused (updates.allowDowngrade is off)`,
      );
    }
  }
  // after a rollback (or on the factory files) the active version says nothing of what was installed
  // before: a signed bundle stays valid forever, so without this floor an old one could be replayed
  if (o.highestVersion !== null && semver.lte(manifest.version, o.highestVersion) && !o.allowDowngrade) {
    throw new BundleError(
      `${manifest.kind} ${manifest.version} is not newer than ${o.highestVersion}, the highest ever installed ` +
        'here; refused (updates.allowDowngrade is off)',
    );
  }
}

/** Sizes (a short file is a truncated download) and sha256 of every staged file. */
export async function verifyFiles(
  dir: string,
  manifest: BundleManifest,
  received?: Map<string, number>,
): Promise<void> {
  for (const f of manifest.files) {
    const got = received?.get(f.path);
    if (got !== undefined && got !== f.size) {
      throw new BundleError(
        got < f.size
          ? `${f.path}: truncated download (${got} of ${f.size} bytes)`
          : `${f.path}: ${got} bytes, manifest says ${f.size}`,
      );
    }
    let sha: string;
    try {
      sha = await sha256OfFile(join(dir, f.path));
    } catch (err) {
      throw new BundleError(`${f.path}: cannot read (${(err as Error).message})`);
    }
    if (sha !== f.sha256)
      throw new BundleError(
        `${f.path}: sha256 mismatch (got ${sha.slice(0, 12)}…, manifest says ${f.sha256.slice(0, 12)}…)`,
      );
  }
}

/** A bundle folder as the operator has it (or a slot on the box): signature and every file. */
export async function verifyBundleDir(
  dir: string,
  trustedKeys: readonly string[],
): Promise<{ manifest: BundleManifest; keyId: string }> {
  const read = async (name: string) => {
    try {
      return await readFile(join(dir, name));
    } catch (err) {
      throw new BundleError(`${name}: cannot read (${(err as Error).message})`);
    }
  };
  const bytes = await read('manifest.json');
  const { manifest, keyId } = parseSignedManifest(bytes, parseSignature(await read('manifest.json.sig')), trustedKeys);
  await verifyFiles(dir, manifest);
  return { manifest, keyId };
}
