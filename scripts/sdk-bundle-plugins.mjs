// esbuild plugins that let the bundler drop the parts of the AWS SDK clients a handler never uses, without
// changing what the handlers see. Each is checked, not hoped for: input it does not understand fails the
// build, naming the file, so an SDK release that changes its layout is noticed, not shipped.
// test/scripts/sdk-bundle-plugins.test.ts covers each of them.
//
// 1. Schemas (sdkSchemaPlugin). Each SDK v3 client describes every operation and shape of its service
//    in dist-es/schemas/schemas_0.js as plain arrays, e.g.
//    `export var GetObject$ = [9, n0, _GO, { [_h]: ["GET", "/{Key+}", 200] }, ...]`. Those would tree-shake
//    but for the computed keys: esbuild treats `{ [_h]: ... }` as a possible side effect (a computed key may
//    run a toString), so it keeps every shape of the service and the strings they name: 55 KiB of S3 in a
//    handler that calls GetObject. The keys are the module's own top-level `const _h = "http";` strings, so
//    writing them as literal keys builds the same objects, and esbuild keeps only the shapes a command reaches.
// 2. Versions (sdkPackageVersionPlugin). Each client imports its own package.json for one field, the version
//    in the user agent; esbuild bundles the whole manifest (2–2.5 KiB per client). The plugin hands it
//    `{ "name", "version" }` only, after checking that the client reads nothing else from it.
// 3. Error registries (sdkSchemaPlugin, after 1). A schema module registers every error class of its service
//    when it loads (`n0_registry.registerError(ParameterNotFound$, ParameterNotFound)`), so a handler that
//    calls SSM GetParameter carried all 140 SSM error classes (60 KiB). The registry is how the SDK turns an
//    error response into a class; an error it does not hold arrives as the client's ServiceException with the
//    same name, message, $fault, $metadata and fields, which is the SDK's own path for an unmodeled error;
//    what differs is only its class. So each registry keeps: the errors the bundled operations declare (the @throws of every command the
//    handlers import, or the client imports itself), the errors the handlers import by name (so `instanceof`
//    holds), every error with a retry trait (`$retryable` changes how the SDK retries) and the base exception.
//    The commands and names come from scanning lambda/ and lib/ before the build (SdkUsage); after it, a
//    bundled command or source file the scan did not see fails the build.
// 4. Event streams (sdkEventStreamPlugin). HttpProtocol loads its event-stream serde with `await import()`,
//    which a CommonJS bundle inlines: 10–20 KiB in every handler, run only by an operation with an event
//    stream. The plugin resolves that one dynamic import to a module that throws a clear error, and after the
//    build fails it if a bundle holds an event-stream schema (an operation that would need the serde).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';

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

const REGISTRATION = /^(\w+)_registry\.registerError\((\w+)\$, (\w+)\);$/gm;

/**
 * Removes the registerError calls of errors not in `keep`. The synthetic registry (`_s_registry`, which holds
 * the client's ServiceException, the class every unregistered error becomes) is always kept. Throws when a
 * registerError call is not one the rewrite reads, or when `keep` names an error the module does not register.
 */
export function pruneErrorRegistrations(source, keep, file = 'schema module') {
  const registered = new Set();
  let removed = 0;
  const code = source.replace(REGISTRATION, (line, registry, schema, errorClass) => {
    registered.add(errorClass);
    if (schema !== errorClass) throw new Error(`${file}: registers ${errorClass} with the schema ${schema}$, which the error rewrite does not expect`);
    if (registry === '_s' || keep.has(errorClass)) return line;
    removed += 1;
    return '';
  });
  const calls = source.split('registerError(').length - 1;
  if (calls !== registered.size) throw new Error(`${file}: ${calls - registered.size} registerError calls the error rewrite does not understand`);
  const unknown = [...keep].filter((name) => !registered.has(name));
  if (unknown.length > 0) throw new Error(`${file}: kept errors that the module does not register: ${unknown.sort().join(', ')}`);
  return { code, removed, kept: registered.size - removed };
}

const CLIENT_IMPORT = /import\s+(type\s+)?(\{[^}]*\}|\*\s+as\s+\w+|\w+)\s+from\s+['"]@aws-sdk\/(client-[\w-]+)['"]/g;
const THROWS = /@throws \{@link (\w+)\}/g;

function sourceFiles(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|cts|js|mjs|cjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/**
 * What the bundles use of each SDK client, read from the source before the build: for every client, the
 * commands imported (by the handlers or by the client itself) and the other names imported. From those it
 * derives the errors each client's registry keeps.
 */
export class SdkUsage {
  /**
   * @param {string} root the repository
   * @param {string[]} sourceDirs directories (under root) whose files the bundles may include
   * @param {string} nodeModules where the SDK clients are installed
   */
  constructor(root, sourceDirs, nodeModules = join(root, 'node_modules')) {
    this.root = root;
    this.nodeModules = nodeModules;
    this.sourceDirs = sourceDirs.map((dir) => resolve(root, dir));
    this.keepCache = new Map();
  }

  /**
   * Client package (e.g. client-ssm) -> the names the sources import from it. Read on first use, so that
   * a build that finds the bundles up to date does not scan.
   * @returns {Map<string, Set<string>>}
   */
  get names() {
    if (this.scanned !== undefined) return this.scanned;
    const root = this.root;
    const found = new Map();
    for (const file of this.sourceDirs.flatMap(sourceFiles)) {
      for (const [statement, typeOnly, clause, client] of readFileSync(file, 'utf8').matchAll(CLIENT_IMPORT)) {
        if (typeOnly !== undefined) continue;
        if (!clause.startsWith('{')) throw new Error(`${relative(root, file)}: \`${statement}\`: import the names used from ${client}, so that its error registry can be trimmed`);
        const names = found.get(client) ?? new Set();
        for (const part of clause.slice(1, -1).split(',')) {
          const name = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0];
          if (name.length > 0 && !part.trim().startsWith('type ')) names.add(name);
        }
        found.set(client, names);
      }
    }
    this.scanned = found;
    return found;
  }

  clientDir(client) {
    return join(this.nodeModules, '@aws-sdk', client);
  }

  /** The commands of `client` the bundles can run: imported by the sources, or by the client class itself. */
  commands(client) {
    const distEs = join(this.clientDir(client), 'dist-es');
    // The client class may run a command of its own (S3Client: CreateSession; DynamoDBClient: DescribeEndpoints).
    // The aggregated class (`SSM.js`), which imports every command, is not what the handlers import.
    const own = readdirSync(distEs)
      .filter((name) => name.endsWith('Client.js'))
      .flatMap((name) => [...readFileSync(join(distEs, name), 'utf8').matchAll(/from "\.\/commands\/(\w+Command)"/g)].map((match) => match[1]));
    const imported = [...(this.names.get(client) ?? [])].filter((name) => existsSync(join(distEs, 'commands', `${name}.js`)));
    return new Set([...own, ...imported]);
  }

  /** The error classes `client`'s registry keeps (see the header of this file). */
  keptErrors(client) {
    if (this.keepCache.has(client)) return this.keepCache.get(client);
    const dir = this.clientDir(client);
    const errorsSource = readFileSync(join(dir, 'dist-es', 'models', 'errors.js'), 'utf8');
    const errorClasses = new Set([...errorsSource.matchAll(/^export class (\w+) extends /gm)].map((match) => match[1]));
    const keep = new Set();
    for (const command of this.commands(client)) {
      const declaration = join(dir, 'dist-types', 'commands', `${command}.d.ts`);
      for (const [, name] of readFileSync(declaration, 'utf8').matchAll(THROWS)) if (errorClasses.has(name)) keep.add(name);
    }
    for (const name of this.names.get(client) ?? []) if (errorClasses.has(name)) keep.add(name);
    for (const [, name, body] of errorsSource.matchAll(/^export class (\w+) extends \w+ \{\n([\s\S]*?)^\}/gm)) {
      if (/^\s+\$retryable\b/m.test(body)) keep.add(name);
    }
    this.keepCache.set(client, keep);
    return keep;
  }

  /**
   * Throws unless every source file and SDK command that a bundle holds code of (esbuild's metafile
   * outputs, paths relative to `workingDir`) is one the scan saw: a file outside the scanned directories,
   * or a command imported in a way the scan does not read, could need an error that was not registered.
   */
  verify(outputs, workingDir) {
    const problems = [];
    const bundled = new Set(Object.values(outputs).flatMap(({ inputs }) => Object.entries(inputs).filter(([, { bytesInOutput }]) => bytesInOutput > 0).map(([input]) => input)));
    for (const input of bundled) {
      const path = resolve(workingDir, input);
      if (input.includes(':') && !existsSync(path)) continue; // esbuild's virtual modules
      const command = /[\\/]@aws-sdk[\\/](client-[^\\/]+)[\\/]dist-es[\\/]commands[\\/](\w+Command)\.js$/.exec(path);
      if (command !== null && !this.commands(command[1]).has(command[2])) {
        problems.push(`${command[1]} ${command[2]} is bundled, but no scanned source imports it by name`);
      }
      if (!path.split(sep).includes('node_modules') && !this.sourceDirs.some((dir) => path.startsWith(dir + sep))) {
        problems.push(`${relative(this.root, path)} is bundled, but is outside the directories scanned for SDK imports (${this.sourceDirs.map((dir) => relative(this.root, dir)).join(', ')})`);
      }
    }
    if (problems.length > 0) throw new Error(`SDK error registries: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? `; and ${problems.length - 10} more` : ''}`);
  }
}

/**
 * Applies inlineSchemaKeys and pruneErrorRegistrations to every SDK client schema module the bundles read,
 * and checks the bundles against the scan once they are built.
 */
export function sdkSchemaPlugin(usage) {
  return {
    name: 'sdk-schemas',
    setup(build) {
      build.initialOptions.metafile = true;
      build.onLoad({ filter: SCHEMA_MODULE }, async ({ path }) => {
        const client = /[\\/]@aws-sdk[\\/](client-[^\\/]+)[\\/]/.exec(path)[1];
        const { code } = inlineSchemaKeys(await readFile(path, 'utf8'), path);
        return { contents: pruneErrorRegistrations(code, usage.keptErrors(client), path).code, loader: 'js' };
      });
      build.onEnd((result) => {
        if (result.errors.length > 0 || result.metafile === undefined) return;
        try {
          usage.verify(result.metafile.outputs, build.initialOptions.absWorkingDir ?? process.cwd());
        } catch (error) {
          return { errors: [{ text: error.message }] };
        }
      });
    },
  };
}

/** The module HttpProtocol's `import("@smithy/core/event-streams")` gets instead of the serde. */
const EVENT_STREAM_STUB = `
const unavailable = () => {
  throw new Error("@smithy/core/event-streams is not bundled in this handler (scripts/sdk-bundle-plugins.mjs): an operation with an event stream needs it");
};
export const EventStreamSerde = class { constructor() { unavailable(); } };
export const eventStreamSerdeProvider = unavailable;
`;

/** Event-stream unions of a schema module: `export var X$ = [4, n0, _X, { "streaming": 1 }, ...` once keys are inlined. */
export function eventStreamUnions(schemaSource) {
  const names = new Map([...schemaSource.matchAll(/^const (_\w+) = "([^"]*)";$/gm)].map(([, constant, value]) => [constant, value]));
  return [...schemaSource.matchAll(/^export var \w+\$ = \[4, n0, (_\w+),\s*\{ \[_st\]: 1 \}/gm)].map(([, constant]) => names.get(constant)).filter((name) => name !== undefined);
}

/** Resolves HttpProtocol's dynamic import of the event-stream serde to a stub; fails a bundle that holds an event-stream schema. */
export const sdkEventStreamPlugin = {
  name: 'sdk-event-streams',
  setup(build) {
    build.initialOptions.metafile = true;
    build.onResolve({ filter: /^@smithy\/core\/event-streams$/ }, (args) =>
      args.kind === 'dynamic-import' && /[\\/]@smithy[\\/]core[\\/]dist-es[\\/]submodules[\\/]protocols[\\/]HttpProtocol\.js$/.test(args.importer)
        ? { path: 'event-streams', namespace: 'sdk-event-stream-stub' }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'sdk-event-stream-stub' }, () => ({ contents: EVENT_STREAM_STUB, loader: 'js' }));
    build.onEnd(async (result) => {
      if (result.errors.length > 0 || result.metafile === undefined) return;
      const workingDir = build.initialOptions.absWorkingDir ?? process.cwd();
      const unions = new Map();
      for (const input of Object.keys(result.metafile.inputs)) {
        if (SCHEMA_MODULE.test(input)) unions.set(input, eventStreamUnions(await readFile(resolve(workingDir, input), 'utf8')));
      }
      const problems = [];
      for (const [output, { inputs }] of Object.entries(result.metafile.outputs)) {
        const text = result.outputFiles?.find((file) => file.path === resolve(workingDir, output))?.text ?? (await readFile(resolve(workingDir, output), 'utf8'));
        for (const input of Object.keys(inputs)) {
          for (const name of unions.get(input) ?? []) if (text.includes(`"${name}"`)) problems.push(`${output} holds the event-stream schema ${name}`);
        }
      }
      if (problems.length > 0) return { errors: [{ text: `event streams are stubbed out of the bundles, but ${problems.join('; ')}` }] };
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
