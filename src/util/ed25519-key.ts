/** Parsing a trusted Ed25519 public key (base64 SPKI DER): config validation and bundle checks share it. */
import { createPublicKey, type KeyObject } from 'node:crypto';

/** The key object; throws with the reason when `b64` is not a base64 SPKI Ed25519 public key. */
export function ed25519PublicKey(b64: string): KeyObject {
  try {
    const k = createPublicKey({ key: Buffer.from(b64, 'base64'), format: 'der', type: 'spki' });
    if (k.asymmetricKeyType !== 'ed25519') throw new Error(`is ${k.asymmetricKeyType}, not ed25519`);
    return k;
  } catch (err) {
    throw new Error(`not a base64 SPKI Ed25519 public key (${(err as Error).message})`);
  }
}

/** Why a configured trusted key is unusable, or null. */
export function publicKeyProblem(b64: string): string | null {
  try {
    ed25519PublicKey(b64);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}
