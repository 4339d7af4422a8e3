#!/usr/bin/env node
// Bundles every handler under lambda/<name>/index.ts into assets/lambda/<name>/index.js.
// The bundles are what the constructs reference with lambda.Code.fromAsset and what the npm
// package ships, so neither the blueprint nor a consumer needs Docker or a bundler at synth.
import { build } from 'esbuild';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const sourceDir = join(root, 'lambda');
const outRoot = join(root, 'assets', 'lambda');
const quiet = process.argv.includes('--quiet');

const handlers = readdirSync(sourceDir, { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && entry.name !== 'shared')
  .map((entry) => entry.name)
  .filter((name) => existsSync(join(sourceDir, name, 'index.ts')))
  .sort();

// Remove bundles of handlers that no longer exist; rebuild the others in place, so that a synth
// running beside a build never sees an empty assets folder.
if (existsSync(outRoot)) {
  for (const entry of readdirSync(outRoot)) {
    if (!handlers.includes(entry)) rmSync(join(outRoot, entry), { recursive: true, force: true });
  }
}

for (const name of handlers) {
  const result = await build({
    entryPoints: [join(sourceDir, name, 'index.ts')],
    outfile: join(outRoot, name, 'index.js'),
    bundle: true,
    platform: 'node',
    // Lambda runs the handlers on Node.js 24; Node 20 is the floor so the test suite can load them too.
    target: 'node20',
    format: 'cjs',
    minify: true,
    // The SDK is bundled rather than taken from the runtime so that the version tested is the version deployed.
    external: [],
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  if (!quiet) {
    const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
    console.log(`bundled lambda/${name} -> assets/lambda/${name}/index.js (${(bytes / 1024).toFixed(1)} KiB)`);
  }
}
