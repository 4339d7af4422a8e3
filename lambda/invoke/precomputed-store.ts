// The read side of precomputed predictions: the answers lambda/load-precomputed wrote into the state
// table after a batch run, one item per entity (lambda/shared/precomputed.ts has the key and the item).
//
// An eventually consistent read: the batch load happened minutes or hours before, so the last second of
// writes does not matter, and it costs half a strongly consistent one. The caller bounds the wait and
// decides what an error means (the model answers instead).
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { fromPrecomputedItem, type PrecomputedPrediction } from '../shared/precomputed';

export class DynamoDbPrecomputedStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The answer stored under `key` (precomputedKey), or undefined when there is none, the item is not one
   * the loader wrote, or its `ttl` has passed (DynamoDB deletes expired items within days, not at once).
   * Whether it is fresh enough to serve is the caller's call (isFresh). SDK errors propagate.
   */
  async get(key: string): Promise<PrecomputedPrediction | undefined> {
    const { Item: item } = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: { pk: { S: key } }, ConsistentRead: false }));
    return fromPrecomputedItem(item, this.now());
  }
}
