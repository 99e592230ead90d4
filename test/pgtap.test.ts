// Runs the pgTAP suites (supabase/tests/*.test.sql) through scripts/pgtap.sh — a fresh database,
// our migrator, pg_prove — so `npm test` covers them and `npm run test:pgtap` stays honest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const havePgProve = spawnSync('pg_prove', ['--version'], { stdio: 'ignore' }).status === 0;

test(
  'pgTAP suites pass (scripts/pgtap.sh)',
  { skip: havePgProve ? false : 'pg_prove is not installed (libtap-parser-sourcehandler-pgtap-perl); run scripts/prepare-postgres.sh' },
  async () => {
    const files = readdirSync(new URL('../supabase/tests/', import.meta.url)).filter((f) => f.endsWith('.test.sql'));
    assert.ok(files.length >= 2, `expected the pgTAP suites in supabase/tests/, found ${files.join(', ') || 'none'}`);

    const { code, output } = await new Promise<{ code: number; output: string }>((resolve) => {
      execFile('bash', ['scripts/pgtap.sh'], { cwd: root, env: process.env, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, output: `${stdout}\n${stderr}` });
      });
    });
    assert.equal(code, 0, `scripts/pgtap.sh failed:\n${output}`);
    assert.match(output, /Result: PASS/, `pg_prove did not report PASS:\n${output}`);
    // pg_prove reports NOTESTS with exit 0 when it finds no files; make sure every suite ran.
    const ran = /Files=(\d+), Tests=(\d+)/.exec(output);
    assert.ok(ran, `no pg_prove summary in:\n${output}`);
    assert.equal(Number(ran[1]), files.length, `pg_prove ran ${ran[1]} files, supabase/tests/ has ${files.length}`);
    assert.ok(Number(ran[2]) > 100, `only ${ran[2]} pgTAP tests ran`);
  },
);
