// The k-NN index of the knowledge base and the OpenSearch security roles that let the ingestion and
// query functions use it: request bodies and the comparison of an existing index with the wanted one.
// Pure: no AWS imports. lambda/knn-index sends these with the OpenSearch client.

export const KNN_ENGINES = ['faiss', 'lucene', 'nmslib'] as const;
export type KnnEngine = (typeof KNN_ENGINES)[number];
export const KNN_SPACE_TYPES = ['l2', 'cosinesimil', 'innerproduct'] as const;
export type KnnSpaceType = (typeof KNN_SPACE_TYPES)[number];

/** Space types each engine supports on OpenSearch Service 2.x. */
export const ENGINE_SPACE_TYPES: Record<KnnEngine, readonly KnnSpaceType[]> = {
  faiss: ['l2', 'innerproduct'],
  lucene: ['l2', 'cosinesimil', 'innerproduct'],
  nmslib: ['l2', 'cosinesimil', 'innerproduct'],
};

/** The vector field of every chunk. */
export const VECTOR_FIELD = 'embedding';

export interface KnnIndexSpec {
  readonly indexName: string;
  readonly dimension: number;
  readonly engine: KnnEngine;
  readonly spaceType: KnnSpaceType;
  readonly shards: number;
  readonly replicas: number;
  /** IAM role ARNs that index and delete chunks. */
  readonly writerRoleArns: readonly string[];
  /** IAM role ARNs that search. */
  readonly readerRoleArns: readonly string[];
}

/** Problems of a spec, each naming its field; empty when the spec is usable. */
export function knnIndexSpecProblems(spec: Partial<Record<keyof KnnIndexSpec, unknown>>): string[] {
  const problems: string[] = [];
  const name = spec.indexName;
  if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,254}$/.test(name)) {
    problems.push(`IndexName: must be lowercase letters, digits, '-' or '_', starting with a letter or digit; got ${JSON.stringify(name)}`);
  }
  if (!Number.isInteger(spec.dimension) || (spec.dimension as number) < 1 || (spec.dimension as number) > 16000) {
    problems.push(`Dimension: must be a whole number from 1 to 16000; got ${JSON.stringify(spec.dimension)}`);
  }
  if (!(KNN_ENGINES as readonly unknown[]).includes(spec.engine)) problems.push(`Engine: must be one of ${KNN_ENGINES.join(', ')}; got ${JSON.stringify(spec.engine)}`);
  else if (!ENGINE_SPACE_TYPES[spec.engine as KnnEngine].includes(spec.spaceType as KnnSpaceType)) {
    problems.push(`SpaceType: the ${String(spec.engine)} engine supports ${ENGINE_SPACE_TYPES[spec.engine as KnnEngine].join(', ')}; got ${JSON.stringify(spec.spaceType)}`);
  }
  for (const field of ['shards', 'replicas'] as const) {
    const value = spec[field];
    if (!Number.isInteger(value) || (value as number) < (field === 'shards' ? 1 : 0)) problems.push(`${field === 'shards' ? 'Shards' : 'Replicas'}: must be a whole number; got ${JSON.stringify(value)}`);
  }
  for (const field of ['writerRoleArns', 'readerRoleArns'] as const) {
    const value = spec[field];
    if (!Array.isArray(value) || !value.every((arn) => typeof arn === 'string' && /^arn:aws[a-z-]*:iam::\d{12}:role\//.test(arn))) {
      problems.push(`${field === 'writerRoleArns' ? 'WriterRoleArns' : 'ReaderRoleArns'}: must be a list of IAM role ARNs`);
    }
  }
  return problems;
}

/** Mapping of the chunk documents. */
export function indexMappings(spec: KnnIndexSpec): Record<string, unknown> {
  return {
    dynamic: 'strict',
    properties: {
      [VECTOR_FIELD]: {
        type: 'knn_vector',
        dimension: spec.dimension,
        method: { name: 'hnsw', engine: spec.engine, space_type: spec.spaceType, parameters: { m: 16, ef_construction: 128 } },
      },
      text: { type: 'text' },
      title: { type: 'text' },
      document_id: { type: 'keyword' },
      source_uri: { type: 'keyword' },
      source_key: { type: 'keyword' },
      chunk_index: { type: 'integer' },
      chunk_start: { type: 'integer' },
      chunk_end: { type: 'integer' },
      content_type: { type: 'keyword' },
      etag: { type: 'keyword' },
      ingested_at: { type: 'date' },
    },
  };
}

/** Body of `PUT /<index>`. */
export function createIndexBody(spec: KnnIndexSpec): Record<string, unknown> {
  return {
    settings: { index: { knn: true, number_of_shards: spec.shards, number_of_replicas: spec.replicas } },
    mappings: indexMappings(spec),
  };
}

export type MappingComparison = { readonly kind: 'same' } | { readonly kind: 'missing-fields'; readonly properties: Record<string, unknown> } | { readonly kind: 'conflict'; readonly reason: string };

/**
 * Compares the mapping OpenSearch reports for an existing index (`GET /<index>/_mapping` → mappings) with
 * the wanted one. A different vector dimension, engine or space type cannot be changed in place (the
 * vectors would have to be re-embedded): it is a conflict. Fields that are missing can be added.
 */
export function compareMappings(existing: unknown, spec: KnnIndexSpec): MappingComparison {
  const properties = ((existing as { properties?: Record<string, any> } | undefined)?.properties ?? {}) as Record<string, any>;
  const vector = properties[VECTOR_FIELD];
  if (vector === undefined) return { kind: 'conflict', reason: `index ${spec.indexName} exists without a '${VECTOR_FIELD}' field; it was not created by this knowledge base` };
  if (vector.type !== 'knn_vector') return { kind: 'conflict', reason: `field '${VECTOR_FIELD}' of index ${spec.indexName} is '${vector.type}', not knn_vector` };
  const differences: string[] = [];
  if (Number(vector.dimension) !== spec.dimension) differences.push(`dimension ${vector.dimension} -> ${spec.dimension}`);
  const engine = vector.method?.engine;
  if (engine !== undefined && engine !== spec.engine) differences.push(`engine ${engine} -> ${spec.engine}`);
  const spaceType = vector.method?.space_type ?? vector.space_type;
  if (spaceType !== undefined && spaceType !== spec.spaceType) differences.push(`space type ${spaceType} -> ${spec.spaceType}`);
  if (differences.length > 0) {
    return {
      kind: 'conflict',
      reason: `index ${spec.indexName} cannot change ${differences.join(', ')} in place (every vector would have to be re-embedded); give the index a new name, which creates a new index and deletes this one, then re-ingest the documents`,
    };
  }
  const wanted = indexMappings(spec).properties as Record<string, unknown>;
  const missing = Object.fromEntries(Object.entries(wanted).filter(([name]) => properties[name] === undefined));
  return Object.keys(missing).length > 0 ? { kind: 'missing-fields', properties: missing } : { kind: 'same' };
}

/** Names of the OpenSearch security roles of an index. */
export function securityRoleNames(indexName: string): { writer: string; reader: string } {
  return { writer: `${indexName}-writer`, reader: `${indexName}-reader` };
}

/** Body of `PUT _plugins/_security/api/roles/<name>` for the writer (ingestion) and reader (query) roles. */
export function securityRoleBody(indexName: string, access: 'writer' | 'reader'): Record<string, unknown> {
  return access === 'writer'
    ? {
        description: `Indexes and deletes the chunks of ${indexName}`,
        cluster_permissions: ['indices:data/write/bulk', 'indices:data/read/scroll/clear'],
        index_permissions: [{ index_patterns: [indexName], allowed_actions: ['crud', 'indices:data/write/delete/byquery', 'indices:admin/mapping/get'] }],
      }
    : {
        description: `Searches the chunks of ${indexName}`,
        cluster_permissions: ['cluster_composite_ops_ro'],
        index_permissions: [{ index_patterns: [indexName], allowed_actions: ['read'] }],
      };
}

/** Body of `PUT _plugins/_security/api/rolesmapping/<name>`: the IAM roles mapped as backend roles. */
export function roleMappingBody(roleArns: readonly string[]): Record<string, unknown> {
  return { backend_roles: [...roleArns] };
}
