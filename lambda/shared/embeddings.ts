// Request and response bodies of the Bedrock embedding models the knowledge base supports, by model id.
// Pure: the handlers send the bodies with InvokeModel. Titan takes one text per call; Cohere Embed takes
// up to 96 per call, so texts are batched.

export type EmbeddingPurpose = 'document' | 'query';

export interface EmbeddingModel {
  readonly modelId: string;
  readonly family: 'titan-v2' | 'titan-v1' | 'cohere-v3';
  /** Texts one InvokeModel call embeds. */
  readonly batchSize: number;
  /** Vector sizes the model can return. */
  readonly dimensions: readonly number[];
  /** Characters of one text the model accepts (longer ones are refused or truncated). */
  readonly maxCharacters: number;
}

/** The embedding model behind a Bedrock model id, or undefined when it is not one the knowledge base supports. */
export function embeddingModel(modelId: string): EmbeddingModel | undefined {
  if (/^amazon\.titan-embed-text-v2(:\d+)?$/.test(modelId)) {
    return { modelId, family: 'titan-v2', batchSize: 1, dimensions: [256, 512, 1024], maxCharacters: 50_000 };
  }
  if (/^amazon\.titan-embed-text-v1(:\d+)?$/.test(modelId)) {
    return { modelId, family: 'titan-v1', batchSize: 1, dimensions: [1536], maxCharacters: 50_000 };
  }
  if (/^cohere\.embed-(english|multilingual)-v3(:\d+)?$/.test(modelId)) {
    return { modelId, family: 'cohere-v3', batchSize: 96, dimensions: [1024], maxCharacters: 2048 };
  }
  return undefined;
}

export const SUPPORTED_EMBEDDING_MODELS = ['amazon.titan-embed-text-v2:0', 'amazon.titan-embed-text-v1', 'cohere.embed-english-v3', 'cohere.embed-multilingual-v3'];

/** Splits texts into the batches one InvokeModel call of the model takes. */
export function embeddingBatches<T>(model: EmbeddingModel, items: readonly T[]): T[][] {
  const batches: T[][] = [];
  for (let i = 0; i < items.length; i += model.batchSize) batches.push(items.slice(i, i + model.batchSize));
  return batches;
}

/** The InvokeModel body that embeds `texts` (one text for Titan, up to 96 for Cohere). */
export function embeddingRequestBody(model: EmbeddingModel, texts: readonly string[], dimension: number, purpose: EmbeddingPurpose): Record<string, unknown> {
  if (texts.length === 0 || texts.length > model.batchSize) {
    throw new Error(`${model.modelId} embeds 1 to ${model.batchSize} texts per call; got ${texts.length}`);
  }
  switch (model.family) {
    case 'titan-v2':
      return { inputText: texts[0], dimensions: dimension, normalize: true };
    case 'titan-v1':
      return { inputText: texts[0] };
    case 'cohere-v3':
      return { texts: [...texts], input_type: purpose === 'query' ? 'search_query' : 'search_document', truncate: 'END' };
  }
}

/** The vectors of an InvokeModel response body, checked for count and dimension. */
export function parseEmbeddingResponse(model: EmbeddingModel, body: unknown, expectedCount: number, dimension: number): number[][] {
  const record = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const vectors = model.family === 'cohere-v3' ? record.embeddings : record.embedding === undefined ? undefined : [record.embedding];
  if (!Array.isArray(vectors) || vectors.length !== expectedCount) {
    throw new Error(`${model.modelId} returned ${Array.isArray(vectors) ? vectors.length : 'no'} embeddings for ${expectedCount} texts`);
  }
  return vectors.map((vector, index) => {
    if (!Array.isArray(vector) || vector.length !== dimension || !vector.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw new Error(`${model.modelId} returned embedding ${index} with ${Array.isArray(vector) ? vector.length : 0} finite numbers; the index expects ${dimension}`);
    }
    return vector as number[];
  });
}
