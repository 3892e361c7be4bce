// Documentation that is checked: every error reason and config key is in the README.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { REASONS } from '../../src/allocation/errors.ts';
import { ConfigSchema } from '../../src/config/schema.ts';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

test('every error reason has a row in the README error table', () => {
  for (const reason of REASONS) assert.match(README, new RegExp(`^\\| \`${reason}\` \\|`, 'm'), reason);
});

test('every top-level config section is documented', () => {
  for (const key of Object.keys(ConfigSchema.shape)) assert.match(README, new RegExp(`\`${key}\\.`), key);
});

test('the README shows the tested client programs verbatim', () => {
  for (const file of ['test/clients/go/main.go', 'test/clients/python/client.py', 'test/clients/cpp/client.cc', 'test/clients/java/Client.java']) {
    const text = readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
    assert.ok(README.includes(`\n${text}\`\`\``), `${file} differs from the README's copy`);
  }
});
