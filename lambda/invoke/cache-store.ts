// The shared tier of the prediction cache: one DynamoDB item per cache key (lambda/shared/prediction-cache.ts).
//
// Item: pk (S, the key), body, contentType, variant, modelVersion (S), cachedAt, expiresAt (N, ms since the
// epoch) and ttl (N, seconds since the epoch: the table's TTL attribute). DynamoDB deletes expired items
// within days, not at once, so a read also checks expiresAt.
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { CachedPrediction, SharedCacheStore } from '../shared/prediction-cache';

export class DynamoDbCacheStore implements SharedCacheStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async get(key: string): Promise<CachedPrediction | undefined> {
    const { Item: item } = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: { pk: { S: key } } }));
    if (item === undefined) return undefined;
    const text = (name: string): string | undefined => item[name]?.S;
    const number = (name: string): number | undefined => (item[name]?.N === undefined ? undefined : Number(item[name]?.N));
    const body = text('body');
    const contentType = text('contentType');
    const variant = text('variant');
    const modelVersion = text('modelVersion');
    const cachedAt = number('cachedAt');
    const expiresAt = number('expiresAt');
    // An item this code did not write (or a half-written one) is no answer.
    if (body === undefined || contentType === undefined || variant === undefined || modelVersion === undefined || cachedAt === undefined || expiresAt === undefined) return undefined;
    return { body, contentType, variant, modelVersion, cachedAt, expiresAt };
  }

  async put(key: string, entry: CachedPrediction): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: {
          pk: { S: key },
          body: { S: entry.body },
          contentType: { S: entry.contentType },
          variant: { S: entry.variant },
          modelVersion: { S: entry.modelVersion },
          cachedAt: { N: String(entry.cachedAt) },
          expiresAt: { N: String(entry.expiresAt) },
          ttl: { N: String(Math.ceil(entry.expiresAt / 1000)) },
        },
      }),
    );
  }
}
