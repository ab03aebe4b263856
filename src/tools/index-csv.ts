/**
 * The datasets' index.csv (DDTI, TG3K): a header row, then one row per frame; no quoting (free-text columns
 * hold no commas). Rows come back as records by column name, so tools name the columns they read.
 */
export function parseIndexCsv(text: string): Record<string, string>[] {
  const [head = '', ...lines] = text.trim().split('\n');
  const cols = head.split(',');
  return lines.filter(Boolean).map((line) => {
    const c = line.split(',');
    return Object.fromEntries(cols.map((name, i) => [name, c[i] ?? '']));
  });
}

/** Throws naming the first of `names` that the header lacks. */
export function requireColumns(text: string, names: readonly string[]): void {
  const cols = (text.trim().split('\n')[0] ?? '').split(',');
  const missing = names.find((n) => !cols.includes(n));
  if (missing) throw new Error(`index.csv has no column "${missing}"`);
}
