// Embedding with Bedrock InvokeModel, shared by lambda/ingest-documents and lambda/rag-query.
import { BedrockRuntimeClient, InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime';
import { embeddingBatches, embeddingRequestBody, parseEmbeddingResponse, type EmbeddingModel, type EmbeddingPurpose } from '../shared/embeddings';

/** Embeds texts in the batches the model allows, one InvokeModel call per batch, in order. */
export async function embedTexts(
  bedrock: BedrockRuntimeClient,
  model: EmbeddingModel,
  texts: readonly string[],
  dimension: number,
  purpose: EmbeddingPurpose,
): Promise<number[][]> {
  const vectors: number[][] = [];
  for (const batch of embeddingBatches(model, texts)) {
    const response = await bedrock.send(
      new InvokeModelCommand({
        modelId: model.modelId,
        contentType: 'application/json',
        accept: 'application/json',
        body: JSON.stringify(embeddingRequestBody(model, batch, dimension, purpose)),
      }),
    );
    const body = JSON.parse(new TextDecoder().decode(response.body)) as unknown;
    vectors.push(...parseEmbeddingResponse(model, body, batch.length, dimension));
  }
  return vectors;
}
