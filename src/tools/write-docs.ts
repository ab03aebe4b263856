/** `npm run docs`: regenerate docs/config.md, docs/mqtt.md and docs/updates.md from their schemas. */
import { writeFile, mkdir } from 'node:fs/promises';
import { configMarkdown } from '../config/docs.js';
import { mqttMarkdown } from '../mqtt/docs.js';
import { updatesMarkdown } from '../updates/docs.js';

await mkdir('docs', { recursive: true });
await writeFile('docs/config.md', configMarkdown());
await writeFile('docs/mqtt.md', mqttMarkdown());
await writeFile('docs/updates.md', updatesMarkdown());
console.log('wrote docs/config.md, docs/mqtt.md, docs/updates.md');
