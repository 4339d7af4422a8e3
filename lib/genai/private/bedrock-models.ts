import { Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * The embedding models the knowledge base supports, as the synth-time checks need them. The ingestion
 * and query functions map requests by the same ids (lambda/shared/embeddings.ts; a test keeps the two
 * tables in step).
 */
export const EMBEDDING_MODELS: ReadonlyArray<{ readonly pattern: RegExp; readonly dimensions: readonly number[]; readonly maxCharacters: number }> = [
  { pattern: /^amazon\.titan-embed-text-v2(:\d+)?$/, dimensions: [256, 512, 1024], maxCharacters: 50_000 },
  { pattern: /^amazon\.titan-embed-text-v1(:\d+)?$/, dimensions: [1536], maxCharacters: 50_000 },
  { pattern: /^cohere\.embed-(english|multilingual)-v3(:\d+)?$/, dimensions: [1024], maxCharacters: 2048 },
];

/** What is wrong with an embedding model for an index of `dimension` and chunks of `chunkSize`, or undefined. */
export function validateEmbeddingModel(modelId: string, dimension: number, chunkSize?: number): string | undefined {
  const model = EMBEDDING_MODELS.find((candidate) => candidate.pattern.test(modelId));
  if (model === undefined) {
    return `embeddingModelId: '${modelId}' is not a supported embedding model (amazon.titan-embed-text-v2:0, amazon.titan-embed-text-v1, cohere.embed-english-v3, cohere.embed-multilingual-v3)`;
  }
  if (!model.dimensions.includes(dimension)) return `embeddingModelId: ${modelId} returns vectors of ${model.dimensions.join(' or ')} dimensions; the index has ${dimension}`;
  if (chunkSize !== undefined && chunkSize > model.maxCharacters) return `chunkSize: ${modelId} embeds at most ${model.maxCharacters} characters per text; got ${chunkSize}`;
  return undefined;
}

/**
 * What is wrong with a generation model id, or undefined. Cross-region inference profiles (`us.`, `eu.`,
 * `apac.`, `global.` ...) need permissions on the profile and on the model in every region it routes to;
 * the functions are only granted the foundation model of their own region, so profiles are refused.
 */
export function generationModelProblem(modelId: string): string | undefined {
  if (/^(us|us-gov|eu|apac|ca|jp|au|global)\./.test(modelId)) {
    return `generationModelId: '${modelId}' is a cross-region inference profile; give the model id itself (e.g. anthropic.claude-3-haiku-20240307-v1:0)`;
  }
  if (!/^[a-z0-9-]+\.[A-Za-z0-9.:-]+$/.test(modelId)) return `generationModelId: must be a Bedrock model id such as anthropic.claude-3-haiku-20240307-v1:0; got '${modelId}'`;
  return undefined;
}

/** ARN of a Bedrock foundation model: region-scoped, without an account. */
export function foundationModelArn(scope: IConstruct, modelId: string): string {
  const stack = Stack.of(scope);
  return `arn:${stack.partition}:bedrock:${stack.region}::foundation-model/${modelId}`;
}

export const embeddingModelArn = foundationModelArn;
