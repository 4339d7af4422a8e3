// The read side of precomputed predictions (lambda/invoke/precomputed-store.ts) over the DynamoDB wire
// protocol against moto: what the loader writes reads back, anything else is no answer, and errors reach
// the caller (which bounds the wait and asks the model instead).
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDbPrecomputedStore } from '../../lambda/invoke/precomputed-store';
import { precomputedKey, toPrecomputedItem, type PrecomputedPrediction } from '../../lambda/shared/precomputed';
import { freePort, sdkTestConfig, startMoto, type MotoServer } from '../support/moto';

const TABLE = 'inference-state';
const ANSWER: PrecomputedPrediction = { body: '{"score":0.91}', contentType: 'application/json', modelVersion: '7', computedAt: 1_700_000_000_000 };
const KEY = precomputedKey('churn', 'customers', 'c#1');
/** A clock inside the answer's TTL (a day after it was computed). */
const duringTtl = () => ANSWER.computedAt + 3_600_000;

describe('DynamoDbPrecomputedStore against moto DynamoDB', () => {
  let moto: MotoServer;
  let client: DynamoDBClient;
  beforeAll(async () => {
    moto = await startMoto();
    client = new DynamoDBClient({ ...sdkTestConfig(moto.endpoint), maxAttempts: 1 });
  }, 30_000);
  afterAll(async () => {
    client?.destroy();
    await moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    await client.send(
      new CreateTableCommand({ TableName: TABLE, BillingMode: 'PAY_PER_REQUEST', AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }] }),
    );
  });

  const put = (item: Record<string, { S: string } | { N: string }>) => client.send(new PutItemCommand({ TableName: TABLE, Item: item }));

  test('reads back the item the loader writes', async () => {
    const store = new DynamoDbPrecomputedStore(client, TABLE, duringTtl);
    expect(await store.get(KEY)).toBeUndefined();
    await put(toPrecomputedItem(KEY, ANSWER, 86_400));
    expect(await store.get(KEY)).toEqual(ANSWER);
    expect(await store.get(precomputedKey('churn', 'customers', 'c#2'))).toBeUndefined();
  });

  test('an item whose ttl has passed is no answer, though DynamoDB has not deleted it yet', async () => {
    await put(toPrecomputedItem(KEY, ANSWER, 60));
    expect(await new DynamoDbPrecomputedStore(client, TABLE, () => ANSWER.computedAt + 61_000).get(KEY)).toBeUndefined();
  });

  test.each([
    ['a body only', { pk: { S: KEY }, body: { S: 'x' } }],
    ['computedAt as a string', { ...toPrecomputedItem(KEY, ANSWER, 86_400), computedAt: { S: '1700000000000' } }],
    ['a cache entry', { pk: { S: KEY }, body: { S: 'x' }, contentType: { S: 'application/json' }, variant: { S: 'champion' }, modelVersion: { S: '7' }, cachedAt: { N: '1' }, expiresAt: { N: '2' } }],
  ])('an item it did not write is no answer: %s', async (_name, item) => {
    await put(item);
    expect(await new DynamoDbPrecomputedStore(client, TABLE, duringTtl).get(KEY)).toBeUndefined();
  });

  test('reads eventually consistently, and lets a missing table reach the caller', async () => {
    const sent: unknown[] = [];
    client.middlewareStack.add((next) => async (args) => {
      sent.push(args.input);
      return next(args);
    }, { step: 'initialize', name: 'recordInput' });
    const store = new DynamoDbPrecomputedStore(client, TABLE, duringTtl);
    await store.get(KEY);
    expect(sent).toEqual([{ TableName: TABLE, Key: { pk: { S: KEY } }, ConsistentRead: false }]);
    client.middlewareStack.remove('recordInput');
    await client.send(new DeleteTableCommand({ TableName: TABLE }));
    await expect(store.get(KEY)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });
});

test('a DynamoDB that cannot be reached is an error for the caller to handle', async () => {
  const port = await freePort();
  const client = new DynamoDBClient({ ...sdkTestConfig(`http://127.0.0.1:${port}`), maxAttempts: 1 });
  await expect(new DynamoDbPrecomputedStore(client, TABLE).get(KEY)).rejects.toThrow();
  client.destroy();
});
