/**
 * The update bundle's manifest and its detached signature: one TypeBox schema that validates what
 * arrives, types the code and documents the format (docs/updates.md).
 */
import { Type, type Static } from '@sinclair/typebox';
import semver from 'semver';
import { compileSchema, formatErrors, makeAjv } from '../util/schema.js';

/** Relative file names only: no "..", no absolute paths, at most one folder level. */
const SAFE_PATH = '^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)?$';
const SEMVER = '^\\d+\\.\\d+\\.\\d+(-[0-9A-Za-z.-]+)?$';

export const BundleFile = Type.Object(
  {
    path: Type.String({ pattern: SAFE_PATH, description: 'relative to the manifest' }),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    size: Type.Integer({ minimum: 0, description: 'bytes' }),
    role: Type.Union(
      ['model', 'card', 'config', 'golden-image', 'golden-mask'].map((r) => Type.Literal(r)),
      {
        description:
          'model: the ONNX file; card: its model card; config: a partial config; golden-*: self-test frames ' +
          'and their expected masks',
      },
    ),
  },
  { additionalProperties: false },
);
export type BundleFile = Static<typeof BundleFile>;

export const TensorInput = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    dtype: Type.Literal('float32'),
    shape: Type.Array(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]), { minItems: 4, maxItems: 4 }),
  },
  { additionalProperties: false, description: 'the model input, as in its card; null = dynamic batch' },
);

export const BundleManifest = Type.Object(
  {
    schemaVersion: Type.Literal(1),
    kind: Type.Union([Type.Literal('model'), Type.Literal('config')]),
    name: Type.String({ pattern: '^[A-Za-z0-9._-]{1,100}$' }),
    version: Type.String({
      pattern: SEMVER,
      description: 'semver; an older version than the active one is refused unless updates.allowDowngrade',
    }),
    created: Type.String({ format: 'date-time' }),
    minDaemonVersion: Type.String({ pattern: SEMVER, description: 'the oldest daemon that may install it' }),
    input: Type.Optional(TensorInput),
    files: Type.Array(BundleFile, { minItems: 1, maxItems: 200 }),
    golden: Type.Optional(
      Type.Array(
        Type.Object(
          { image: Type.String({ pattern: SAFE_PATH }), mask: Type.String({ pattern: SAFE_PATH }) },
          { additionalProperties: false },
        ),
        {
          description:
            'model bundles: frames (ROI images as the capture delivers them) and the masks the model must reproduce',
        },
      ),
    ),
  },
  { additionalProperties: false, $id: 'bundle-manifest' },
);
export type BundleManifest = Static<typeof BundleManifest>;

export const SignatureFile = Type.Object(
  {
    algorithm: Type.Literal('ed25519'),
    keyId: Type.String({
      pattern: '^[0-9a-f]{16}$',
      description: 'first 16 hex digits of sha256(SPKI DER public key)',
    }),
    signature: Type.String({ description: 'base64 Ed25519 signature of the exact bytes of manifest.json' }),
  },
  { additionalProperties: false, $id: 'bundle-signature' },
);
export type SignatureFile = Static<typeof SignatureFile>;

export class BundleError extends Error {}

// from the network: the first error is enough, and cheap whatever the document
const untrusted = makeAjv({ firstErrorOnly: true });
const validateManifest = compileSchema(BundleManifest, untrusted);
const validateSignature = compileSchema(SignatureFile, untrusted);

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    // not the parser's message: it quotes the bytes, and the host that served them may be anyone's
    throw new BundleError(`${what} is not JSON (${bytes.length} bytes)`);
  }
}

export function parseSignature(bytes: Buffer): SignatureFile {
  const json = parseJson(bytes, 'signature file');
  // read before any key vouches for it: its errors do not quote it (an unknown key's name would)
  if (!validateSignature(json))
    throw new BundleError(
      `signature file: not an ed25519 signature file (${bytes.length} bytes; algorithm, keyId, signature)`,
    );
  return json;
}

/** Schema plus the rules a schema cannot say: roles per kind, golden pairs listed, unique paths. */
export function parseManifest(bytes: Buffer): BundleManifest {
  const json = parseJson(bytes, 'manifest');
  if (!validateManifest(json)) throw new BundleError(`manifest: ${formatErrors(validateManifest.errors)}`);
  const m = json;
  const paths = new Set<string>();
  for (const f of m.files) {
    if (paths.has(f.path)) throw new BundleError(`manifest.files: ${f.path} listed twice`);
    if (f.path.startsWith('manifest.json')) throw new BundleError(`manifest.files: ${f.path} is a reserved name`);
    paths.add(f.path);
  }
  const count = (role: BundleFile['role']) => m.files.filter((f) => f.role === role).length;
  if (m.kind === 'model') {
    if (count('model') !== 1 || count('card') !== 1)
      throw new BundleError('manifest.files: a model bundle has exactly one model and one card');
    if (!m.input) throw new BundleError('manifest.input: is required for a model bundle');
    if (!m.golden?.length) throw new BundleError('manifest.golden: a model bundle needs at least one golden frame');
    for (const g of m.golden) {
      for (const p of [g.image, g.mask])
        if (!paths.has(p)) throw new BundleError(`manifest.golden: ${p} is not in files`);
    }
  } else if (count('config') !== 1 || m.files.length !== 1) {
    throw new BundleError('manifest.files: a config bundle has exactly one file, of role config');
  }
  if (!semver.valid(m.version)) throw new BundleError(`manifest.version: ${m.version} is not semver`);
  return m;
}

export function fileOfRole(m: BundleManifest, role: BundleFile['role']): BundleFile {
  const f = m.files.find((x) => x.role === role);
  if (!f) throw new BundleError(`manifest has no ${role} file`);
  return f;
}
