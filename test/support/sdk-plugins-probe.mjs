#!/usr/bin/env node
// Runs scripts/sdk-bundle-plugins.mjs (an ES module) for test/scripts/sdk-bundle-plugins.test.ts, which
// Jest cannot import directly; prints one JSON document on stdout.
//
//   node sdk-plugins-probe.mjs inline <file>           { code, rewritten } or { error }
//   node sdk-plugins-probe.mjs manifest <client dir>   { fields } or { error }
//   node sdk-plugins-probe.mjs schemas <file>          the module's exports, built without and with the key rewrite
//   node sdk-plugins-probe.mjs prune <file> <a,b,...>  pruneErrorRegistrations keeping a, b, ...: { code, removed, kept } or { error }
//   node sdk-plugins-probe.mjs usage <root> <dir,...>  SdkUsage over root's dirs: { clients: { <client>: { commands, kept } } } or { error }
//   node sdk-plugins-probe.mjs build <root> <entry> [endpoint]
//       builds root/<entry> with the handlers' esbuild options, scanning root/lambda (and the credential chain
//       the options alias) for SDK usage; then runs
//       the bundle's `main(endpoint)` when an endpoint is given: { bytes, text?, result? } or { error }
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLE_OPTIONS } from '../../scripts/build-lambdas.mjs';
import {
  inlineSchemaKeys,
  manifestFieldsRead,
  pruneErrorRegistrations,
  SdkUsage,
  sdkEventStreamPlugin,
  sdkPackageVersionPlugin,
  sdkSchemaPlugin,
} from '../../scripts/sdk-bundle-plugins.mjs';

const [command, target] = process.argv.slice(2);
const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

/** Every export of the module, as a graph with thunks resolved and shared nodes named, so that two builds compare with a deep equal. */
function describeExports(exports) {
  const names = new Map();
  for (const [name, value] of Object.entries(exports)) if (value !== null && typeof value === 'object') names.set(value, name);
  const seen = new Map();
  const walk = (value, depth) => {
    if (typeof value === 'function') {
      if (value.length === 0 && !/^class\b/.test(Function.prototype.toString.call(value))) return { thunk: walk(value(), depth) };
      return { function: value.name };
    }
    if (value === null || typeof value !== 'object') return value;
    if (depth > 0 && names.has(value)) return { ref: names.get(value) };
    if (seen.has(value)) return { cycle: seen.get(value) };
    seen.set(value, seen.size);
    if (Array.isArray(value)) return value.map((item) => walk(item, depth + 1));
    if (value instanceof Map) return { map: [...value].map(([key, item]) => [walk(key, depth + 1), walk(item, depth + 1)]) };
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, walk(item, depth + 1)]));
  };
  return Object.fromEntries(Object.entries(exports).sort(([a], [b]) => a.localeCompare(b)).map(([name, value]) => [name, walk(value, 0)]));
}

/** The key rewrite alone, so that the schemas' exports (errors included) can be compared. */
const keysOnlyPlugin = {
  name: 'keys-only',
  setup(build) {
    build.onLoad({ filter: /[\\/]schemas_\d+\.js$/ }, ({ path }) => ({ contents: inlineSchemaKeys(readFileSync(path, 'utf8'), path).code, loader: 'js' }));
  },
};

const repoNodeModules = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'node_modules');

async function buildFixture(root, entry, endpoint) {
  // The handlers' own credential chain (BUNDLE_OPTIONS aliases it) is bundled too.
  const usage = new SdkUsage(root, ['lambda', join(repoNodeModules, '..', 'lambda', 'sdk')], repoNodeModules);
  const result = await build({
    ...BUNDLE_OPTIONS,
    plugins: [sdkSchemaPlugin(usage), sdkEventStreamPlugin, sdkPackageVersionPlugin],
    entryPoints: [join(root, entry)],
    outfile: join(root, 'out', 'index.js'),
    absWorkingDir: root,
    nodePaths: [repoNodeModules],
    write: false,
    logLevel: 'silent',
  });
  const text = result.outputFiles[0].text;
  if (endpoint === undefined) return { bytes: text.length, text };
  const module = { exports: {} };
  new Function('module', 'exports', 'require', text)(module, module.exports, createRequire(join(root, entry)));
  return { bytes: text.length, result: await module.exports.main(endpoint) };
}

async function exportsOf(file, plugins) {
  const result = await build({ entryPoints: [file], bundle: true, platform: 'node', format: 'cjs', mainFields: ['module', 'main'], write: false, logLevel: 'error', plugins });
  const module = { exports: {} };
  new Function('module', 'exports', 'require', result.outputFiles[0].text)(module, module.exports, createRequire(resolve(file)));
  return describeExports(module.exports);
}

try {
  if (command === 'inline') print(inlineSchemaKeys(readFileSync(target, 'utf8'), target));
  else if (command === 'manifest') print({ fields: await manifestFieldsRead(target) });
  else if (command === 'schemas') print({ original: await exportsOf(target, []), rewritten: await exportsOf(target, [keysOnlyPlugin]) });
  else if (command === 'prune') print(pruneErrorRegistrations(readFileSync(target, 'utf8'), new Set(process.argv[4].split(',').filter(Boolean)), target));
  else if (command === 'usage') {
    const usage = new SdkUsage(target, process.argv[4].split(','));
    print({ clients: Object.fromEntries([...usage.names.keys()].sort().map((client) => [client, { commands: [...usage.commands(client)].sort(), kept: [...usage.keptErrors(client)].sort() }])) });
  } else if (command === 'build') print(await buildFixture(target, process.argv[4], process.argv[5]));
  else throw new Error(`unknown command ${command}`);
} catch (error) {
  print({ error: error.errors?.map((e) => e.text).join('; ') ?? error.message });
}
