// CloudFormation custom resource (Custom::KnnIndex), backed directly by this function: creates, updates
// and deletes the knowledge base's k-NN index and the OpenSearch security roles that map the ingestion
// and query functions' IAM roles to writer and reader access. TypeScript, from the pre-built bundle: no
// Docker and no Python at synth, and no provider framework (its extra functions would need their own
// compliance exceptions).
//
//   Create  index missing -> PUT /<index> with the k-NN mapping; index present with the same vector
//           settings -> kept (missing fields added); present with another dimension/engine/space -> FAILED
//   Update  same index name -> as Create (a dimension/engine/space change FAILS with the reason: it would
//           need every vector re-embedded); new index name -> the new index is created and returned as the
//           new physical id, and CloudFormation then deletes the old one
//   Delete  DELETE /<index> and its roles; a missing index or role is success
// Every path answers CloudFormation (the pre-signed ResponseURL), errors included, so a stack never
// waits for the custom resource's one-hour timeout.
//
// ResourceProperties: DomainEndpoint, IndexName, Dimension, Engine, SpaceType, Shards, Replicas,
// WriterRoleArns, ReaderRoleArns (CloudFormation passes numbers as strings).
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Logger } from '@aws-lambda-powertools/logger';
import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import { openSearchClient, openSearchStatus } from '../genai-io/opensearch';
import {
  compareMappings,
  createIndexBody,
  knnIndexSpecProblems,
  roleMappingBody,
  securityRoleBody,
  securityRoleNames,
  type KnnIndexSpec,
} from '../shared/knn-index';

const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'knn-index' });

interface Outcome {
  readonly status: 'SUCCESS' | 'FAILED';
  readonly physicalResourceId: string;
  readonly reason?: string;
  readonly data?: Record<string, string>;
}

class SpecError extends Error {}

/** Physical id of a resource whose Create failed: never an index of ours (uppercase is not a valid index name). */
const FAILED_PREFIX = 'FAILED-';

function readSpec(properties: Record<string, unknown>): { endpoint: string; spec: KnnIndexSpec } {
  const raw = {
    indexName: properties.IndexName,
    dimension: Number(properties.Dimension),
    engine: properties.Engine,
    spaceType: properties.SpaceType,
    shards: Number(properties.Shards ?? 1),
    replicas: Number(properties.Replicas ?? 0),
    writerRoleArns: properties.WriterRoleArns ?? [],
    readerRoleArns: properties.ReaderRoleArns ?? [],
  };
  const problems = knnIndexSpecProblems(raw);
  if (typeof properties.DomainEndpoint !== 'string' || properties.DomainEndpoint === '') problems.unshift('DomainEndpoint: is required');
  if (problems.length > 0) throw new SpecError(`invalid properties: ${problems.join('; ')}`);
  return { endpoint: properties.DomainEndpoint as string, spec: raw as KnnIndexSpec };
}

async function ensureIndex(endpoint: string, spec: KnnIndexSpec): Promise<'created' | 'unchanged' | 'fields-added'> {
  const openSearch = openSearchClient(endpoint);
  if (!(await openSearch.indexExists(spec.indexName))) {
    try {
      await openSearch.createIndex(spec.indexName, createIndexBody(spec));
      return 'created';
    } catch (error) {
      // Created meanwhile (a retried invocation): fall through to the comparison.
      if (!/resource_already_exists_exception/.test(String((error as { message?: string }).message))) throw error;
    }
  }
  const comparison = compareMappings(await openSearch.getMapping(spec.indexName), spec);
  if (comparison.kind === 'conflict') throw new SpecError(comparison.reason);
  if (comparison.kind === 'missing-fields') {
    await openSearch.putMapping(spec.indexName, { properties: comparison.properties });
    return 'fields-added';
  }
  return 'unchanged';
}

async function ensureRoles(endpoint: string, spec: KnnIndexSpec): Promise<void> {
  const openSearch = openSearchClient(endpoint);
  const names = securityRoleNames(spec.indexName);
  for (const access of ['writer', 'reader'] as const) {
    const arns = access === 'writer' ? spec.writerRoleArns : spec.readerRoleArns;
    // PUT replaces the role and its mapping: idempotent, and an update that changes the functions' roles
    // takes the old ones out.
    await openSearch.put(`/_plugins/_security/api/roles/${names[access]}`, securityRoleBody(spec.indexName, access));
    await openSearch.put(`/_plugins/_security/api/rolesmapping/${names[access]}`, roleMappingBody(arns));
  }
}

async function ignoreNotFound(call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (error) {
    if (openSearchStatus(error) !== 404) throw error;
  }
}

async function deleteIndex(endpoint: string, indexName: string): Promise<void> {
  const openSearch = openSearchClient(endpoint);
  await ignoreNotFound(() => openSearch.deleteIndex(indexName));
  const names = securityRoleNames(indexName);
  for (const name of [names.writer, names.reader]) {
    await ignoreNotFound(() => openSearch.delete(`/_plugins/_security/api/rolesmapping/${name}`));
    await ignoreNotFound(() => openSearch.delete(`/_plugins/_security/api/roles/${name}`));
  }
}

async function handle(event: CloudFormationCustomResourceEvent): Promise<Outcome> {
  const properties = event.ResourceProperties as Record<string, unknown>;
  if (event.RequestType === 'Delete') {
    // A resource whose Create failed validation has no index to delete (its physical id is not an index name).
    const indexName = event.PhysicalResourceId;
    if (typeof properties.DomainEndpoint !== 'string' || indexName.startsWith(FAILED_PREFIX) || !/^[a-z0-9][a-z0-9_-]*$/.test(indexName)) {
      return { status: 'SUCCESS', physicalResourceId: indexName };
    }
    await deleteIndex(properties.DomainEndpoint, indexName);
    logger.info('index deleted', { indexName });
    return { status: 'SUCCESS', physicalResourceId: indexName };
  }
  const { endpoint, spec } = readSpec(properties);
  const result = await ensureIndex(endpoint, spec);
  await ensureRoles(endpoint, spec);
  logger.info('index ready', { indexName: spec.indexName, result, requestType: event.RequestType });
  // A new name is a new physical id: CloudFormation sends Delete for the old index after the update.
  return { status: 'SUCCESS', physicalResourceId: spec.indexName, data: { IndexName: spec.indexName } };
}

/** PUTs the outcome to CloudFormation's pre-signed URL (no content type: the URL is signed without one). */
function respond(event: CloudFormationCustomResourceEvent, outcome: Outcome): Promise<void> {
  const body = JSON.stringify({
    Status: outcome.status,
    Reason: (outcome.reason ?? 'see the function logs').slice(0, 3000),
    PhysicalResourceId: outcome.physicalResourceId,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
    ...(outcome.data ? { Data: outcome.data } : {}),
  });
  const url = new URL(event.ResponseURL);
  const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { method: 'PUT', headers: { 'content-type': '', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => ((res.statusCode ?? 500) < 300 ? resolve() : reject(new Error(`CloudFormation response rejected: HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function handler(event: CloudFormationCustomResourceEvent, context?: Context): Promise<void> {
  if (context !== undefined) logger.addContext(context);
  let outcome: Outcome;
  try {
    outcome = await handle(event);
  } catch (error) {
    const message = error instanceof SpecError ? error.message : `${(error as Error).name ?? 'Error'}: ${(error as Error).message}`;
    logger.error('k-NN index request failed', { requestType: event.RequestType, error: message });
    // On a failed Create there is no index yet: a placeholder id keeps the rollback's Delete a no-op.
    const physicalResourceId = event.RequestType === 'Create' ? `${FAILED_PREFIX}${event.RequestId}` : event.PhysicalResourceId;
    outcome = { status: 'FAILED', physicalResourceId, reason: message };
  }
  await respond(event, outcome);
}
