// Retrieval-augmented generation in an application team's own stack: a knowledge base, its ingestion,
// a pinned prompt, a guardrail and the question-answering API. The README shows this function; the
// tests type-check and synthesize it. In your project, import from 'cdk-ml-patterns'.
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { DocumentIngestion, PromptTemplate, RagApi, RagGuardrail, VectorKnowledgeBase } from '../lib';

export function questionAnswering(scope: Construct, documents: s3.Bucket, key: kms.IKey, pager: cloudwatch.IAlarmAction): RagApi {
  const embeddingModelId = 'amazon.titan-embed-text-v2:0';
  const generationModelId = 'anthropic.claude-3-haiku-20240307-v1:0';
  const knowledgeBase = new VectorKnowledgeBase(scope, 'KnowledgeBase', {
    encryptionKey: key,
    index: { indexName: 'handbook', dimension: 1024 },
  });
  new DocumentIngestion(scope, 'Ingestion', { knowledgeBase, bucket: documents, embeddingModelId, chunkSize: 1000, chunkOverlap: 150, encryptionKey: key, alarmAction: pager });
  const prompt = new PromptTemplate(scope, 'Prompt', {
    systemPrompt: 'Answer only from the numbered passages and cite them as [n]. Say so when they do not cover the question.',
    template: 'Passages:\n{{context}}\n\nQuestion: {{question}}',
    fewShotExamples: [{ question: 'How much leave do I get?', answer: 'Two days per month [1].' }],
    modelId: generationModelId,
    pinnedVersion: '1',
  });
  const guardrail = new RagGuardrail(scope, 'Guardrail', {
    deniedTopics: [{ name: 'Legal advice', definition: 'Advice on how the law applies to a personal situation.' }],
    alarmAction: pager,
  });
  return new RagApi(scope, 'Api', { knowledgeBase, prompt, guardrail, embeddingModelId, generationModelId, encryptionKey: key, topK: 5, scoreFloor: 0.3, hybrid: true });
}
