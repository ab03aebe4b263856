/**
 * The box's identity on the broker is its client certificate (the broker maps the CN to the
 * username and the client id). A configured client id that differs from it would be replaced by
 * the broker anyway, or, on a broker set up otherwise, let one box pose as another: refused here.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../config/load.js';

/** The certificate's subject CN, or null when it has none. */
export function certificateCommonName(pem: Buffer | string): string | null {
  const subject = new X509Certificate(pem).subject; // "C=..\nO=..\nCN=box-a"
  const cn = subject.split('\n').find((l) => l.startsWith('CN='));
  return cn ? cn.slice(3) : null;
}

/** Throws ConfigError when the client id is not the certificate's CN. */
export function checkClientIdentity(clientId: string, certPem: Buffer | string): void {
  let cn: string | null;
  try {
    cn = certificateCommonName(certPem);
  } catch (err) {
    throw new ConfigError(`mqtt.certFile: not a PEM certificate (${(err as Error).message})`);
  }
  if (cn !== clientId) {
    throw new ConfigError(
      `mqtt.clientId: "${clientId}" differs from the identity of mqtt.certFile (CN=${cn ?? 'none'}); the broker ` +
        `knows a box by its certificate, so the client id (default: deviceId) must equal the CN`,
    );
  }
}

/** Before anything starts: a configured client certificate must name this box's client id. */
export async function checkConfiguredIdentity(
  m: { clientId?: string; certFile?: string },
  deviceId: string,
): Promise<void> {
  if (!m.certFile) return;
  let pem: Buffer;
  try {
    pem = await readFile(m.certFile);
  } catch (err) {
    throw new ConfigError(`mqtt.certFile: cannot read ${m.certFile}: ${(err as Error).message}`);
  }
  checkClientIdentity(m.clientId ?? deviceId, pem);
}
