/** A throwaway PKI made with openssl: a CA, a server certificate for 127.0.0.1/localhost, client certificates. */
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'ignore' });
}

export async function makePki(dir: string, clients: string[] = []): Promise<void> {
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=test-ca',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
    ],
    dir,
  );
  await writeFile(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  signedByCa(dir, 'server', '/CN=localhost', ['-extfile', 'san.ext']);
  for (const c of clients) signedByCa(dir, c, `/CN=${c}`);
}

/** `<name>.key` and `<name>.crt` for `subject`, signed by the CA in `dir`. */
function signedByCa(dir: string, name: string, subject: string, extra: string[] = []): void {
  openssl(
    ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', subject, '-keyout', `${name}.key`, '-out', `${name}.csr`],
    dir,
  );
  const ca = ['-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2'];
  openssl(['x509', '-req', '-in', `${name}.csr`, ...ca, ...extra, '-out', `${name}.crt`], dir);
}
