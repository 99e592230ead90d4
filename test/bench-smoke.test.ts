// The benchmark's plumbing at a tiny size (2,000 installments): it builds its own database,
// measures every scenario and method, agrees with itself on what changed, writes its JSON and
// drops the database. The timings themselves are not judged here: `npm run bench` is a
// benchmark, not a timed test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBench } from '../bench/benchmark.ts';
import { BenchOptionError, parseBenchOptions } from '../bench/options.ts';
import { renderTable, type BenchResults } from '../bench/report.ts';
import { connect } from '../src/db/connect.ts';
import { ADMIN_URL } from './support/database.ts';

test('a 2,000-row run measures every scenario and method, and writes its results', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'overdue-bench-'));
  try {
    const options = parseBenchOptions(
      ['--installments', '2000', '--agencies', '40', '--zones', '30', '--backlog-repetitions', '1', '--daily-repetitions', '1',
       '--idle-repetitions', '2', '--batch-size', '300', '--http', 'false', '--quiet', '--results-dir', dir],
      { TEST_DATABASE_URL: ADMIN_URL },
    );
    const { results, file } = await runBench(options);

    assert.equal(results.schema, 'overdue-bench/1');
    assert.equal(results.dataset.installments, 2000);
    assert.equal(results.dataset.plans, 200);
    assert.equal(results.dataset.zones, 30);
    assert.deepEqual(results.scenarios.map((s) => s.scenario), ['backlog', 'daily', 'dailyAfterCheckpoint', 'idle']);
    for (const s of results.scenarios) {
      assert.ok(s.sameChanges, `${s.scenario}: every method must flip and audit the same installments`);
      assert.deepEqual(Object.keys(s.methods).sort(), ['limit', 'ours', 'story']);
      for (const m of Object.values(s.methods)) {
        assert.equal(m.flips, s.flips);
        assert.ok(m.medianMs > 0 && m.samplesMs.length >= 1);
      }
    }
    const [backlog, , , idle] = results.scenarios;
    assert.ok(backlog!.flips > 500, `a first run has a backlog, got ${backlog!.flips}`);
    assert.equal(idle!.flips, 0, 'a second run at once has nothing to do');
    assert.ok('batches' in results.batch, 'batch mode was measured');
    if ('batches' in results.batch) {
      assert.equal(results.batch.flips, backlog!.flips, 'the batches together flip the same backlog');
      assert.ok(results.batch.batches >= Math.ceil(backlog!.flips / 300));
    }
    assert.deepEqual(results.http, { skipped: 'skipped (--http false)' });
    assert.ok(results.targets.some((t) => t.name === 'nothing to do'));

    const written = JSON.parse(await readFile(file, 'utf8')) as BenchResults;
    assert.deepEqual(written, JSON.parse(await readFile(join(dir, 'latest.json'), 'utf8')));
    assert.deepEqual((await readdir(dir)).sort(), [file.split('/').pop()!, 'latest.json'].sort());
    assert.match(renderTable(written), /\| backlog \| [\d,]+ \| /);

    // Its database is gone.
    const admin = connect(ADMIN_URL, { max: 1 });
    try {
      const left = await admin`select datname from pg_database where datname like ${`overdue_bench_%_${process.pid}`}`;
      assert.equal(left.length, 0, `left behind: ${left.map((r) => r.datname).join(", ")}`);
    } finally {
      await admin.end();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('bad options are refused with the option and the value', () => {
  const refused = (argv: string[], env: Record<string, string> = {}) => {
    try {
      parseBenchOptions(argv, env);
    } catch (e) {
      assert.ok(e instanceof BenchOptionError);
      return e.message;
    }
    assert.fail(`${argv.join(' ')} was accepted`);
  };
  assert.match(refused(['--installments', '12abc']), /--installments: expected a whole number .* got "12abc"/);
  assert.match(refused([], { BENCH_SCALE: '-1' }), /BENCH_SCALE: expected a number .* got "-1"/);
  assert.match(refused(['--mode', 'fast']), /expected full or growth, got "fast"/);
  assert.match(refused(['--agencies', '900', '--installments', '5000']), /--agencies 900 is more than --plans 500/);
  assert.match(refused(['--frobnicate']), /unknown option "--frobnicate"/);
  const scaled = parseBenchOptions(['--scale', '10'], {});
  assert.deepEqual([scaled.installments, scaled.plans, scaled.agencies, scaled.zones], [20_000_000, 2_000_000, 500, 400]);
});
