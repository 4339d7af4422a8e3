// Test helper: run a Lambda handler from lambda/ in-process, the way the tests under test/lambda do.
//
//   const setEnv = useHandlerEnv(['AWS_ENDPOINT_URL_DYNAMODB', 'PREDICTION_LOG_TABLE'], { PREDICTION_LOG_TABLE: 'log' });
//   const { source } = handlerModulePaths('record-outcome');
//
//   beforeAll(() => {
//     setEnv({ AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint });
//     handler = loadFreshHandler<ApiHandler>(source);
//   });
//
//   const { response, body, lines } = await invokeApi(handler, apiGatewayEvent(route, { some: 'body' }));
//   expect(emfDocuments(lines)).toHaveLength(1);
//
// What a handler reads from its environment, which SDK endpoint it talks to and what it prints are the
// things these tests assert, so this module owns the environment (set per describe, restored after the
// file), fresh module loading (one handler module per configuration) and the capture of the JSON lines
// Powertools prints (structured logs and CloudWatch EMF documents). Routes, tables and fake servers
// stay in the test files.
import { join } from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { REPO_ROOT } from './cli';

/** An API Gateway (REST, proxy integration) handler, as lambda/invoke and lambda/record-outcome export. */
export type ApiHandler = (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;

/** One JSON line a handler printed: a structured log entry or an EMF document. */
export type LogLine = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------------

/**
 * The AWS SDK variables every handler test controls: cleared before each `setEnv`, so credentials,
 * profiles and endpoints of the machine running the tests never reach a handler.
 */
export const SDK_ENV_KEYS = [
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
  'AWS_ENDPOINT_URL',
  'AWS_MAX_ATTEMPTS',
  'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED',
] as const;

export type SdkEnvKey = (typeof SDK_ENV_KEYS)[number];

/**
 * The Powertools variables of a handler that logs and publishes EMF metrics (lambda/invoke,
 * lambda/record-outcome): the service name and namespace the tests assert, and the switches that
 * would pretty-print the logs or drop the metrics if the machine running the tests set them.
 */
export const POWERTOOLS_METRICS_ENV_KEYS = ['POWERTOOLS_METRICS_NAMESPACE', 'POWERTOOLS_SERVICE_NAME', 'POWERTOOLS_DEV', 'POWERTOOLS_METRICS_DISABLED'] as const;

/** What every `setEnv` starts from: moto's fake credentials, one region, and no SDK retries. */
export const SDK_TEST_ENV: Readonly<Partial<Record<SdkEnvKey, string>>> = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_MAX_ATTEMPTS: '1',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

/** Values for the managed variables: the SDK ones and the handler's own. */
export type HandlerEnv<K extends string> = Partial<Record<SdkEnvKey | K, string>>;

/**
 * Takes charge of a handler's environment for the rest of the test file.
 *
 * Call it once at the top level of a test file. It snapshots `SDK_ENV_KEYS` and `handlerKeys` now and
 * registers an `afterAll` that puts them back as they were (unset ones are deleted again). It returns
 * `setEnv(overrides)`, which clears every managed variable and then sets `SDK_TEST_ENV`, `defaults`
 * and `overrides`, later ones winning. The SDK reads some of the environment lazily, so call `setEnv`
 * in a `beforeAll` and leave it set while that describe runs; load the handler after it.
 */
export function useHandlerEnv<const K extends string>(
  handlerKeys: readonly K[],
  defaults: HandlerEnv<K>,
): (overrides: HandlerEnv<K>) => void {
  const keys: readonly string[] = [...SDK_ENV_KEYS, ...handlerKeys];
  const saved = new Map(keys.map((key) => [key, process.env[key]]));

  afterAll(() => {
    for (const [key, value] of saved) {
      if (value === undefined) {
        delete process.env[key];
      } else {
        process.env[key] = value;
      }
    }
  });

  return (overrides) => {
    for (const key of keys) {
      delete process.env[key];
    }
    Object.assign(process.env, { ...SDK_TEST_ENV, ...defaults, ...overrides });
  };
}

// ---------------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------------

/** Where a handler's source (run through swc by Jest) and its esbuild bundle (scripts/build-lambdas.mjs) live. */
export function handlerModulePaths(name: string): { readonly source: string; readonly bundle: string } {
  return {
    source: join(REPO_ROOT, 'lambda', name, 'index.ts'),
    bundle: join(REPO_ROOT, 'assets', 'lambda', name, 'index.js'),
  };
}

/**
 * Loads a fresh copy of the handler module at `path` (with jest.isolateModules) and returns its
 * `handler` export. Module-scope state (SDK clients, logger, metrics, parsed configuration) is built
 * again from the current environment, so call it after `setEnv`.
 */
export function loadFreshHandler<H>(path: string): H {
  let loaded: { handler: H } | undefined;
  jest.isolateModules(() => {
    loaded = require(path) as { handler: H };
  });
  if (loaded === undefined) {
    throw new Error(`could not load ${path}`);
  }
  return loaded.handler;
}

// ---------------------------------------------------------------------------------------------------
// Invoking and reading what was printed
// ---------------------------------------------------------------------------------------------------

/** What `captureOutput` gives back: fn's result and every JSON line printed while it ran. */
export interface CapturedOutput<T> {
  readonly result: T;
  /** Every line printed to stdout or stderr that starts with `{`, parsed. */
  readonly lines: LogLine[];
}

/**
 * Runs fn with stdout and stderr captured (nothing reaches the terminal) and parses the JSON lines it
 * printed. If fn throws, the streams are restored and the error propagates. Concurrent calls would
 * interleave their output; use `quietly` for those.
 */
export async function captureOutput<T>(fn: () => Promise<T>): Promise<CapturedOutput<T>> {
  const printed: string[] = [];
  const capture = ((chunk: string | Uint8Array) => {
    printed.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof process.stdout.write;
  const stdout = jest.spyOn(process.stdout, 'write').mockImplementation(capture);
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(capture);
  let result: T;
  try {
    result = await fn();
  } finally {
    stdout.mockRestore();
    stderr.mockRestore();
  }
  const lines = printed
    .join('')
    .split('\n')
    .filter((line) => line.trim().startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
  return { result, lines };
}

/** Runs fn with stdout/stderr silenced: for concurrent calls, whose per-call captures would interleave. */
export async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const stdout = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    return await fn();
  } finally {
    stdout.mockRestore();
    stderr.mockRestore();
  }
}

/** One call of an API handler: the response, its parsed JSON body and what the handler printed. */
export interface ApiInvocation {
  readonly response: APIGatewayProxyResult;
  readonly body: Record<string, unknown>;
  /** Every JSON line the handler printed (structured logs and EMF documents). */
  readonly lines: LogLine[];
}

/**
 * Invokes an API handler with its output captured, asserts that the response is JSON
 * (`content-type: application/json`) and parses its body.
 */
export async function invokeApi(handler: ApiHandler, event: APIGatewayProxyEvent): Promise<ApiInvocation> {
  const { result: response, lines } = await captureOutput(() => handler(event));
  expect(response.headers).toMatchObject({ 'content-type': 'application/json' });
  return { response, body: JSON.parse(response.body) as Record<string, unknown>, lines };
}

/** The CloudWatch embedded-metric-format documents among the printed lines. */
export function emfDocuments(lines: readonly LogLine[]): LogLine[] {
  return lines.filter((line) => typeof line._aws === 'object' && line._aws !== null);
}

/** The structured log entries among the printed lines, optionally only those of one level (`INFO`, `WARN`, `ERROR`, ...). */
export function logEntries(lines: readonly LogLine[], level?: string): LogLine[] {
  return lines.filter((line) => typeof line.message === 'string' && (level === undefined || line.level === level));
}

// ---------------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------------

/** The route an API Gateway event was matched to. */
export interface ApiRoute {
  readonly httpMethod: string;
  /** The resource template, e.g. `/models/{model}/predict`; `path` is it with the path parameters filled in. */
  readonly resource: string;
  /** `null` as API Gateway sends it when there are none; a parameter missing here leaves its segment empty. */
  readonly pathParameters: Record<string, string> | null;
}

export interface JsonBodyOptions {
  /** Send `body` as it is (a string) instead of JSON-encoding it: for malformed JSON. */
  readonly raw?: boolean;
  /** Base64-encode the body and set `isBase64Encoded`. */
  readonly base64?: boolean;
}

/**
 * An API Gateway proxy event for a JSON request (`content-type: application/json`) on `route`.
 * `body` is JSON-encoded unless `options.raw`; `undefined` sends no body at all (`body: null`).
 */
export function apiGatewayEvent(route: ApiRoute, body: unknown, options: JsonBodyOptions = {}): APIGatewayProxyEvent {
  const text = body === undefined ? null : options.raw === true ? (body as string) : JSON.stringify(body);
  return {
    resource: route.resource,
    path: route.resource.replace(/\{([^}]+)\}/g, (_, name: string) => route.pathParameters?.[name] ?? ''),
    httpMethod: route.httpMethod,
    headers: { 'content-type': 'application/json' },
    multiValueHeaders: { 'content-type': ['application/json'] },
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: route.pathParameters,
    stageVariables: null,
    requestContext: { requestId: 'test-request' } as APIGatewayProxyEvent['requestContext'],
    body: text !== null && options.base64 === true ? Buffer.from(text).toString('base64') : text,
    isBase64Encoded: options.base64 === true,
  };
}
