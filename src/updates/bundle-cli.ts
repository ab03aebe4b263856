/** `thyroid-edge bundle ...`: the operator's tools (keygen, golden, sign, verify) and offline install/status. */
import { Command, Option } from 'commander';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { configOption } from '../config/cli-option.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../util/logger.js';
import { VERSION } from '../version.js';
import { signBundle, writeGolden } from './bundle-writer.js';
import { generateKeyPair } from './signing.js';
import { Updater } from './updater.js';
import { verifyBundleDir, verifyFiles } from './verify-bundle.js';

const print = (o: unknown) => console.log(JSON.stringify(o));

export function bundleCommand(): Command {
  const cmd = new Command('bundle').description('signed model/config update bundles (docs/updates.md)');

  cmd
    .command('keygen')
    .description('new Ed25519 signing key: private key to a 0600 file, public key printed for updates.trustedKeys')
    .requiredOption('-o, --out <dir>', 'folder for signing-key.pem and signing-key.pub')
    .action(async (o: { out: string }) => {
      const k = generateKeyPair();
      await mkdir(o.out, { recursive: true });
      const priv = join(o.out, 'signing-key.pem');
      await writeFile(priv, k.privateKeyPem, { mode: 0o600 });
      await chmod(priv, 0o600);
      await writeFile(join(o.out, 'signing-key.pub'), `${k.publicKey}\n`);
      print({ keyId: k.keyId, publicKey: k.publicKey, privateKey: priv });
    });

  cmd
    .command('golden')
    .description("golden frames for a model bundle: each image and the mask the bundle's own model makes of it")
    .argument('<dir>', 'bundle folder with the .onnx and its card')
    .argument('<images...>', 'ROI frames (PNG/JPEG) as the capture delivers them')
    .action(async (dir: string, images: string[]) => {
      print({ golden: await writeGolden(dir, images, createLogger('warn', true)) });
    });

  cmd
    .command('sign')
    .description('write manifest.json + manifest.json.sig over the files in a folder')
    .argument('<dir>')
    .requiredOption('-k, --key <file>', 'private key (PEM) from keygen')
    .addOption(new Option('--kind <kind>', 'bundle kind').choices(['model', 'config']).makeOptionMandatory())
    .requiredOption('--name <name>')
    .requiredOption('--bundle-version <semver>', 'the bundle version')
    .option('--min-daemon <semver>', 'oldest daemon that may install it', VERSION)
    .action(
      async (
        dir: string,
        o: { key: string; kind: 'model' | 'config'; name: string; bundleVersion: string; minDaemon: string },
      ) => {
        const m = await signBundle(dir, {
          kind: o.kind,
          name: o.name,
          version: o.bundleVersion,
          minDaemonVersion: o.minDaemon,
          privateKeyPem: await readFile(o.key, 'utf8'),
        });
        print({
          kind: m.kind,
          name: m.name,
          version: m.version,
          files: m.files.length,
          manifest: join(dir, 'manifest.json'),
        });
      },
    );

  cmd
    .command('verify')
    .description("check a bundle folder's signature and files against trusted keys (from --config or --pub)")
    .argument('<dir>')
    .addOption(configOption('config whose updates.trustedKeys to use'))
    .option('--pub <key...>', 'trusted public key(s), base64 SPKI')
    .action(async (dir: string, o: { config?: string[]; pub?: string[] }) => {
      const keys = o.pub ?? (await loadConfig(o.config)).updates.trustedKeys;
      const { manifest, keyId } = await verifyBundleDir(dir, keys);
      print({ ok: true, kind: manifest.kind, name: manifest.name, version: manifest.version, keyId });
    });

  cmd
    .command('install')
    .description(
      'install a bundle into the state directory with the daemon stopped (field service); its health window ' +
        'runs at the next start',
    )
    .argument('<url>', 'manifest URL (https://, file://) or a bundle folder')
    .addOption(configOption())
    .action(async (url: string, o: { config?: string[] }) => {
      const config = await loadConfig(o.config);
      const updater = new Updater(config, createLogger('warn', true));
      updater.onProgress((p) => print(p));
      await updater.recover({ countBoot: false });
      const target = /^[a-z]+:\/\//.test(url) ? url : pathToFileURL(join(resolve(url), 'manifest.json')).href;
      const last = await updater.install(target);
      process.exitCode = last.state === 'failed' ? 1 : 0;
    });

  cmd
    .command('status')
    .description('the active model and config bundles in the state directory, each checked complete')
    .addOption(configOption())
    .action(async (o: { config?: string[] }) => {
      const config = await loadConfig(o.config);
      const updater = new Updater(config, createLogger('warn', true));
      await updater.recover({ countBoot: false });
      const out: Record<string, unknown> = {};
      for (const kind of ['model', 'config'] as const) {
        const store = updater.stores[kind];
        const slot = await store.active();
        const manifest = await store.manifestOf(slot);
        let complete: boolean | string = true;
        if (slot && manifest)
          complete = await verifyFiles(store.slotDir(slot), manifest).then(
            () => true,
            (err: Error) => err.message,
          );
        out[kind] = {
          slot,
          version: manifest?.version ?? null,
          name: manifest?.name ?? null,
          complete,
          trial: await store.trial(),
        };
      }
      print(out);
    });
  return cmd;
}
