// `npm run bench [-- options]`: see bench/options.ts for the knobs and bench/benchmark.ts for
// what is measured. Prints the table on stdout; progress goes to stderr.
import { BenchOptionError, parseBenchOptions, USAGE, type BenchOptions } from './options.ts';
import { runBench } from './benchmark.ts';
import { renderTable } from './report.ts';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
let options: BenchOptions;
try {
  options = parseBenchOptions(process.argv.slice(2), process.env);
} catch (error) {
  if (error instanceof BenchOptionError) {
    console.error(error.message);
    process.exit(2);
  }
  throw error;
}
const { results, file } = await runBench(options);
console.log(renderTable(results));
console.log(`\nWritten to ${file}${options.mode === 'full' ? ' and latest.json' : ''}.`);
if (!results.scenarios.every((s) => s.sameChanges)) {
  console.error('The methods did not change the same installments, so the comparison is void: see the JSON.');
  process.exitCode = 1;
}
