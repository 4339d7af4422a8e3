#!/usr/bin/env node
// Bundles every handler under lambda/<name>/index.ts into assets/lambda/<name>/index.js.
// The bundles are what the constructs reference with lambda.Code.fromAsset and what the npm
// package ships, so neither the blueprint nor a consumer needs Docker or a bundler at synth.
//
// The cdk.json app runs this before every synth, so it is incremental: after a build it records the
// content hash of every file esbuild read (sources and node_modules alike), of this script, of the
// package manifest and lock and of tsconfig.json, in node_modules/.cache/cdk-ml-patterns/lambda-build.json.
// When none of them changed and every bundle is still there, it exits without starting esbuild.
// `--force` always rebuilds (`npm run build:lambda`, and so `npm pack`); `--quiet` prints nothing but warnings.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SdkUsage, sdkEventStreamPlugin, sdkPackageVersionPlugin, sdkSchemaPlugin } from './sdk-bundle-plugins.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const sourceDir = join(root, 'lambda');
const outRoot = join(root, 'assets', 'lambda');
const stampFile = join(root, 'node_modules', '.cache', 'cdk-ml-patterns', 'lambda-build.json');
const quiet = process.argv.includes('--quiet');
const force = process.argv.includes('--force');

/** esbuild options for every handler; exported so that the bench can build with the same ones. */
export const BUNDLE_OPTIONS = {
  bundle: true,
  platform: 'node',
  // Lambda runs the handlers on Node.js 24; Node 20 is the floor so the test suite can load them too.
  target: 'node20',
  format: 'cjs',
  minify: true,
  // The SDK's ES module builds tree-shake: its CommonJS entry points pull in every protocol of
  // @smithy/core (CBOR, Query, EC2, XML) and a browser user-agent parser whatever the client uses.
  mainFields: ['module', 'main'],
  // The SDK loads node:http with `await import()`; as a require() it also runs in Jest's module sandbox.
  supported: { 'dynamic-import': false },
  alias: {
    // Environment and container credentials only: see lambda/sdk/credential-provider-node.ts.
    '@aws-sdk/credential-provider-node': join(sourceDir, 'sdk', 'credential-provider-node.ts'),
    // The DynamoDB client's endpoint-discovery cache, as a Map: see lambda/sdk/lru-cache.ts.
    'mnemonist/lru-cache': join(sourceDir, 'sdk', 'lru-cache.ts'),
  },
  // The SDK is bundled rather than taken from the runtime so that the version tested is the version deployed.
  external: [],
  // Let esbuild drop what the SDK clients bundle and a handler never runs: the schemas and errors of
  // operations it does not call, the manifests' unread fields and the event-stream serde. See
  // scripts/sdk-bundle-plugins.mjs. The handlers' sources (lambda/, and lib/ which they share) are scanned
  // for the SDK commands and errors they import.
  plugins: [sdkSchemaPlugin(new SdkUsage(root, ['lambda', 'lib'])), sdkEventStreamPlugin, sdkPackageVersionPlugin],
  legalComments: 'none',
  logLevel: 'warning',
};

function handlerNames() {
  return readdirSync(sourceDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && entry.name !== 'shared')
    .map((entry) => entry.name)
    .filter((name) => existsSync(join(sourceDir, name, 'index.ts')))
    .sort();
}

const hashOf = (file) => createHash('sha256').update(readFileSync(file)).digest('base64url');

/** A file's recorded identity: its content hash, plus size and mtime so that an untouched file is not read again. */
function fingerprint(file) {
  const stat = statSync(file);
  return { hash: hashOf(file), size: stat.size, mtimeMs: stat.mtimeMs };
}

/** Size and modification time of every file under `dir`, by absolute path: what a build starts from. */
export function snapshot(dir) {
  const files = new Map();
  const walk = (current) => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) {
        const stat = statSync(path);
        files.set(path, { size: stat.size, mtimeMs: stat.mtimeMs });
      }
    }
  };
  if (existsSync(dir)) walk(dir);
  return files;
}

/**
 * The fingerprint to record for an input after a build. A source under `dir` that is not as it was when the build
 * started (edited while esbuild ran, or new) may not be what esbuild read: it is recorded as never matching, so
 * that the next build bundles it again. Files outside `dir` (node_modules) are taken as they are.
 */
export function settledFingerprint(path, before, dir) {
  if (path.startsWith(`${dir}${sep}`)) {
    const start = before.get(path);
    const stat = statSync(path);
    if (start === undefined || start.size !== stat.size || start.mtimeMs !== stat.mtimeMs) return { hash: 'changed-during-build', size: -1, mtimeMs: -1 };
  }
  return fingerprint(path);
}

function unchanged(file, recorded) {
  let stat;
  try {
    stat = statSync(file);
  } catch {
    return false;
  }
  if (stat.size !== recorded.size) return false;
  // Same size and mtime: the same file as far as make would tell; otherwise compare the content.
  return stat.mtimeMs === recorded.mtimeMs || hashOf(file) === recorded.hash;
}

/**
 * What decides the bundles besides the files esbuild reads: this script (options, alias), the locked
 * dependency versions, the tsconfig esbuild reads settings from, and the Node major version.
 */
function buildKey() {
  const files = ['package-lock.json', 'package.json', 'tsconfig.json'].map((name) => join(root, name));
  const scripts = [fileURLToPath(import.meta.url), fileURLToPath(new URL('./sdk-bundle-plugins.mjs', import.meta.url))];
  return [...scripts, ...files].map((file) => (existsSync(file) ? hashOf(file) : 'none')).concat(process.version.split('.')[0]).join(':');
}

function readStamp() {
  try {
    return JSON.parse(readFileSync(stampFile, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Whether the recorded build is still what a build now would produce. */
function upToDate(stamp, handlers, key) {
  if (stamp === undefined || stamp.key !== key) return false;
  if (JSON.stringify(stamp.handlers) !== JSON.stringify(handlers)) return false;
  if (!handlers.every((name) => existsSync(join(outRoot, name, 'index.js')))) return false;
  return Object.entries(stamp.inputs).every(([file, recorded]) => unchanged(join(root, file), recorded));
}

async function main() {
  const handlers = handlerNames();
  const key = buildKey();
  if (!force && upToDate(readStamp(), handlers, key)) {
    if (!quiet) console.log(`lambda bundles are up to date (${handlers.length} handlers; --force rebuilds)`);
    return;
  }

  // Remove bundles of handlers that no longer exist; rebuild the others in place, so that a synth
  // running beside a build never sees an empty assets folder.
  if (existsSync(outRoot)) {
    for (const entry of readdirSync(outRoot)) {
      if (!handlers.includes(entry)) rmSync(join(outRoot, entry), { recursive: true, force: true });
    }
  }

  // Loaded only when there is something to build. One esbuild call over every entry point: each
  // still gets its own self-contained bundle.
  const { build } = await import('esbuild');
  const before = snapshot(sourceDir);
  const result = await build({
    ...BUNDLE_OPTIONS,
    entryPoints: handlers.map((name) => ({ in: join(sourceDir, name, 'index.ts'), out: join(name, 'index') })),
    outdir: outRoot,
    absWorkingDir: root,
    metafile: true,
  });

  const inputs = {};
  for (const file of Object.keys(result.metafile.inputs)) {
    // Inputs are relative to absWorkingDir; esbuild's virtual modules (e.g. `<define:...>`) have no file.
    const path = join(root, file);
    if (existsSync(path)) inputs[relative(root, path).split(sep).join('/')] = settledFingerprint(path, before, sourceDir);
  }
  mkdirSync(dirname(stampFile), { recursive: true });
  // Written aside and renamed, so that a check running beside this build never reads half a stamp.
  const partial = `${stampFile}.${process.pid}`;
  writeFileSync(partial, `${JSON.stringify({ key, handlers, inputs })}\n`);
  renameSync(partial, stampFile);

  if (!quiet) {
    for (const [file, output] of Object.entries(result.metafile.outputs).sort(([a], [b]) => a.localeCompare(b))) {
      console.log(`bundled ${relative(root, output.entryPoint ?? file)} -> ${file} (${(output.bytes / 1024).toFixed(1)} KiB)`);
    }
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
