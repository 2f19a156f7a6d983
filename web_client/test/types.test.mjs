// The packages' TypeScript declarations compile and say what the API is:
// tsc checks test/types/usage.ts, an app's use of @weft/core, @weft/provider
// and @weft/codemirror through their package "exports".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

test('the .d.ts files of the packages type-check an app that uses them', () => {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  let out = '';
  try {
    execFileSync(process.execPath, [tsc, '-p', path.join(root, 'test', 'types', 'tsconfig.json')],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120000 });
  } catch (e) {
    out = `${e.stdout ?? ''}${e.stderr ?? ''}` || String(e);
  }
  assert.equal(out, '', `tsc found errors:\n${out}`);
});
