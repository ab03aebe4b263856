#!/usr/bin/env node
// Fails on any line over 120 characters in the git-tracked TypeScript of src/, tests/ and bench/.
// Biome's formatter cannot break long strings or comments, so `npm run lint` runs this after `biome ci`.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const MAX = 120;

const files = execFileSync('git', ['ls-files', '-z', '--', 'src/*.ts', 'tests/*.ts', 'bench/*.ts'], { encoding: 'utf8' })
  .split('\0')
  .filter(Boolean);

let offenders = 0;
for (const file of files) {
  if (!existsSync(file)) continue; // tracked but deleted in the work tree
  const lines = readFileSync(file, 'utf8').split(/\r?\n/);
  for (const [i, line] of lines.entries()) {
    const length = [...line].length; // code points, not UTF-16 units: "…" and "²" are one column each
    if (length > MAX) {
      console.log(`${file}:${i + 1}: ${length}`);
      offenders++;
    }
  }
}
if (offenders) {
  console.error(`${offenders} line(s) over ${MAX} characters (Biome cannot break strings or comments: split them)`);
  process.exit(1);
}
