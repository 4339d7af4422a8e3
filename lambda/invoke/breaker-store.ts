// The circuit breakers' shared state (lambda/shared/circuit-breaker.ts) in DynamoDB: one item per breaker,
// `pk` = `breaker#<endpoint>[/<variant>]`, written only with a condition on its version so that two
// function instances can never both win a transition (two probes claimed as one, say).
import { ConditionalCheckFailedException, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { BreakerStore, SharedBreakerState } from '../shared/circuit-breaker';

export class DynamoDbBreakerStore implements BreakerStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async read(name: string): Promise<SharedBreakerState | undefined> {
    const { Item: item } = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: { pk: { S: `breaker#${name}` } }, ConsistentRead: true }));
    if (item === undefined) return undefined;
    const version = Number(item.version?.N);
    if (!Number.isInteger(version)) return undefined;
    switch (item.status?.S) {
      case 'closed':
        return { status: 'closed', version };
      case 'open':
        return { status: 'open', version, openedAt: Number(item.openedAt?.N ?? 0) };
      case 'half-open':
        return { status: 'half-open', version, probesLeft: Number(item.probesLeft?.N ?? 0) };
      default:
        return undefined;
    }
  }

  async write(name: string, next: SharedBreakerState, expectedVersion: number): Promise<boolean> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: {
            pk: { S: `breaker#${name}` },
            status: { S: next.status },
            version: { N: String(next.version) },
            ...(next.status === 'open' ? { openedAt: { N: String(next.openedAt) } } : {}),
            ...(next.status === 'half-open' ? { probesLeft: { N: String(next.probesLeft) } } : {}),
          },
          ConditionExpression: expectedVersion === 0 ? 'attribute_not_exists(pk) OR version = :expected' : 'version = :expected',
          ExpressionAttributeValues: { ':expected': { N: String(expectedVersion) } },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException || (error as { name?: unknown })?.name === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }
}
