// Packs the library the way `npm publish` would (prepack builds it), installs the tarball into a
// fresh plain-JavaScript app beside aws-cdk-lib and constructs only, and synthesizes a stack with it:
// proof that a consumer needs no TypeScript, no bundler and no Docker to use the published package.
//
// `npm pack` runs in a snapshot of the working tree (everything but node_modules, which is linked, and
// build output), not in the tree itself: its build rewrites dist/ and assets/lambda/ in place, which
// the other test files of the same run read, and it packs what a clean checkout would build.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, join, posix, relative, sep } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const STEP_TIMEOUT_MS = 180_000;
/** Top-level entries of the working tree left out of the snapshot that is packed: dependencies, VCS and build output. */
const NOT_SNAPSHOTTED = new Set(['node_modules', '.git', 'dist', 'assets', 'cdk.out', 'coverage', '.jest-cache']);
const IMAGE = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1';

interface Manifest {
  readonly name: string;
  readonly dependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
}

interface Template {
  readonly Resources: Record<string, { readonly Type: string; readonly Properties?: Record<string, any> }>;
}

interface AssetManifest {
  readonly files?: Record<string, { readonly source: { readonly path?: string; readonly packaging?: string } }>;
}

/** Runs a command; throws with its output when it fails, so the test shows why. */
function run(command: string, args: string[], options: SpawnSyncOptions = {}): string {
  const result = spawnSync(command, args, {
    encoding: 'utf8',
    timeout: STEP_TIMEOUT_MS,
    maxBuffer: 64 * 1024 * 1024,
    ...options,
  });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  if (result.error || result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.error?.message ?? `exit ${result.status}, signal ${result.signal}`}):\n${output.slice(-8000)}`);
  }
  return String(result.stdout);
}

/** The caller's environment without the variables an enclosing `npm run`/`npm test` sets for its own package. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_(package|lifecycle)_/i.test(key) || /^npm_config_local_prefix$/i.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

function tarballs(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.endsWith('.tgz'));
}

function installedVersion(name: string): string {
  return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Every file under dir, as paths relative to it with forward slashes. */
function walk(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    return entry.isDirectory() ? walk(join(dir, entry.name), relative) : [relative];
  });
}

/** The package name of a bare module specifier: `@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const BUILTINS = new Set(builtinModules);
const isBuiltin = (specifier: string) => specifier.startsWith('node:') || BUILTINS.has(packageOf(specifier));

/** Module specifiers a compiled file or declaration file refers to. */
function specifiersOf(source: string): string[] {
  const found: string[] = [];
  for (const pattern of [/\brequire\(\s*["']([^"']+)["']\s*\)/g, /\bfrom\s+["']([^"']+)["']/g, /\bimport\(\s*["']([^"']+)["']\s*\)/g]) {
    for (const match of source.matchAll(pattern)) found.push(match[1]);
  }
  return found;
}

describe('the published package', () => {
  let work: string;
  let snapshot: string;
  let tarball: string;
  let tarEntries: string[];
  let consumer: string;
  let installed: string;
  let rootTarballsBefore: string[];
  let rootTarballsAfter: string[];

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'cdk-ml-patterns-pack-'));
    const packDir = join(work, 'pack');
    mkdirSync(packDir);

    snapshot = join(work, 'source');
    cpSync(ROOT, snapshot, {
      recursive: true,
      filter: (source) => {
        const [top = ''] = relative(ROOT, source).split(sep);
        return !NOT_SNAPSHOTTED.has(top) && !top.endsWith('.tgz');
      },
    });
    symlinkSync(join(ROOT, 'node_modules'), join(snapshot, 'node_modules'), 'dir');

    rootTarballsBefore = [...tarballs(ROOT), ...tarballs(snapshot)];
    // `npm pack` runs prepare and prepack (the build: Lambda bundles and tsc), as `npm publish` does.
    run('npm', ['pack', '--pack-destination', packDir], { cwd: snapshot, env: cleanEnv() });
    rootTarballsAfter = [...tarballs(ROOT), ...tarballs(snapshot)];
    const packed = tarballs(packDir);
    expect(packed).toHaveLength(1);
    tarball = join(packDir, packed[0]);
    tarEntries = run('tar', ['-tzf', tarball])
      .split('\n')
      .filter(Boolean)
      .map((entry) => entry.replace(/^package\//, ''));

    // A fresh consumer: the tarball plus its peer dependencies, at the versions this repo tests with so
    // the npm cache serves them; install scripts run as they would for any consumer.
    consumer = join(work, 'consumer');
    mkdirSync(consumer);
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer-app', version: '1.0.0', private: true }, null, 2));
    run(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--no-package-lock',
        tarball,
        `aws-cdk-lib@${installedVersion('aws-cdk-lib')}`,
        `constructs@${installedVersion('constructs')}`,
      ],
      { cwd: consumer, env: cleanEnv() },
    );
    installed = join(consumer, 'node_modules', 'cdk-ml-patterns');
  }, 240_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('packs into the given directory and leaves no tarball in the package root', () => {
    expect(tarball.startsWith(work)).toBe(true);
    expect(rootTarballsAfter).toEqual(rootTarballsBefore);
  });

  test('ships the compiled library and the pre-built Lambda bundles, and no sources, tests, config or app', () => {
    expect(tarEntries).toEqual(expect.arrayContaining(['package.json', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'assets/lambda/invoke/index.js']));
    const unwanted = tarEntries.filter((entry) =>
      /^(lambda|test|config|bin|scripts|bench|examples|cdk\.out|node_modules|dist\/(?!lib\/))\//.test(entry) ||
      /^lib\/.*\.ts$/.test(entry) ||
      /^dist\/lib\/.*\.ts$/.test(entry) && !entry.endsWith('.d.ts'),
    );
    expect(unwanted).toEqual([]);
  });

  test('ships the licence its package.json names', () => {
    expect(tarEntries).toContain('LICENSE');
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { license?: string };
    expect(manifest.license).toBe('Apache-2.0');
    const licence = readFileSync(join(installed, 'LICENSE'), 'utf8');
    expect(licence).toMatch(/^\s+Apache License\n\s+Version 2\.0, January 2004\n/);
    expect(licence).toContain('TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION');
    expect(licence).toContain('Copyright 2026 The cdk-ml-patterns authors');
  });

  test('resolves every relative import reachable from index.js and index.d.ts inside the package', () => {
    const shipped = new Set(tarEntries);
    const missing: string[] = [];
    const seen = new Set<string>();
    const visit = (file: string, extensions: string[]) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const specifier of specifiersOf(readFileSync(join(installed, file), 'utf8'))) {
        if (!specifier.startsWith('.')) continue;
        const base = posix.normalize(posix.join(posix.dirname(file), specifier));
        const target = [...extensions.map((ext) => base + ext), ...extensions.map((ext) => `${base}/index${ext}`)].find((candidate) => shipped.has(candidate));
        if (target) visit(target, extensions);
        else missing.push(`${file} -> ${specifier}`);
      }
    };
    visit('dist/lib/index.js', ['.js', '']);
    visit('dist/lib/index.d.ts', ['.d.ts']);
    expect(missing).toEqual([]);
  });

  test('declares every runtime import of the compiled library as a dependency or a peer dependency', () => {
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as Manifest;
    const declared = new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})]);
    expect(Object.keys(manifest.peerDependencies ?? {})).toEqual(expect.arrayContaining(['aws-cdk-lib', 'constructs']));

    const undeclared = walk(join(installed, 'dist', 'lib'))
      .filter((file) => file.endsWith('.js'))
      .flatMap((file) =>
        specifiersOf(readFileSync(join(installed, 'dist', 'lib', file), 'utf8'))
          .filter((specifier) => !specifier.startsWith('.') && !isBuiltin(specifier) && !declared.has(packageOf(specifier)))
          .map((specifier) => `dist/lib/${file} requires '${specifier}'`),
      );
    expect(undeclared).toEqual([]);
  });

  test('installs without a bundler or TypeScript and shares the app\'s single copy of aws-cdk-lib and constructs', () => {
    const modules = join(consumer, 'node_modules');
    expect(existsSync(join(installed, 'dist', 'lib', 'index.js'))).toBe(true);
    for (const tool of ['esbuild', 'typescript', 'ts-node', '@swc/core']) {
      expect({ tool, present: existsSync(join(modules, tool)) }).toEqual({ tool, present: false });
    }
    // The enums synth checks against are generated into the library (lib/core/private/aws-enums.ts):
    // a consumer installs no AWS SDK client at all.
    expect(readdirSync(modules).filter((name) => name.startsWith('@aws-sdk') || name.startsWith('@smithy'))).toEqual([]);
    for (const peer of ['aws-cdk-lib', 'constructs']) {
      expect({ peer, nested: existsSync(join(installed, 'node_modules', peer)) }).toEqual({ peer, nested: false });
    }
  });

  test('a TypeScript consumer can import every name of the public API (test/lib/public-api.txt) from the package root', () => {
    const listing = readFileSync(join(ROOT, 'test', 'lib', 'public-api.txt'), 'utf8').trim().split('\n').map((line) => line.split(' ') as [string, string]);
    const values = listing.filter(([kind]) => ['class', 'function', 'const', 'enum'].includes(kind)).map(([, name]) => name);
    const types = listing.filter(([kind]) => ['interface', 'type'].includes(kind)).map(([, name]) => name);
    expect(values.length + types.length).toBe(listing.length);
    writeFileSync(
      join(consumer, 'check.ts'),
      [
        `import { ${values.join(', ')} } from 'cdk-ml-patterns';`,
        `import type { ${types.join(', ')} } from 'cdk-ml-patterns';`,
        `export type Everything = [${[...values.map((name) => `typeof ${name}`), ...types].join(', ')}];`,
        '',
      ].join('\n'),
    );
    // The repository's TypeScript, over the consumer's node_modules: the tarball and its peer dependencies.
    run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--strict', '--skipLibCheck', '--module', 'commonjs', '--moduleResolution', 'node', '--target', 'es2022', '--types', 'node', '--typeRoots', join(ROOT, 'node_modules', '@types'), 'check.ts'], {
      cwd: consumer,
      env: cleanEnv(),
    });
  }, 120_000);

  test('a plain JavaScript app gets the interface as documented: sticky entries in endpoints, the logging-role opt-out, run-time weights kept or not, errors that name the prop', () => {
    writeFileSync(
      join(consumer, 'interface.js'),
      `'use strict';
const { App, Stack } = require('aws-cdk-lib');
const { ModelEndpoint, RealTimeInferenceApi, WeightsOnUpdate } = require('cdk-ml-patterns');

const image = ${JSON.stringify(IMAGE)};
const capacity = { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 };
const app = new App({ outdir: process.argv[2] });
const stack = new Stack(app, 'InterfaceStack');
const endpoint = new ModelEndpoint(stack, 'Churn', {
  modelName: 'churn',
  variants: [
    { name: 'champion', weight: 1, model: { version: '1.0.0', image }, capacity },
    { name: 'rollback', weight: 0, model: { version: '0.9.0', image }, capacity },
  ],
});
new ModelEndpoint(stack, 'Reset', {
  modelName: 'reset',
  weightsOnUpdate: WeightsOnUpdate.APPLY_PROPS,
  variants: [{ name: 'only', model: { version: '1', image }, capacity }],
});
const api = new RealTimeInferenceApi(stack, 'Inference', { endpoints: [{ modelEndpoint: endpoint, stickyRouting: true, stickySalt: 'spring' }], cloudWatchRole: false });
let error = '';
try {
  new ModelEndpoint(stack, 'Broken', { modelName: 'broken', variants: [{ name: 'a', model: { version: '1', image: 'nginx:latest' }, capacity: { kind: 'gpu' } }] });
} catch (e) {
  error = e.message;
}
app.synth();
console.log(JSON.stringify({ models: api.modelNames, error }));
`,
    );
    const outdir = join(work, 'cdk.out.interface');
    const printed = JSON.parse(run(process.execPath, ['interface.js', outdir], { cwd: consumer, env: cleanEnv() }).trim().split('\n').pop()!) as { models: string[]; error: string };
    expect(printed.models).toEqual(['churn']);
    expect(printed.error).toBe("InterfaceStack/Broken (ModelEndpoint): invalid props:\n  - variants[0].capacity.kind: must be one of 'instance', 'serverless'; got the string \"gpu\"");
    const template = JSON.parse(readFileSync(join(outdir, 'InterfaceStack.template.json'), 'utf8')) as Template;
    const resources = Object.values(template.Resources);
    expect(resources.filter((resource) => resource.Type === 'AWS::ApiGateway::Account')).toHaveLength(0);
    const route = resources.find((resource) => resource.Type === 'AWS::SSM::Parameter');
    expect(JSON.stringify(route?.Properties)).toContain('\\"sticky\\":{\\"salt\\":\\"spring\\"}');
    expect(JSON.stringify(route?.Properties)).toContain('\\"rollback\\":{\\"modelVersion\\":\\"0.9.0\\",\\"weight\\":0}');
    // The default endpoint keeps run-time weights and declares its own; the APPLY_PROPS one does neither.
    const endpoints = resources.filter((resource) => resource.Type === 'AWS::SageMaker::Endpoint').map((resource) => resource.Properties?.RetainAllVariantProperties);
    expect(endpoints.sort()).toEqual([true, undefined]);
    const declared = resources.filter((resource) => resource.Type === 'Custom::EndpointWeights');
    expect(declared.map((resource) => resource.Properties?.Weights)).toEqual([
      [
        { VariantName: 'champion', DesiredWeight: 1 },
        { VariantName: 'rollback', DesiredWeight: 0 },
      ],
    ]);
  });

  test('synthesizes a ModelEndpoint behind a RealTimeInferenceApi from a plain Node.js app, with the shipped handler bundle and no Docker', () => {
    // A `docker` that records any call and fails, first on PATH and named by CDK_DOCKER: bundling
    // with Docker at synth would either leave the marker or fail the synth.
    const fakeBin = join(work, 'fake-bin');
    const dockerMarker = join(work, 'docker-was-called');
    mkdirSync(fakeBin);
    const fakeDocker = join(fakeBin, 'docker');
    writeFileSync(fakeDocker, `#!/bin/sh\necho "docker $*" >> '${dockerMarker}'\necho 'docker is not available in this test' >&2\nexit 1\n`);
    chmodSync(fakeDocker, 0o755);

    const outdir = join(work, 'cdk.out');
    writeFileSync(
      join(consumer, 'app.js'),
      `'use strict';
const { App, Stack } = require('aws-cdk-lib');
const { ModelEndpoint, RealTimeInferenceApi } = require('cdk-ml-patterns');

const app = new App({ outdir: process.argv[2] });
const stack = new Stack(app, 'ConsumerStack');
const endpoint = new ModelEndpoint(stack, 'Churn', {
  modelName: 'churn',
  variants: [
    {
      name: 'primary',
      model: { version: '1.0.0', image: ${JSON.stringify(IMAGE)} },
      capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 },
    },
  ],
});
new RealTimeInferenceApi(stack, 'Inference', { endpoints: [endpoint] });
app.synth();
`,
    );
    run(process.execPath, ['app.js', outdir], {
      cwd: consumer,
      env: cleanEnv({ PATH: `${fakeBin}${delimiter}${process.env.PATH ?? ''}`, CDK_DOCKER: fakeDocker }),
    });
    expect(existsSync(dockerMarker)).toBe(false);

    const template = JSON.parse(readFileSync(join(outdir, 'ConsumerStack.template.json'), 'utf8')) as Template;
    const resources = Object.values(template.Resources);
    expect(resources.filter((resource) => resource.Type === 'AWS::SageMaker::Endpoint')).toHaveLength(1);
    expect(resources.some((resource) => resource.Type === 'AWS::ApiGateway::RestApi')).toBe(true);

    const assets = JSON.parse(readFileSync(join(outdir, 'ConsumerStack.assets.json'), 'utf8')) as AssetManifest;
    const functions = resources.filter((resource) => resource.Type === 'AWS::Lambda::Function');
    expect(functions.length).toBeGreaterThan(0);
    const shippedBundle = readFileSync(join(installed, 'assets', 'lambda', 'invoke', 'index.js'));
    const handlers = functions.filter((fn) => fn.Properties?.Handler === 'index.handler' && typeof fn.Properties?.Code?.S3Key === 'string');
    expect(handlers.length).toBeGreaterThan(0);
    const bundled = handlers.filter((fn) => {
      const hash = String(fn.Properties?.Code.S3Key).replace(/\.zip$/, '');
      const source = assets.files?.[hash]?.source;
      if (!source?.path) return false;
      const assetDir = join(outdir, source.path);
      const bundle = join(assetDir, 'index.js');
      return statSync(assetDir).isDirectory() && existsSync(bundle) && readFileSync(bundle).equals(shippedBundle);
    });
    // The inference function's code is the pre-built bundle the package ships, copied as is.
    expect(bundled.length).toBeGreaterThan(0);
  });
});
