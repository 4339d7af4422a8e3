// `node -r ./bin/register-ts.cjs bin/app.ts`: runs the blueprint's TypeScript the way Jest does (swc, no
// type check; `npm test` runs tsc), without ts-node, which loads the whole TypeScript compiler only to
// read tsconfig.json: about 0.35 s of every synth. Stack traces and cdk-nag's source locations point at
// the .ts lines through Node's own source-map support.
'use strict';
const { readFileSync } = require('node:fs');
const { transformSync } = require('@swc/core');

process.setSourceMapsEnabled(true);

require.extensions['.ts'] = function compileTypeScript(module, filename) {
  if (filename.includes(`${require('node:path').sep}node_modules${require('node:path').sep}`)) {
    throw new Error(`bin/register-ts.cjs compiles the blueprint's own TypeScript, not ${filename}`);
  }
  const { code } = transformSync(readFileSync(filename, 'utf8'), {
    filename,
    sourceMaps: 'inline',
    module: { type: 'commonjs' },
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
  });
  module._compile(code, filename);
};
