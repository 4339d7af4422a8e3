import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { captureOutput, handlerModulePaths, loadFreshHandler, useHandlerEnv } from '../support/handler-harness';
import { startFakeServer, type FakeServer, type RecordedRequest } from '../support/rag-fixtures';

type Handler = (event: CloudFormationCustomResourceEvent) => Promise<void>;

const WRITER = 'arn:aws:iam::123456789012:role/ingest';
const READER = 'arn:aws:iam::123456789012:role/query';

const setEnv = useHandlerEnv([], {});
let opensearch: FakeServer;
let cloudformation: FakeServer;
let handler: Handler;

/** An index as OpenSearch describes it, for GET /<index>/_mapping. */
let existingMapping: Record<string, unknown> | undefined;

function openSearchRoute(request: RecordedRequest) {
  if (request.method === 'HEAD' && request.path === '/docs') return { status: existingMapping ? 200 : 404 };
  if (request.method === 'PUT' && request.path === '/docs') {
    existingMapping = JSON.parse(request.body).mappings;
    return { status: 200, body: { acknowledged: true, index: 'docs' } };
  }
  if (request.method === 'GET' && request.path === '/docs/_mapping') return { status: 200, body: { docs: { mappings: existingMapping } } };
  if (request.method === 'PUT' && request.path === '/docs/_mapping') return { status: 200, body: { acknowledged: true } };
  if (request.method === 'DELETE' && request.path === '/docs') {
    const existed = existingMapping !== undefined;
    existingMapping = undefined;
    return existed ? { status: 200, body: { acknowledged: true } } : { status: 404, body: { error: { type: 'index_not_found_exception' }, status: 404 } };
  }
  if (request.path.startsWith('/_plugins/_security/api/')) return request.method === 'DELETE' ? { status: 404, body: { status: 'NOT_FOUND' } } : { status: 200, body: { status: 'OK' } };
  return { status: 400, body: { error: `unexpected ${request.method} ${request.path}` } };
}

function event(requestType: 'Create' | 'Update' | 'Delete', properties: Record<string, unknown> = {}, physicalResourceId = 'docs'): CloudFormationCustomResourceEvent {
  const base = {
    ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:x',
    ResponseURL: `${cloudformation.endpoint}/response?X-Amz-Signature=abc`,
    StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/s/1',
    RequestId: 'req-1',
    LogicalResourceId: 'Index',
    ResourceType: 'Custom::KnnIndex',
    ResourceProperties: {
      ServiceToken: 'x',
      DomainEndpoint: opensearch.endpoint,
      IndexName: 'docs',
      Dimension: '4',
      Engine: 'faiss',
      SpaceType: 'l2',
      Shards: '1',
      Replicas: '0',
      WriterRoleArns: [WRITER],
      ReaderRoleArns: [READER],
      ...properties,
    },
  };
  if (requestType === 'Create') return { ...base, RequestType: 'Create' } as CloudFormationCustomResourceEvent;
  return { ...base, RequestType: requestType, PhysicalResourceId: physicalResourceId, OldResourceProperties: base.ResourceProperties } as CloudFormationCustomResourceEvent;
}

async function run(e: CloudFormationCustomResourceEvent): Promise<{ response: Record<string, unknown>; calls: string[] }> {
  opensearch.requests.length = 0;
  cloudformation.requests.length = 0;
  await captureOutput(() => handler(e));
  expect(cloudformation.requests).toHaveLength(1);
  const [put] = cloudformation.requests;
  expect(put.method).toBe('PUT');
  expect(put.query).toBe('?X-Amz-Signature=abc');
  return { response: JSON.parse(put.body), calls: opensearch.requests.map((request) => `${request.method} ${request.path}`) };
}

beforeAll(async () => {
  opensearch = await startFakeServer(openSearchRoute);
  cloudformation = await startFakeServer(() => ({ status: 200 }));
  setEnv({});
  handler = loadFreshHandler<Handler>(handlerModulePaths('knn-index').source);
});
afterAll(async () => {
  await opensearch.stop();
  await cloudformation.stop();
});
beforeEach(() => {
  existingMapping = undefined;
});

test('create puts the k-NN index and the writer and reader roles with their IAM role mappings, signed with SigV4', async () => {
  const { response, calls } = await run(event('Create'));
  expect(response).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'docs', RequestId: 'req-1', LogicalResourceId: 'Index', Data: { IndexName: 'docs' } });
  expect(calls).toEqual([
    'HEAD /docs',
    'PUT /docs',
    'PUT /_plugins/_security/api/roles/docs-writer',
    'PUT /_plugins/_security/api/rolesmapping/docs-writer',
    'PUT /_plugins/_security/api/roles/docs-reader',
    'PUT /_plugins/_security/api/rolesmapping/docs-reader',
  ]);
  const create = opensearch.requests[1];
  expect(JSON.parse(create.body)).toMatchObject({
    settings: { index: { knn: true, number_of_shards: 1, number_of_replicas: 0 } },
    mappings: { properties: { embedding: { type: 'knn_vector', dimension: 4, method: { name: 'hnsw', engine: 'faiss', space_type: 'l2' } } } },
  });
  expect(create.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=testing\/\d{8}\/us-east-1\/es\/aws4_request/);
  expect(JSON.parse(opensearch.requests[3].body)).toEqual({ backend_roles: [WRITER] });
  expect(JSON.parse(opensearch.requests[5].body)).toEqual({ backend_roles: [READER] });
  expect(JSON.parse(opensearch.requests[4].body)).toMatchObject({ index_permissions: [{ index_patterns: ['docs'], allowed_actions: ['read'] }] });
});

test('create when the index already exists keeps it and only ensures the mapping and roles', async () => {
  await run(event('Create'));
  const { response, calls } = await run(event('Create'));
  expect(response.Status).toBe('SUCCESS');
  expect(calls.slice(0, 2)).toEqual(['HEAD /docs', 'GET /docs/_mapping']);
  expect(calls).not.toContain('PUT /docs');
});

test('update with another dimension fails with the reason and keeps the index', async () => {
  await run(event('Create'));
  const { response, calls } = await run(event('Update', { Dimension: '8' }));
  expect(response).toMatchObject({ Status: 'FAILED', PhysicalResourceId: 'docs' });
  expect(response.Reason).toContain('index docs cannot change dimension 4 -> 8 in place');
  expect(response.Reason).toContain('give the index a new name');
  expect(calls).not.toContain('DELETE /docs');
  expect(calls).not.toContain('PUT /docs');
});

test('update with a new index name creates the new index and returns it as the new physical id', async () => {
  const { response, calls } = await run(event('Update', { IndexName: 'docs' }, 'docs-v1'));
  expect(response).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'docs', Data: { IndexName: 'docs' } });
  expect(calls.slice(0, 2)).toEqual(['HEAD /docs', 'PUT /docs']);
  // The old index is left to the Delete that CloudFormation sends for the old physical id.
  expect(calls.filter((call) => call.startsWith('DELETE'))).toEqual([]);
});

test('delete removes the index and its roles, and deleting a missing index succeeds', async () => {
  await run(event('Create'));
  const first = await run(event('Delete'));
  expect(first.response).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'docs' });
  expect(first.calls).toEqual([
    'DELETE /docs',
    'DELETE /_plugins/_security/api/rolesmapping/docs-writer',
    'DELETE /_plugins/_security/api/roles/docs-writer',
    'DELETE /_plugins/_security/api/rolesmapping/docs-reader',
    'DELETE /_plugins/_security/api/roles/docs-reader',
  ]);
  const again = await run(event('Delete'));
  expect(again.response.Status).toBe('SUCCESS');
});

test('a create with bad properties fails clearly, and the rollback delete of it touches nothing', async () => {
  const { response, calls } = await run(event('Create', { Dimension: 'abc', SpaceType: 'cosine' }));
  expect(response.Status).toBe('FAILED');
  expect(response.Reason).toMatch(/invalid properties: Dimension: must be a whole number .*SpaceType: the faiss engine supports l2, innerproduct/);
  expect(calls).toEqual([]);
  const rollback = await run(event('Delete', {}, response.PhysicalResourceId as string));
  expect(rollback.response.Status).toBe('SUCCESS');
  expect(rollback.calls).toEqual([]);
});

test('an OpenSearch error still answers CloudFormation, as FAILED with the error', async () => {
  const saved = opensearch.route;
  opensearch.route = () => ({ status: 403, body: { error: { type: 'security_exception', reason: 'no permissions' }, status: 403 } });
  try {
    const { response } = await run(event('Create'));
    expect(response.Status).toBe('FAILED');
    expect(String(response.Reason)).toMatch(/ResponseError/);
  } finally {
    opensearch.route = saved;
  }
});
