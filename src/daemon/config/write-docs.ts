/** `npm run docs`: regenerate docs/config.md from the schema. */
import { writeFile, mkdir } from 'node:fs/promises';
import { configMarkdown } from './docs.js';

await mkdir('docs', { recursive: true });
await writeFile('docs/config.md', configMarkdown());
console.log('wrote docs/config.md');
