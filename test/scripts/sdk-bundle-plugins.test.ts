// scripts/sdk-bundle-plugins.mjs: the esbuild plugins that let the handler bundles drop the SDK schemas
// and manifest fields they never use. The plugins are an ES module, so they run in a child process
// (test/support/sdk-plugins-probe.mjs) that prints JSON.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../support/cli';

const run = promisify(execFile);
const PROBE = join(REPO_ROOT, 'test', 'support', 'sdk-plugins-probe.mjs');

async function probe<T>(command: string, ...args: string[]): Promise<T> {
  const { stdout } = await run(process.execPath, [PROBE, command, ...args], { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 });
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

describe('pruneErrorRegistrations', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'schema-errors-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const MODULE = [
    'import { Found, Missing, Throttled } from "../models/errors";',
    'const _s_registry = new TypeRegistry(_s);',
    'export var ServiceException$ = [-3, _s, "ServiceException", 0, [], []];',
    '_s_registry.registerError(ServiceException$, ServiceException);',
    'const n0_registry = new TypeRegistry(n0);',
    'export var Found$ = [-3, n0, "Found", { "error": "client" }, [], []];',
    'n0_registry.registerError(Found$, Found);',
    'export var Missing$ = [-3, n0, "Missing", { "error": "client" }, [], []];',
    'n0_registry.registerError(Missing$, Missing);',
    'export var Throttled$ = [-3, n0, "Throttled", { "error": "client" }, [], []];',
    'n0_registry.registerError(Throttled$, Throttled);',
    '',
  ].join('\n');
  const prune = async (source: string, keep: string[]) => {
    const file = join(dir, `schemas_${Math.random().toString(36).slice(2)}.js`);
    writeFileSync(file, source);
    return probe<{ code?: string; removed?: number; kept?: number; error?: string }>('prune', file, keep.join(','));
  };

  test('removes the registrations of errors not kept, keeping the base exception and the schemas themselves', async () => {
    const result = await prune(MODULE, ['Found', 'Throttled']);
    expect(result).toMatchObject({ removed: 1, kept: 3 });
    expect(result.code).toContain('_s_registry.registerError(ServiceException$, ServiceException);');
    expect(result.code).toContain('n0_registry.registerError(Found$, Found);');
    expect(result.code).toContain('n0_registry.registerError(Throttled$, Throttled);');
    expect(result.code).not.toContain('registerError(Missing$');
    // The schema stays for esbuild to drop when nothing reaches it.
    expect(result.code).toContain('export var Missing$ = ');
  });

  test('fails on a kept error the module does not register', async () => {
    await expect(prune(MODULE, ['Found', 'Gone'])).resolves.toEqual({ error: expect.stringMatching(/kept errors that the module does not register: Gone$/) });
  });

  test('fails on a registerError call it does not read', async () => {
    await expect(prune(`${MODULE}registry.registerError(Other$, Other);\n`, ['Found'])).resolves.toEqual({ error: expect.stringMatching(/1 registerError calls the error rewrite does not understand$/) });
    await expect(prune(`${MODULE}n0_registry.registerError(Other$, Found);\n`, ['Found'])).resolves.toEqual({ error: expect.stringMatching(/registers Found with the schema Other\$/) });
  });
});

describe('SdkUsage over the handlers', () => {
  type Usage = { clients: Record<string, { commands: string[]; kept: string[] }> };
  let usage: Usage;
  beforeAll(async () => {
    usage = await probe<Usage>('usage', REPO_ROOT, 'lambda,lib');
  });

  test('finds the commands the handlers import and the ones the clients run themselves', () => {
    expect(usage.clients['client-ssm'].commands).toEqual(['GetParameterCommand']);
    expect(usage.clients['client-s3'].commands).toEqual(expect.arrayContaining(['CreateSessionCommand', 'GetObjectCommand']));
    expect(usage.clients['client-dynamodb'].commands).toEqual(expect.arrayContaining(['DescribeEndpointsCommand', 'PutItemCommand']));
  });

  test('keeps every error botocore\'s model gives the operations the handlers call, and the retryable ones', async () => {
    const operations = Object.entries(usage.clients)
      .filter(([, { commands }]) => commands.length > 0)
      .map(([client, { commands }]) => ({ service: client.replace(/^client-/, ''), client, operations: commands.map((command) => command.replace(/Command$/, '')) }));
    const script = [
      'import json, sys, botocore.session',
      's = botocore.session.get_session()',
      'out = {}',
      'for item in json.load(sys.stdin):',
      '    model = s.get_service_model(item["service"])',
      '    out[item["client"]] = sorted({e.name for op in item["operations"] if op in model.operation_names for e in model.operation_model(op).error_shapes})',
      'print(json.dumps(out))',
    ].join('\n');
    const child = execFile('python3', ['-c', script]);
    child.stdin!.end(JSON.stringify(operations));
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    await new Promise((resolve, reject) => child.on('close', (code) => (code === 0 ? resolve(undefined) : reject(new Error(`python3 exited ${code}`)))));
    const modelled = JSON.parse(stdout) as Record<string, string[]>;
    expect(modelled['client-ssm']).toEqual(expect.arrayContaining(['ParameterNotFound']));
    for (const [client, errors] of Object.entries(modelled)) {
      const classes = readFileSync(join(clientDir(client), 'dist-es', 'models', 'errors.js'), 'utf8');
      const inSdk = errors.filter((name) => classes.includes(`export class ${name} extends`));
      expect({ client, missing: inSdk.filter((name) => !usage.clients[client].kept.includes(name)) }).toEqual({ client, missing: [] });
    }
    // DynamoDB's one error with a retry trait stays although no operation the handlers call declares it.
    expect(usage.clients['client-dynamodb'].kept).toContain('ReplicatedWriteConflictException');
  });
});

describe('the SDK plugins on a handler of their own', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'sdk-plugins-fixture-'));
    mkdirSync(join(root, 'lambda'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const GET_PARAMETER = [
    "import { GetParameterCommand, SSMClient, SSMServiceException, ParameterNotFound } from '@aws-sdk/client-ssm';",
    'export async function main(endpoint) {',
    "  const ssm = new SSMClient({ endpoint, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });",
    '  const outcomes = [];',
    "  for (const name of ['/missing', '/limited']) {",
    '    try {',
    '      await ssm.send(new GetParameterCommand({ Name: name }));',
    "      outcomes.push({ name, ok: true });",
    '    } catch (error) {',
    '      outcomes.push({ name, error: error.name, message: error.message, fault: error.$fault, status: error.$metadata?.httpStatusCode, base: error instanceof SSMServiceException, notFound: error instanceof ParameterNotFound, reasonCode: error.ReasonCode });',
    '    }',
    '  }',
    '  return outcomes;',
    '}',
    '',
  ].join('\n');

  const buildFixture = async (source: string, endpoint?: string) => {
    writeFileSync(join(root, 'lambda', 'index.ts'), source);
    const { stdout } = await run(process.execPath, [PROBE, 'build', root, 'lambda/index.ts', ...(endpoint === undefined ? [] : [endpoint])], { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 });
    return JSON.parse(stdout) as { bytes?: number; text?: string; result?: unknown; error?: string };
  };

  test('a bundle holds the errors its operations declare and the ones it names, not the rest of the service\'s', async () => {
    const built = await buildFixture(GET_PARAMETER);
    expect(built.error).toBeUndefined();
    expect(built.text).toContain('"ParameterVersionNotFound"');
    expect(built.text).toContain('"ParameterNotFound"');
    for (const other of ['HierarchyLevelLimitExceededException', 'AutomationExecutionNotFoundException', 'OpsItemNotFoundException']) expect(built.text).not.toContain(other);
  });

  /** Runs the bundle's main() against a stand-in SSM: `/missing` is ParameterNotFound, anything else HierarchyLevelLimitExceededException. */
  const runAgainstStandIn = async (source: string) => {
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const { Name } = JSON.parse(body) as { Name: string };
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'r' });
        res.end(
          JSON.stringify(
            Name === '/missing'
              ? { __type: 'ParameterNotFound', message: 'no such parameter' }
              : { __type: 'com.amazonaws.ssm#HierarchyLevelLimitExceededException', message: 'too deep', ReasonCode: 'LEVELS' },
          ),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      return await buildFixture(source, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  };

  test('an error the registry no longer holds arrives as the client\'s ServiceException, with its name, message, fault, status and fields', async () => {
    const built = await runAgainstStandIn(GET_PARAMETER);
    expect(built.error).toBeUndefined();
    expect(built.result).toEqual([
      { name: '/missing', error: 'ParameterNotFound', message: 'no such parameter', fault: 'client', status: 400, base: true, notFound: true },
      { name: '/limited', error: 'HierarchyLevelLimitExceededException', message: 'too deep', fault: 'client', status: 400, base: true, notFound: false, reasonCode: 'LEVELS' },
    ]);
  });

  test('an error a handler imports by name stays registered, so instanceof holds', async () => {
    const source = GET_PARAMETER.replace('ParameterNotFound }', 'ParameterNotFound, HierarchyLevelLimitExceededException }').replace(
      'reasonCode: error.ReasonCode',
      'reasonCode: error.ReasonCode, limit: error instanceof HierarchyLevelLimitExceededException',
    );
    const built = await runAgainstStandIn(source);
    expect(built.error).toBeUndefined();
    expect(built.result).toEqual([
      expect.objectContaining({ name: '/missing', notFound: true, limit: false }),
      expect.objectContaining({ name: '/limited', error: 'HierarchyLevelLimitExceededException', base: true, limit: true }),
    ]);
  });

  test('a namespace import of a client fails the build: its errors could not be chosen', async () => {
    const built = await buildFixture("import * as ssm from '@aws-sdk/client-ssm';\nexport const main = () => new ssm.SSMClient({});\n");
    expect(built.error).toMatch(/lambda\/index\.ts: `import \* as ssm from '@aws-sdk\/client-ssm'`: import the names used from client-ssm/);
  });

  test('a command the scan did not see fails the build, naming it', async () => {
    // A deep import, which the scan does not read as an import of client-ssm.
    const built = await buildFixture(`${GET_PARAMETER}export { PutParameterCommand } from '@aws-sdk/client-ssm/dist-es/commands/PutParameterCommand';\n`);
    expect(built.error).toMatch(/SDK error registries: client-ssm PutParameterCommand is bundled, but no scanned source imports it by name/);
  });

  test('a source file outside the scanned directories fails the build, naming it', async () => {
    mkdirSync(join(root, 'elsewhere'));
    writeFileSync(join(root, 'elsewhere', 'helper.ts'), 'export const helper = () => 1;\n');
    const built = await buildFixture(`${GET_PARAMETER}export { helper } from '../elsewhere/helper';\n`);
    expect(built.error).toMatch(/elsewhere\/helper\.ts is bundled, but is outside the directories scanned for SDK imports \(lambda, /);
  });

  test('a bundle that needs the event-stream serde fails the build, naming the schema', async () => {
    const built = await buildFixture(
      "import { InvokeEndpointWithResponseStreamCommand, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';\nexport const main = () => new SageMakerRuntimeClient({}).send(new InvokeEndpointWithResponseStreamCommand({ EndpointName: 'e', Body: new Uint8Array() }));\n",
    );
    expect(built.error).toMatch(/event streams are stubbed out of the bundles, but out\/index\.js holds the event-stream schema ResponseStream/);
  });

  test('without event-stream operations, the serde is not in the bundle', async () => {
    const built = await buildFixture(GET_PARAMETER);
    expect(built.text).not.toContain('initial-response event encountered in event stream');
    expect(built.text).toContain('@smithy/core/event-streams is not bundled in this handler');
  });
});
