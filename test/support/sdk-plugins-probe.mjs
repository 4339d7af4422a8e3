#!/usr/bin/env node
// Runs scripts/sdk-bundle-plugins.mjs (an ES module) for test/scripts/sdk-bundle-plugins.test.ts, which
// Jest cannot import directly; prints one JSON document on stdout.
//
//   node sdk-plugins-probe.mjs inline <file>           { code, rewritten } or { error }
//   node sdk-plugins-probe.mjs manifest <client dir>   { fields } or { error }
//   node sdk-plugins-probe.mjs schemas <file>          the module's exports, built without and with the plugin
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { inlineSchemaKeys, manifestFieldsRead, sdkSchemaKeysPlugin } from '../../scripts/sdk-bundle-plugins.mjs';

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

async function exportsOf(file, plugins) {
  const result = await build({ entryPoints: [file], bundle: true, platform: 'node', format: 'cjs', mainFields: ['module', 'main'], write: false, logLevel: 'error', plugins });
  const module = { exports: {} };
  new Function('module', 'exports', 'require', result.outputFiles[0].text)(module, module.exports, createRequire(resolve(file)));
  return describeExports(module.exports);
}

try {
  if (command === 'inline') print(inlineSchemaKeys(readFileSync(target, 'utf8'), target));
  else if (command === 'manifest') print({ fields: await manifestFieldsRead(target) });
  else if (command === 'schemas') print({ original: await exportsOf(target, []), rewritten: await exportsOf(target, [sdkSchemaKeysPlugin]) });
  else throw new Error(`unknown command ${command}`);
} catch (error) {
  print({ error: error.message });
}
