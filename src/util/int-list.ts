/** "1-3,7" -> [1, 2, 3, 7]: seed lists on the command line (the phantom tools). Throws naming the bad part. */
export function parseIntList(spec: string, what = 'list'): number[] {
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`${what}: "${part}" is not a number or a range like 1-12`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new Error(`${what}: "${part}" runs backwards`);
    for (let v = lo; v <= hi; v++) out.push(v);
  }
  return out;
}
