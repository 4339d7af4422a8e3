// Starts a private moto_server (https://docs.getmoto.org) for a test file.
//
// Jest runs test files in parallel workers, so each file that needs AWS fakes starts its own server
// on a free port in beforeAll and stops it in afterAll:
//
//   let moto: MotoServer;
//   beforeAll(async () => { moto = await startMoto(); });
//   afterAll(async () => { await moto.stop(); });
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';

export interface MotoServer {
  /** Base URL for SDK clients, e.g. http://127.0.0.1:53127 */
  readonly endpoint: string;
  readonly port: number;
  /** Stops the server (and its process group). Idempotent. */
  stop(): Promise<void>;
  /** Clears every moto backend (POST /moto-api/reset). */
  reset(): Promise<void>;
  /** POSTs JSON to a moto path (e.g. a /moto-api/static/... configuration endpoint); returns the response text. */
  post(path: string, json: unknown): Promise<string>;
  /** The last lines moto_server printed: its tracebacks explain a 500. */
  log(): string;
}

export interface StartMotoOptions {
  /** How long to wait for the server to answer, in ms (default 20 000). */
  readonly timeoutMs?: number;
  /**
   * Run moto with what moto 5.2 lacks (test/support/moto_server_ext.py): SageMaker's UpdateEndpoint,
   * for workflows that deploy model versions, and DynamoDB's atomic conditional writes, for tests of
   * concurrent writers.
   */
  readonly extended?: boolean;
}

const READY_PATH = '/moto-api/';
const MOTO_BINARY = 'moto_server';

/** SDK v3 client configuration pointing at a moto server with moto's conventional fake credentials. */
export function sdkTestConfig(endpoint: string): {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
} {
  return {
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
}

/**
 * Makes moto answer Lambda Invoke without Docker, with these results in order (then with the request's own
 * payload): moto's "simple" Lambda backend, which needs no function to exist. Each result is sent as JSON;
 * with `startMoto({ extended: true })` one that is an `{ errorType, errorMessage }` object is a function
 * error, as Lambda reports a handler that threw (test/support/moto_server_ext.py). A reset empties the queue
 * but keeps the backend.
 */
export async function queueLambdaResults(
  moto: Pick<MotoServer, 'post'>,
  results: readonly unknown[],
  options: { region?: string; accountId?: string } = {},
): Promise<void> {
  await moto.post('/moto-api/config', { lambda: { use_docker: false } });
  await moto.post('/moto-api/static/lambda-simple/response', {
    account_id: options.accountId ?? '123456789012',
    region: options.region ?? 'us-east-1',
    results: results.map((result) => JSON.stringify(result)),
  });
}

/** One queued answer for moto's SageMaker runtime InvokeEndpoint. */
export interface SageMakerResult {
  readonly Body: string;
  readonly ContentType?: string;
  readonly InvokedProductionVariant?: string;
  readonly CustomAttributes?: string;
}

/**
 * Queues InvokeEndpoint answers in moto (POST /moto-api/static/sagemaker/endpoint-results).
 *
 * Moto semantics (5.2.x): the queue is shared by all endpoints of the account/region; each
 * InvokeEndpoint whose (endpoint, Accept, Body, X-Amzn-SageMaker-* headers) was not seen before
 * pops the next result, and the same request repeated returns the cached result rather than
 * popping. The inference id header is part of that key, so requests with distinct inference ids
 * always take a fresh result. With the queue empty moto answers Body "body", ContentType
 * "content_type", variant "invoked_production_variant".
 */
export async function queueSageMakerResults(
  moto: Pick<MotoServer, 'post'>,
  results: readonly SageMakerResult[],
  options: { region?: string; accountId?: string } = {},
): Promise<void> {
  await moto.post('/moto-api/static/sagemaker/endpoint-results', {
    account_id: options.accountId ?? '123456789012',
    region: options.region ?? 'us-east-1',
    results,
  });
}

/** Starts moto_server on 127.0.0.1 and a free port, and waits until it answers. */
export async function startMoto(options: StartMotoOptions = {}): Promise<MotoServer> {
  const binary = findOnPath(MOTO_BINARY);
  if (binary === undefined) {
    throw new Error(
      `${MOTO_BINARY} was not found on PATH; install moto with its server extra (pip install "moto[server]") to run these tests`,
    );
  }
  const timeoutMs = options.timeoutMs ?? 20_000;
  let lastError: unknown;
  // The port is free when probed but another process may grab it before moto binds: retry a few times.
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const port = await freePort();
    try {
      return await launch(binary, port, timeoutMs, options.extended ? [join(__dirname, 'moto_server_ext.py')] : []);
    } catch (error) {
      lastError = error;
      if (!(error instanceof PortInUseError)) {
        throw error;
      }
    }
  }
  throw lastError;
}

class PortInUseError extends Error {}

async function launch(binary: string, port: number, timeoutMs: number, extension: string[]): Promise<MotoServer> {
  const endpoint = `http://127.0.0.1:${port}`;
  // The extension runs moto's own server module under the Python that moto_server uses.
  const command = extension.length > 0 ? 'python3' : binary;
  const child = spawn(command, [...extension, '-H', '127.0.0.1', '-p', String(port)], {
    detached: true, // own process group, so stop() also reaps anything the pyenv shim forks
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  const output = tail(child, 40);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));

  // Safety net: never leave a moto_server behind if the worker exits without calling stop().
  const killOnExit = (): void => killGroup(child, 'SIGKILL');
  process.once('exit', killOnExit);

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const early = await Promise.race([spawnError, delay(100).then(() => undefined)]);
    if (early !== undefined) {
      process.removeListener('exit', killOnExit);
      throw new Error(`could not start ${binary}: ${early.message}`);
    }
    if (hasExited) {
      process.removeListener('exit', killOnExit);
      const log = output();
      if (/address already in use/i.test(log)) {
        throw new PortInUseError(`port ${port} is already in use`);
      }
      throw new Error(`${MOTO_BINARY} exited before it was ready:\n${log}`);
    }
    if (await answers(`${endpoint}${READY_PATH}`)) {
      break;
    }
    if (Date.now() > deadline) {
      killGroup(child, 'SIGKILL');
      process.removeListener('exit', killOnExit);
      throw new Error(`${MOTO_BINARY} did not answer on ${endpoint} within ${timeoutMs} ms:\n${output()}`);
    }
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      process.removeListener('exit', killOnExit);
      if (hasExited) {
        return;
      }
      killGroup(child, 'SIGTERM');
      const stopped = await Promise.race([exited.then(() => true), delay(3_000).then(() => false)]);
      if (!stopped) {
        killGroup(child, 'SIGKILL');
        await exited;
      }
    })();
    return stopping;
  };

  const post = async (path: string, json: unknown): Promise<string> => {
    const response = await fetch(`${endpoint}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(json),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new Error(`moto POST ${path} answered ${response.status}: ${text}`);
    }
    return text;
  };

  return {
    endpoint,
    port,
    stop,
    reset: async () => {
      await post('/moto-api/reset', {});
    },
    post,
    log: output,
  };
}

/** A port that was free a moment ago (bind port 0, read the port, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not determine a free port'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

function findOnPath(command: string): string | undefined {
  for (const directory of (process.env.PATH ?? '').split(delimiter)) {
    if (directory.length === 0) {
      continue;
    }
    const candidate = join(directory, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    await response.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** Keeps the last `lines` lines of the child's stdout and stderr (and keeps the pipes drained). */
function tail(child: ChildProcess, lines: number): () => string {
  const buffer: string[] = [];
  const collect = (chunk: Buffer): void => {
    buffer.push(...chunk.toString('utf8').split(/\r?\n/).filter((line) => line.length > 0));
    if (buffer.length > lines) {
      buffer.splice(0, buffer.length - lines);
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return () => buffer.join('\n');
}

/** An unref'd sleep, so a pending timer never keeps a Jest worker alive. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
