// esbuild plugins that let the bundler drop the parts of the AWS SDK clients a handler never uses,
// without changing what the code that is kept does. Both are checked, not hoped for: input they do not
// understand fails the build with the file, so an SDK release that changes its layout is noticed, not shipped.
//
// 1. Schemas (sdkSchemaKeysPlugin). Each SDK v3 client describes every operation and shape of its service
//    in dist-es/schemas/schemas_0.js as plain arrays, e.g.
//    `export var GetObject$ = [9, n0, _GO, { [_h]: ["GET", "/{Key+}", 200] }, ...]`. Those would tree-shake
//    but for the computed keys: esbuild treats `{ [_h]: ... }` as a possible side effect (a computed key may
//    run a toString), so it keeps every shape of the service and the strings they name: 57 KiB of S3 in a
//    handler that calls GetObject. The keys are the module's own top-level `const _h = "http";` strings, so
//    writing them as literal keys builds the same objects, and esbuild keeps only the shapes a command reaches.
// 2. Versions (sdkPackageVersionPlugin). Each client imports its own package.json for one field, the version
//    in the user agent; esbuild bundles the whole manifest (2–2.5 KiB per client). The plugin hands it
//    `{ "name", "version" }` only, after checking that the client reads nothing else from it.

import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

const STRING_CONSTANT = /^const (_[A-Za-z0-9_$]+) = ("(?:[^"\\\r\n]|\\.)*");$/gm;
const COMPUTED_KEY = /([{,]\s*)\[([A-Za-z_$][A-Za-z0-9_$]*)\](\s*:)/g;
const ANY_COMPUTED_KEY = /[{,]\s*\[[^\]\r\n]*\]\s*:/;

/** Schema modules of the SDK clients: `@aws-sdk/client-<service>/dist-es/schemas/schemas_<n>.js`. */
export const SCHEMA_MODULE = /[\\/]@aws-sdk[\\/]client-[^\\/]+[\\/]dist-es[\\/]schemas[\\/]schemas_\d+\.js$/;

/**
 * Rewrites computed keys that name a top-level string constant of the module as literal keys.
 * Returns the new source and how many keys it rewrote; throws when a computed key is left.
 */
export function inlineSchemaKeys(source, file = 'schema module') {
  const constants = new Map();
  for (const [, name, literal] of source.matchAll(STRING_CONSTANT)) constants.set(name, literal);
  let rewritten = 0;
  const unknown = new Set();
  const code = source.replace(COMPUTED_KEY, (match, before, name, after) => {
    const literal = constants.get(name);
    if (literal === undefined) {
      unknown.add(name);
      return match;
    }
    rewritten += 1;
    return `${before}${literal}${after}`;
  });
  if (unknown.size > 0) {
    throw new Error(`${file}: computed keys that are not string constants of the module: ${[...unknown].sort().join(', ')}`);
  }
  const left = ANY_COMPUTED_KEY.exec(code);
  if (left !== null) throw new Error(`${file}: a computed key the schema rewrite does not understand: ${left[0].trim()}`);
  return { code, rewritten };
}

/** Applies inlineSchemaKeys to every SDK schema module the bundle reads. */
export const sdkSchemaKeysPlugin = {
  name: 'sdk-schema-keys',
  setup(build) {
    build.onLoad({ filter: SCHEMA_MODULE }, async ({ path }) => {
      const { code } = inlineSchemaKeys(await readFile(path, 'utf8'), path);
      return { contents: code, loader: 'js' };
    });
  },
};

/** A client's manifest: `@aws-sdk/client-<service>/package.json`. */
export const CLIENT_MANIFEST = /[\\/]@aws-sdk[\\/]client-[^\\/]+[\\/]package\.json$/;

const MANIFEST_IMPORT = /^import (\w+) from "\.\.\/package\.json";$/m;

/**
 * The fields of the client's package.json that its dist-es modules read; throws unless that is `version`
 * alone (read as `<import>.version`), which is the one field sdkPackageVersionPlugin keeps beside the name.
 */
export async function manifestFieldsRead(clientDir) {
  const distEs = join(clientDir, 'dist-es');
  const fields = new Set();
  for (const entry of await readdir(distEs)) {
    if (!entry.endsWith('.js')) continue;
    const file = join(distEs, entry);
    const code = await readFile(file, 'utf8');
    const binding = MANIFEST_IMPORT.exec(code)?.[1];
    if (binding === undefined) {
      if (code.includes('package.json')) throw new Error(`${file}: reads package.json in a way the version rewrite does not understand`);
      continue;
    }
    const uses = [...code.matchAll(new RegExp(`\\b${binding}\\b(\\.\\w+)?`, 'g'))].slice(1);
    for (const [use, field] of uses) {
      if (field === undefined) throw new Error(`${file}: uses ${use} as a whole, so the whole package.json must stay`);
      fields.add(field.slice(1));
    }
  }
  const extra = [...fields].filter((field) => field !== 'version');
  if (extra.length > 0) throw new Error(`${clientDir}: reads package.json fields ${extra.sort().join(', ')} besides version`);
  return [...fields];
}

/** Gives each SDK client's package.json import only the name and version, once the client reads nothing else. */
export const sdkPackageVersionPlugin = {
  name: 'sdk-package-version',
  setup(build) {
    build.onLoad({ filter: CLIENT_MANIFEST }, async ({ path }) => {
      await manifestFieldsRead(dirname(path));
      const { name, version } = JSON.parse(await readFile(path, 'utf8'));
      return { contents: JSON.stringify({ name, version }), loader: 'json' };
    });
  },
};
