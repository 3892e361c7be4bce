// `node --test test/cluster/` hands the directory itself to the module loader, which loads
// this index.js: it imports every *.test.ts beside it, so that form runs the whole folder in
// one process. (A glob, `node --test 'test/cluster/*.test.ts'`, runs one process per file.)
import { readdirSync } from 'node:fs';

const here = new URL('./', import.meta.url);
for (const file of readdirSync(here).filter((f) => f.endsWith('.test.ts')).sort()) {
  await import(new URL(file, here).href);
}
