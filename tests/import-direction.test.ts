/**
 * Every import in src/ points down the list of rooms (docs: README "Architecture"). A room may use
 * its own files and any lower room; never a higher one, nor another room on its own level. Imports
 * are read with TypeScript's own pre-processor, so `export … from` and `import()` count too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/** Lowest first. Rooms that share a level must not import each other. */
const LEVELS: readonly (readonly string[])[] = [
  ['util', 'version'],
  ['inference'],
  ['capture'],
  ['alerts'],
  ['config'],
  ['system'],
  ['mqtt'],
  ['updates', 'live'],
  ['daemon'],
  ['tools', 'cli'],
];

const SRC = join(import.meta.dirname, '..', 'src');

function roomOf(file: string): string {
  // a top-level file (src/cli.ts, src/version.ts) is a room of its own, named without extension
  return relative(SRC, file)
    .split(sep)[0]!
    .replace(/\.[jt]s$/, '');
}

function levelOf(room: string): number {
  const i = LEVELS.findIndex((l) => l.includes(room));
  if (i < 0) throw new Error(`src/${room} is in no level of LEVELS: add it where it belongs`);
  return i;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

interface Violation {
  from: string;
  to: string;
  why: string;
}

function violations(files: readonly string[], read: (f: string) => string): Violation[] {
  const out: Violation[] = [];
  for (const file of files) {
    const from = roomOf(file);
    for (const ref of ts.preProcessFile(read(file), true, true).importedFiles) {
      if (!ref.fileName.startsWith('.')) continue;
      const target = normalize(join(dirname(file), ref.fileName));
      if (!target.startsWith(SRC + sep)) continue;
      const to = roomOf(target);
      if (to === from) continue;
      const [a, b] = [levelOf(from), levelOf(to)];
      if (b > a)
        out.push({ from: relative(SRC, file), to: ref.fileName, why: `${from} imports the higher room ${to}` });
      else if (b === a)
        out.push({
          from: relative(SRC, file),
          to: ref.fileName,
          why: `${from} imports ${to}, a room on its own level`,
        });
    }
  }
  return out;
}

describe('import direction', () => {
  it('every import in src/ points down the rooms', () => {
    const found = violations(tsFiles(SRC), (f) => readFileSync(f, 'utf8'));
    expect(found.map((v) => `src/${v.from} -> ${v.to}: ${v.why}`)).toEqual([]);
  });

  it('finds an upward import, a sideways one, and one hidden in export-from and import()', () => {
    const files = {
      [join(SRC, 'capture', 'a.ts')]: "import { x } from '../mqtt/b.js';",
      [join(SRC, 'live', 'c.ts')]: "export { y } from '../updates/d.js';",
      [join(SRC, 'inference', 'e.ts')]: "const m = await import('../daemon/f.js');\nimport { z } from './g.js';",
      [join(SRC, 'daemon', 'h.ts')]: "import { w } from '../util/i.js';",
    };
    const found = violations(Object.keys(files), (f) => files[f]!);
    expect(found.map((v) => v.why)).toEqual([
      'capture imports the higher room mqtt',
      'live imports updates, a room on its own level',
      'inference imports the higher room daemon',
    ]);
  });
});
