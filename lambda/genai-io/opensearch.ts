// The OpenSearch and Bedrock I/O the RAG handlers share (lambda/knn-index, lambda/ingest-documents,
// lambda/rag-query). Not a handler (no index.ts): each handler's bundle includes what it imports.
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Client } from '@opensearch-project/opensearch';
import { AwsSigv4Signer } from '@opensearch-project/opensearch/aws-v3';

const clients = new Map<string, Client>();

/**
 * An OpenSearch client for a domain endpoint (`https://...`), signing every request with SigV4 for
 * service `es` with the function's role, which fine-grained access control maps to an OpenSearch role.
 * One client per endpoint for the life of the execution environment.
 */
export function openSearchClient(endpoint: string, requestTimeoutMs = 10_000): Client {
  const node = /^https?:\/\//.test(endpoint) ? endpoint : `https://${endpoint}`;
  let client = clients.get(node);
  if (client === undefined) {
    const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
    client = new Client({
      ...AwsSigv4Signer({ region, service: 'es', getCredentials: defaultProvider() }),
      node,
      requestTimeout: requestTimeoutMs,
      maxRetries: 2,
    });
    clients.set(node, client);
  }
  return client;
}

/** The HTTP status of an OpenSearch client error, when it got a response. */
export function openSearchStatus(error: unknown): number | undefined {
  const status = (error as { meta?: { statusCode?: number }; statusCode?: number } | undefined)?.meta?.statusCode ?? (error as { statusCode?: number } | undefined)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}
