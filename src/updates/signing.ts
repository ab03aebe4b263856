/** Ed25519 keys and signatures for update bundles (Node's crypto; no third-party crypto). */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { ed25519PublicKey } from '../util/ed25519-key.js';
import { BundleError, type SignatureFile } from './manifest.js';

export interface KeyPair {
  /** PKCS#8 PEM: keep it offline, on the operator's machine */
  privateKeyPem: string;
  /** base64 SPKI DER: one line, pasted into updates.trustedKeys */
  publicKey: string;
  keyId: string;
}

export function keyIdOf(publicKeyB64: string): string {
  return createHash('sha256').update(Buffer.from(publicKeyB64, 'base64')).digest('hex').slice(0, 16);
}

export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pub = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: pub,
    keyId: keyIdOf(pub),
  };
}

function publicKeyObject(b64: string): KeyObject {
  try {
    return ed25519PublicKey(b64);
  } catch (err) {
    throw new BundleError(`trusted key ${b64.slice(0, 12)}…: ${(err as Error).message}`);
  }
}

export function signManifest(manifestBytes: Buffer, privateKeyPem: string): SignatureFile {
  const key = createPrivateKey(privateKeyPem);
  if (key.asymmetricKeyType !== 'ed25519')
    throw new BundleError(`signing key is ${key.asymmetricKeyType}, not ed25519`);
  const pub = createPublicKey(key).export({ type: 'spki', format: 'der' }).toString('base64');
  return { algorithm: 'ed25519', keyId: keyIdOf(pub), signature: sign(null, manifestBytes, key).toString('base64') };
}

/** Throws BundleError unless the signature is by one of the trusted keys; returns that key's id. */
export function verifyManifest(manifestBytes: Buffer, sig: SignatureFile, trustedKeys: readonly string[]): string {
  if (trustedKeys.length === 0)
    throw new BundleError('no trusted keys configured (updates.trustedKeys): every bundle is refused');
  const key = trustedKeys.find((k) => keyIdOf(k) === sig.keyId);
  if (!key)
    throw new BundleError(`signed by unknown key ${sig.keyId}; trusted: ${trustedKeys.map(keyIdOf).join(', ')}`);
  if (!verify(null, manifestBytes, publicKeyObject(key), Buffer.from(sig.signature, 'base64'))) {
    throw new BundleError(`bad signature: manifest does not verify against key ${sig.keyId}`);
  }
  return sig.keyId;
}
