// Run in a fresh `node` process by `npm run bench`: times require() of one bundle, i.e. the
// module-scope initialisation a Lambda cold start pays before the first invocation, and prints it as JSON.
'use strict';
const { performance } = require('node:perf_hooks');

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node bench/measure-require.cjs <bundle.js>\n');
  process.exit(2);
}
const start = performance.now();
require(file);
const requireMs = performance.now() - start;
process.stdout.write(`${JSON.stringify({ requireMs })}\n`);
