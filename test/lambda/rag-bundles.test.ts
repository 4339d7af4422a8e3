// The esbuild bundles of the RAG handlers, as Lambda runs them, invoked once each over the wire against
// local stand-ins (bench/first-invoke.cjs): the SDK clients, SigV4 signing of OpenSearch requests, the
// HTTP/2 Bedrock Runtime client and the CloudFormation response all work from the bundle, not only from source.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/cli';
import { handlerModulePaths } from '../support/handler-harness';

function firstInvoke(name: string): { requireMs: number; firstInvokeMs: number; result: any; error?: string; requests: string[] } {
  const stdout = execFileSync(process.execPath, [join(REPO_ROOT, 'bench', 'first-invoke.cjs'), name, handlerModulePaths(name).bundle], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH ?? '' } });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

test('the rag-query bundle answers a question with a citation', () => {
  const run = firstInvoke('rag-query');
  expect(run.error).toBeUndefined();
  expect(run.result.statusCode).toBe(200);
  expect(JSON.parse(run.result.body)).toMatchObject({ answer: 'Two days per month [1].', citations: [{ marker: 1, source: 's3://kb/documents/handbook.md' }] });
  expect(run.requests).toEqual(['POST /model/amazon.titan-embed-text-v2%3A0/invoke', 'POST /docs/_search', 'GET /prompts/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aprompt%2FPROMPT1/', 'POST /model/anthropic.claude-3-haiku-20240307-v1%3A0/converse']);
});

test('the ingest-documents bundle reads, embeds and indexes a document', () => {
  const run = firstInvoke('ingest-documents');
  expect(run.result).toEqual({ batchItemFailures: [] });
  expect(run.requests).toEqual(['GET /kb/documents/handbook.md', 'POST /model/amazon.titan-embed-text-v2%3A0/invoke', 'POST /_bulk', 'POST /docs/_delete_by_query']);
});

test('the knn-index bundle creates the index and answers CloudFormation', () => {
  const run = firstInvoke('knn-index');
  expect(run.error).toBeUndefined();
  expect(run.requests[0]).toBe('HEAD /docs');
  expect(run.requests[run.requests.length - 1]).toBe('PUT /cfn-response');
});
