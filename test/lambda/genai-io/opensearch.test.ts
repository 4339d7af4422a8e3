// The signed OpenSearch HTTP client of the RAG handlers (lambda/genai-io/opensearch.ts), against a local
// HTTP server: what goes over the wire, that its SigV4 signature verifies, how answers become errors,
// and the retries and timeouts.
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity } from '@smithy/types';
import fc from 'fast-check';
import {
  OpenSearch,
  openSearchClient,
  OpenSearchConnectionError,
  OpenSearchResponseError,
  openSearchStatus,
  OpenSearchTimeoutError,
  SignedOpenSearchHttp,
  type SignedOpenSearchHttpOptions,
} from '../../../lambda/genai-io/opensearch';
import { classifyServiceError } from '../../../lambda/shared/retrieval';

const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'session-token-1' };
const REGION = 'eu-west-1';

interface Received {
  readonly method: string;
  /** The request target as sent: path and query string, still encoded. */
  readonly url: string;
  readonly path: string;
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

type Answer = { readonly status: number; readonly body?: unknown } | 'hang';

interface TestServer {
  readonly endpoint: string;
  readonly received: Received[];
  answer: (request: Received, attempt: number) => Answer;
  stop(): Promise<void>;
}

const servers: Server[] = [];

/** An HTTP server on 127.0.0.1 that records each request and answers with `answer` (JSON), or never ('hang'). */
async function startServer(answer: TestServer['answer'] = () => ({ status: 200, body: {} })): Promise<TestServer> {
  const received: Received[] = [];
  const state: TestServer = {
    endpoint: '',
    received,
    answer,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = req.url ?? '/';
      const [path, query = ''] = url.split('?');
      const request = { method: req.method ?? '', url, path, query, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      received.push(request);
      const outcome = state.answer(request, received.length);
      if (outcome === 'hang') return;
      const text = outcome.body === undefined ? '' : JSON.stringify(outcome.body);
      res.writeHead(outcome.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(req.method === 'HEAD' ? undefined : text);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(state, { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

afterAll(async () => {
  await Promise.all(servers.filter((server) => server.listening).map((server) => new Promise((resolve) => (server.closeAllConnections(), server.close(resolve)))));
});

function client(server: { endpoint: string }, options: Partial<SignedOpenSearchHttpOptions> = {}): OpenSearch {
  return new OpenSearch(new SignedOpenSearchHttp({ endpoint: server.endpoint, region: REGION, credentials: CREDENTIALS, retryDelayMs: 1, ...options }));
}

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to fail');
}

/**
 * The Authorization header SigV4 gives the request as the server received it: the headers it names as
 * signed, the method, path, query and body, at the time of its x-amz-date, signed again with the test credentials.
 */
async function expectedAuthorization(request: Received, credentials: AwsCredentialIdentity = CREDENTIALS, region = REGION): Promise<string> {
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(String(request.headers.authorization))?.[1].split(';') ?? [];
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) headers[name] = String(request.headers[name]);
  const query: Record<string, string> = {};
  for (const pair of request.query.split('&').filter((part) => part !== '')) {
    const [key, value = ''] = pair.split('=');
    query[decodeURIComponent(key)] = decodeURIComponent(value);
  }
  const date = String(request.headers['x-amz-date']);
  const signingDate = new Date(`${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 11)}:${date.slice(11, 13)}:${date.slice(13)}`);
  const signer = new SignatureV4({ service: 'es', region, credentials, sha256: Sha256 });
  const signed = await signer.sign(
    { method: request.method, protocol: 'http:', hostname: '127.0.0.1', path: request.path, query, headers, body: request.body === '' ? undefined : request.body },
    { signingDate },
  );
  return signed.headers.authorization;
}

/**
 * One stand-in for the describe block it is called in: started before its tests, stopped after them, its
 * record of requests cleared before each (and its answer reset to `answer`, when given).
 */
function useServer(answer?: Parameters<typeof startServer>[0]): () => TestServer {
  let server: TestServer | undefined;
  beforeAll(async () => {
    server = await startServer(answer);
  });
  afterAll(() => server?.stop());
  beforeEach(() => {
    server!.received.length = 0;
    if (answer !== undefined) server!.answer = answer;
  });
  return () => server!;
}

describe('request shape', () => {
  const current = useServer(() => ({ status: 200, body: {} }));
  let server: TestServer;
  beforeEach(() => {
    server = current();
  });

  test('a search is a JSON POST to the index _search path, and resolves to the parsed answer', async () => {
    const hits = [{ _id: 'd:0', _score: 0.9, _source: { text: 'Passage.' } }];
    server.answer = () => ({ status: 200, body: { hits: { hits } } });
    const response = await client(server).search('docs', { size: 2, query: { match: { text: { query: 'leave' } } } });
    expect(response).toEqual({ hits: { hits } });
    const [request] = server.received;
    expect(request).toMatchObject({ method: 'POST', path: '/docs/_search', query: '' });
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers['content-length']).toBe(String(Buffer.byteLength(request.body)));
    expect(JSON.parse(request.body)).toEqual({ size: 2, query: { match: { text: { query: 'leave' } } } });
  });

  test('a delete by query is a POST with conflicts and refresh in the query string, and resolves to the deleted count', async () => {
    server.answer = () => ({ status: 200, body: { deleted: 3 } });
    const response = await client(server).deleteByQuery('docs', { query: { term: { document_id: 'd' } } }, { conflicts: 'proceed', refresh: true });
    expect(response.deleted).toBe(3);
    expect(server.received[0]).toMatchObject({ method: 'POST', path: '/docs/_delete_by_query', query: 'conflicts=proceed&refresh=true' });
    expect(JSON.parse(server.received[0].body)).toEqual({ query: { term: { document_id: 'd' } } });
  });

  test('a bulk request is NDJSON, one action or document a line with a final newline, and its item errors are returned, not thrown', async () => {
    const items = [{ index: { status: 429, error: { type: 'es_rejected_execution_exception', reason: 'queue full' } } }];
    server.answer = () => ({ status: 200, body: { took: 1, errors: true, items } });
    const lines = [{ index: { _index: 'docs', _id: 'd:0' } }, { text: 'line one\nstill one', chunk_index: 0 }];
    const response = await client(server).bulk(lines);
    expect(response).toEqual({ took: 1, errors: true, items });
    const [request] = server.received;
    expect(request).toMatchObject({ method: 'POST', path: '/_bulk', query: '' });
    expect(request.headers['content-type']).toBe('application/x-ndjson');
    expect(request.body).toBe(`${JSON.stringify(lines[0])}\n${JSON.stringify(lines[1])}\n`);
  });

  test('index existence is a HEAD without a body: 200 is true and 404 is false', async () => {
    server.answer = (request) => ({ status: request.path === '/docs' ? 200 : 404 });
    await expect(client(server).indexExists('docs')).resolves.toBe(true);
    await expect(client(server).indexExists('missing')).resolves.toBe(false);
    expect(server.received.map((request) => `${request.method} ${request.path}`)).toEqual(['HEAD /docs', 'HEAD /missing']);
    expect(server.received[0].body).toBe('');
    expect(server.received[0].headers['content-type']).toBeUndefined();
  });

  test('index, mapping and security API calls use the methods and paths of the OpenSearch REST API', async () => {
    server.answer = (request) => (request.method === 'GET' ? { status: 200, body: { docs: { mappings: { properties: { text: { type: 'text' } } } } } } : { status: 200, body: { acknowledged: true } });
    const openSearch = client(server);
    await openSearch.createIndex('docs', { settings: { index: { knn: true } } });
    await expect(openSearch.getMapping('docs')).resolves.toEqual({ properties: { text: { type: 'text' } } });
    await openSearch.putMapping('docs', { properties: { title: { type: 'text' } } });
    await openSearch.put('/_plugins/_security/api/roles/docs-reader', { index_permissions: [] });
    await openSearch.delete('/_plugins/_security/api/rolesmapping/docs-reader');
    await openSearch.deleteIndex('docs');
    expect(server.received.map((request) => `${request.method} ${request.path}${request.body === '' ? '' : ` ${request.body}`}`)).toEqual([
      'PUT /docs {"settings":{"index":{"knn":true}}}',
      'GET /docs/_mapping',
      'PUT /docs/_mapping {"properties":{"title":{"type":"text"}}}',
      'PUT /_plugins/_security/api/roles/docs-reader {"index_permissions":[]}',
      'DELETE /_plugins/_security/api/rolesmapping/docs-reader',
      'DELETE /docs',
    ]);
  });
});

describe('SigV4 signing', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer(() => ({ status: 200, body: { deleted: 0 } }));
  });
  afterAll(() => server.stop());
  beforeEach(() => {
    server.received.length = 0;
  });

  test('every request carries a SigV4 signature for service es over its host, body hash, query and session token that verifies against the request received', async () => {
    const openSearch = client(server);
    await openSearch.deleteByQuery('docs', { query: { match_all: {} } }, { conflicts: 'proceed', refresh: true });
    await openSearch.indexExists('docs');
    expect(server.received).toHaveLength(2);
    for (const request of server.received) {
      const authorization = String(request.headers.authorization);
      expect(authorization).toMatch(new RegExp(`^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\\d{8}/${REGION}/es/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$`));
      const signed = /SignedHeaders=([^,]+)/.exec(authorization)![1].split(';');
      expect(signed).toEqual(expect.arrayContaining(['host', 'x-amz-content-sha256', 'x-amz-date', 'x-amz-security-token']));
      expect(request.headers.host).toBe(new URL(server.endpoint).host);
      expect(request.headers['x-amz-security-token']).toBe(CREDENTIALS.sessionToken);
      expect(request.headers['x-amz-content-sha256']).toBe(createHash('sha256').update(request.body).digest('hex'));
      expect(authorization).toBe(await expectedAuthorization(request));
    }
  });

  test('the signature covers the body: the same request with another body does not verify', async () => {
    await client(server).search('docs', { query: { match: { text: 'a' } } });
    const [request] = server.received;
    expect(await expectedAuthorization(request)).toBe(request.headers.authorization);
    const tampered = { ...request, body: request.body.replace('"a"', '"b"'), headers: { ...request.headers, 'x-amz-content-sha256': createHash('sha256').update(request.body.replace('"a"', '"b"')).digest('hex') } };
    expect(await expectedAuthorization(tampered)).not.toBe(request.headers.authorization);
    expect(await expectedAuthorization(request, { ...CREDENTIALS, secretAccessKey: 'another-secret' })).not.toBe(request.headers.authorization);
  });

  test('query values and bodies of any characters arrive as sent, under a signature that verifies', async () => {
    const openSearch = new SignedOpenSearchHttp({ endpoint: server.endpoint, region: REGION, credentials: CREDENTIALS });
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.stringMatching(/^[a-z_]{1,8}$/), fc.string({ unit: 'grapheme', maxLength: 12 }), { maxKeys: 3 }), fc.jsonValue(), async (query, body) => {
        server.received.length = 0;
        await openSearch.request({ method: 'POST', path: '/docs/_search', query, body: { value: body } });
        const [request] = server.received;
        expect(Object.fromEntries(new URLSearchParams(request.query))).toEqual(query);
        expect(JSON.parse(request.body)).toEqual(JSON.parse(JSON.stringify({ value: body })));
        expect(request.headers.authorization).toBe(await expectedAuthorization(request));
      }),
      { numRuns: 40 },
    );
  });

  test('openSearchClient signs with the credentials and region of the environment, and keeps one client per endpoint', async () => {
    const keys = ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE'] as const;
    const saved = keys.map((key) => [key, process.env[key]] as const);
    for (const key of keys) delete process.env[key];
    Object.assign(process.env, { AWS_REGION: 'ap-southeast-2', AWS_ACCESS_KEY_ID: 'AKIDENV', AWS_SECRET_ACCESS_KEY: 'env-secret' });
    try {
      const openSearch = openSearchClient(server.endpoint);
      expect(openSearchClient(server.endpoint)).toBe(openSearch);
      await openSearch.indexExists('docs');
      const [request] = server.received;
      expect(request.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDENV\/\d{8}\/ap-southeast-2\/es\/aws4_request/);
      expect(request.headers.authorization).toBe(await expectedAuthorization(request, { accessKeyId: 'AKIDENV', secretAccessKey: 'env-secret' }, 'ap-southeast-2'));
    } finally {
      for (const [key, value] of saved) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });
});

describe('error answers', () => {
  const current = useServer();
  let server: TestServer;
  beforeEach(() => {
    server = current();
  });

  test('a 404 becomes a ResponseError with statusCode 404, the body in meta, and the OpenSearch error type and reason in its message', async () => {
    const body = { error: { root_cause: [{ type: 'index_not_found_exception', reason: 'no such index [docs]' }], type: 'index_not_found_exception', reason: 'no such index [docs]' }, status: 404 };
    server.answer = () => ({ status: 404, body });
    const error = await rejection(client(server).search('docs', {}));
    expect(error).toBeInstanceOf(OpenSearchResponseError);
    expect(error).toMatchObject({ name: 'ResponseError', statusCode: 404, type: 'index_not_found_exception', meta: { statusCode: 404, body } });
    expect(error.message).toBe('HTTP 404 from POST /docs/_search: index_not_found_exception: no such index [docs]');
    expect(openSearchStatus(error)).toBe(404);
    expect(server.received).toHaveLength(1);
  });

  test('a 429 becomes a ResponseError with statusCode 429 that classifies as throttling, without a retry', async () => {
    server.answer = () => ({ status: 429, body: { error: { type: 'circuit_breaking_exception', reason: 'too many requests' }, status: 429 } });
    const error = await rejection(client(server).search('docs', {}));
    expect(error).toMatchObject({ name: 'ResponseError', statusCode: 429 });
    expect(error.message).toBe('HTTP 429 from POST /docs/_search: circuit_breaking_exception: too many requests');
    expect(classifyServiceError('opensearch', error)).toEqual({ statusCode: 429, error: 'Throttled', message: 'OpenSearch is throttling requests; retry with backoff' });
    expect(server.received).toHaveLength(1);
  });

  test('a 500 becomes a ResponseError whose message names the root causes that differ from the error, and classifies as a dependency failure', async () => {
    const body = {
      error: { root_cause: [{ type: 'query_shard_exception', reason: 'failed to create query: field [embedding] is not knn_vector' }], type: 'search_phase_execution_exception', reason: 'all shards failed' },
      status: 500,
    };
    server.answer = () => ({ status: 500, body });
    const error = await rejection(client(server).search('docs', {}));
    expect(error).toMatchObject({ name: 'ResponseError', statusCode: 500, type: 'search_phase_execution_exception' });
    expect(error.message).toBe(
      'HTTP 500 from POST /docs/_search: search_phase_execution_exception: all shards failed (root cause: [query_shard_exception] failed to create query: field [embedding] is not knn_vector)',
    );
    expect(classifyServiceError('opensearch', error)).toEqual({ statusCode: 502, error: 'DependencyFailed', message: 'OpenSearch call failed (ResponseError)' });
    expect(server.received).toHaveLength(1);
  });

  test('an answer without an OpenSearch error type names its status and what the body says', async () => {
    server.answer = () => ({ status: 404, body: { status: 'NOT_FOUND', message: 'Resource docs-reader not found.' } });
    expect((await rejection(client(server).delete('/_plugins/_security/api/roles/docs-reader'))).message).toBe('HTTP 404 from DELETE /_plugins/_security/api/roles/docs-reader: Resource docs-reader not found.');
    server.answer = () => ({ status: 403 });
    const error = await rejection(client(server).indexExists('docs'));
    expect(error).toMatchObject({ name: 'ResponseError', statusCode: 403, message: 'HTTP 403 from HEAD /docs' });
  });

  test.each([400, 403, 404, 409, 413, 429])('a %i answer is not retried', async (status) => {
    server.answer = () => ({ status, body: { error: { type: 'some_exception', reason: 'no' }, status } });
    const error = await rejection(client(server).put('/docs', {}));
    expect(openSearchStatus(error)).toBe(status);
    expect(server.received).toHaveLength(1);
  });
});

describe('retries and timeouts', () => {
  test('a 503 followed by a 200 is retried, signed afresh, and succeeds', async () => {
    const server = await startServer((_, attempt) => (attempt === 1 ? { status: 503, body: { message: 'unavailable' } } : { status: 200, body: { hits: { hits: [] } } }));
    try {
      await expect(client(server).search('docs', { query: { match_all: {} } })).resolves.toEqual({ hits: { hits: [] } });
      expect(server.received).toHaveLength(2);
      expect(server.received[1].body).toBe(server.received[0].body);
      expect(server.received[1].headers.authorization).toBe(await expectedAuthorization(server.received[1]));
    } finally {
      await server.stop();
    }
  });

  test.each([502, 503, 504])('a %i on every attempt is tried maxRetries more times, then fails with that answer', async (status) => {
    const server = await startServer(() => ({ status, body: { message: 'gateway trouble' } }));
    try {
      const error = await rejection(client(server, { maxRetries: 2 }).search('docs', {}));
      expect(error).toMatchObject({ name: 'ResponseError', statusCode: status, message: `HTTP ${status} from POST /docs/_search: gateway trouble` });
      expect(server.received).toHaveLength(3);
    } finally {
      await server.stop();
    }
  });

  test('a server that never answers times out with a TimeoutError within the configured timeout', async () => {
    const server = await startServer(() => 'hang');
    try {
      const started = Date.now();
      const error = await rejection(client(server, { requestTimeoutMs: 300, maxRetries: 0 }).search('docs', {}));
      const elapsed = Date.now() - started;
      expect(error).toBeInstanceOf(OpenSearchTimeoutError);
      expect(error).toMatchObject({ name: 'TimeoutError', message: 'OpenSearch did not answer POST /docs/_search within 300 ms' });
      expect(elapsed).toBeGreaterThanOrEqual(290);
      expect(elapsed).toBeLessThan(1_000);
      expect(classifyServiceError('opensearch', error)).toMatchObject({ statusCode: 502, message: 'OpenSearch call failed (TimeoutError)' });
    } finally {
      await server.stop();
    }
  });

  test('a timed-out request is tried again, each attempt with its own timeout', async () => {
    const server = await startServer((_, attempt) => (attempt < 3 ? 'hang' : { status: 200, body: { deleted: 1 } }));
    try {
      const started = Date.now();
      await expect(client(server, { requestTimeoutMs: 200, maxRetries: 2 }).deleteByQuery('docs', {})).resolves.toEqual({ deleted: 1 });
      expect(server.received).toHaveLength(3);
      expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    } finally {
      await server.stop();
    }
  });

  test('a refused connection gives a ConnectionError once the retries are spent', async () => {
    const closed = await startServer();
    await closed.stop();
    const error = await rejection(client(closed, { maxRetries: 2 }).indexExists('docs'));
    expect(error).toBeInstanceOf(OpenSearchConnectionError);
    expect(error.name).toBe('ConnectionError');
    expect(error.message).toMatch(/^OpenSearch connection failed during HEAD \/docs: connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
    expect(openSearchStatus(error)).toBeUndefined();
    expect(classifyServiceError('opensearch', error)).toMatchObject({ statusCode: 502, message: 'OpenSearch call failed (ConnectionError)' });
  });

  test('a connection refused once and then accepted succeeds on the retry', async () => {
    const server = await startServer(() => ({ status: 200 }));
    const { port } = new URL(server.endpoint);
    const listening = servers[servers.length - 1];
    await server.stop();
    const call = client(server, { maxRetries: 2, retryDelayMs: 150 }).indexExists('docs');
    await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise<void>((resolve) => listening.listen(Number(port), '127.0.0.1', resolve));
    try {
      await expect(call).resolves.toBe(true);
      expect(server.received).toHaveLength(1);
    } finally {
      await server.stop();
    }
  });
});
