// scripts/sdk-bundle-plugins.mjs: the esbuild plugins that let the handler bundles drop the SDK schemas
// and manifest fields they never use. The plugins are an ES module, so they run in a child process
// (test/support/sdk-plugins-probe.mjs) that prints JSON.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../support/cli';

const run = promisify(execFile);
const PROBE = join(REPO_ROOT, 'test', 'support', 'sdk-plugins-probe.mjs');

async function probe<T>(command: string, target: string): Promise<T> {
  const { stdout } = await run(process.execPath, [PROBE, command, target], { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout) as T;
}

/** The SDK clients the handlers import, read from lambda/ so that a new client is covered without editing this test. */
function clientsImportedByHandlers(): string[] {
  const clients = new Set<string>();
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.name.endsWith('.ts')) {
        for (const [, client] of readFileSync(path, 'utf8').matchAll(/from '@aws-sdk\/(client-[a-z0-9-]+)'/g)) clients.add(client);
      }
    }
  };
  visit(join(REPO_ROOT, 'lambda'));
  return [...clients].sort();
}

const CLIENTS = clientsImportedByHandlers();
const clientDir = (client: string): string => join(REPO_ROOT, 'node_modules', '@aws-sdk', client);

describe('inlineSchemaKeys', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'schema-keys-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const inline = async (source: string) => {
    const file = join(dir, `schemas_${Math.random().toString(36).slice(2)}.js`);
    writeFileSync(file, source);
    return probe<{ code?: string; rewritten?: number; error?: string }>('inline', file);
  };

  test('writes computed keys that name a string constant of the module as literal keys, and nothing else', async () => {
    const result = await inline(
      [
        'const _h = "http";',
        'const _e = "error";',
        'const _c = "client";',
        'export var A$ = [-3, "ns", "A", { [_e]: _c, [_h]: 403 }, [], []];',
        'export var B$ = [9, "ns", "B", {',
        '    [_h]: ["GET", "/", 200] }, () => A$];',
        'export var C$ = [_h, { h: _e }];',
      ].join('\n'),
    );
    expect(result.error).toBeUndefined();
    expect(result.rewritten).toBe(3);
    expect(result.code).toContain('{ "error": _c, "http": 403 }');
    expect(result.code).toContain('{\n    "http": ["GET", "/", 200] }');
    // Values and array elements that name the constants are left alone.
    expect(result.code).toContain('export var C$ = [_h, { h: _e }];');
  });

  test('fails, naming the file and the key, on a computed key that is not a string constant of the module', async () => {
    const result = await inline('const _h = "http";\nconst n = 3;\nexport var A$ = [{ [_h]: 1, [n]: 2, [_missing]: 3 }];\n');
    expect(result.error).toMatch(/schemas_\w+\.js: computed keys that are not string constants of the module: _missing, n$/);
  });

  test('fails on a computed key it cannot read', async () => {
    const result = await inline('const _h = "http";\nexport var A$ = [{ [_h + "x"]: 1 }];\n');
    expect(result.error).toMatch(/a computed key the schema rewrite does not understand: \{ \[_h \+ "x"\]:/);
  });

  test.each(CLIENTS)('%s: the rewritten schema module exports exactly what the original does', async (client) => {
    const schemaDir = join(clientDir(client), 'dist-es', 'schemas');
    const files = readdirSync(schemaDir).filter((name) => /^schemas_\d+\.js$/.test(name));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const { original, rewritten, error } = await probe<{ original: Record<string, unknown>; rewritten: Record<string, unknown>; error?: string }>('schemas', join(schemaDir, file));
      expect(error).toBeUndefined();
      // Operations, structures and errors, with their traits (objects the rewrite built) read back through the thunks.
      expect(Object.keys(original).length).toBeGreaterThan(10);
      expect({ file, errorTrait: /"error":"(client|server)"/.test(JSON.stringify(original)) }).toEqual({ file, errorTrait: true });
      expect(rewritten).toEqual(original);
    }
  });
});

describe('the shipped bundles', () => {
  const bundle = (name: string): string => readFileSync(join(REPO_ROOT, 'assets', 'lambda', name, 'index.js'), 'utf8');

  test('hold only the S3 schemas that GetObject reaches', () => {
    const detectDrift = bundle('detect-drift');
    expect(detectDrift).toContain('GetObject');
    for (const unused of ['PutBucketAnalyticsConfiguration', 'AnalyticsConfiguration', 'SelectObjectContentRequest', 'WriteGetObjectResponse']) {
      expect(detectDrift).not.toContain(unused);
    }
  });

  test('hold each SDK client\'s version for the user agent, and none of the rest of its package.json', () => {
    const invoke = bundle('invoke');
    for (const client of ['client-ssm', 'client-dynamodb', 'client-sagemaker-runtime']) {
      const { version } = JSON.parse(readFileSync(join(clientDir(client), 'package.json'), 'utf8')) as { version: string };
      expect(invoke).toContain(`"@aws-sdk/${client}",version:"${version}"`);
    }
    for (const name of readdirSync(join(REPO_ROOT, 'assets', 'lambda')).filter((name) => !['ingest-documents', 'knn-index', 'rag-query'].includes(name))) {
      expect({ name, typesVersions: bundle(name).includes('typesVersions'), devDependencies: bundle(name).includes('devDependencies') }).toEqual({ name, typesVersions: false, devDependencies: false });
    }
  });
});

describe('manifestFieldsRead', () => {
  test.each(CLIENTS)('%s reads only the version from its package.json', async (client) => {
    await expect(probe('manifest', clientDir(client))).resolves.toEqual({ fields: ['version'] });
  });

  describe('a client that reads more', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'client-manifest-'));
      mkdirSync(join(dir, 'dist-es'));
      writeFileSync(join(dir, 'package.json'), '{"name":"@aws-sdk/client-x","version":"1.0.0"}');
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    test('fails, naming the field', async () => {
      writeFileSync(join(dir, 'dist-es', 'runtimeConfig.js'), 'import packageInfo from "../package.json";\nexport const a = packageInfo.version + packageInfo.homepage;\n');
      await expect(probe('manifest', dir)).resolves.toEqual({ error: `${dir}: reads package.json fields homepage besides version` });
    });

    test('fails when the manifest is used as a whole', async () => {
      writeFileSync(join(dir, 'dist-es', 'runtimeConfig.js'), 'import packageInfo from "../package.json";\nexport const a = Object.keys(packageInfo);\n');
      await expect(probe('manifest', dir)).resolves.toEqual({ error: expect.stringMatching(/runtimeConfig\.js: uses packageInfo as a whole/) });
    });

    test('fails on an import of it that it cannot read', async () => {
      writeFileSync(join(dir, 'dist-es', 'runtimeConfig.js'), 'import { version } from "../package.json";\nexport const a = version;\n');
      await expect(probe('manifest', dir)).resolves.toEqual({ error: expect.stringMatching(/runtimeConfig\.js: reads package\.json in a way the version rewrite does not understand/) });
    });
  });
});
