/** `npm run docs`: regenerate docs/config.md and docs/mqtt.md from their schemas. */
import { writeFile, mkdir } from 'node:fs/promises';
import { configMarkdown } from '../daemon/config/docs.js';
import { mqttMarkdown } from '../daemon/mqtt/docs.js';

await mkdir('docs', { recursive: true });
await writeFile('docs/config.md', configMarkdown());
await writeFile('docs/mqtt.md', mqttMarkdown());
console.log('wrote docs/config.md, docs/mqtt.md');
