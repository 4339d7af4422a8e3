// The prediction cache's shared tier (lambda/invoke/cache-store.ts) over the DynamoDB wire protocol
// against moto, and the two tiers together when the table goes away or DynamoDB cannot be reached.
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDbCacheStore } from '../../lambda/invoke/cache-store';
import { ByteLru, TieredPredictionCache, type CachedPrediction } from '../../lambda/shared/prediction-cache';
import { freePort, sdkTestConfig, startMoto, type MotoServer } from '../support/moto';

const TABLE = 'prediction-cache';
const ENTRY: CachedPrediction = { body: '{"score":0.91}', contentType: 'application/json', variant: 'champion', modelVersion: '7.0.0', cachedAt: 1_700_000_000_000, expiresAt: 1_700_000_300_500 };

describe('DynamoDbCacheStore against moto DynamoDB', () => {
  let moto: MotoServer;
  let client: DynamoDBClient;
  beforeAll(async () => {
    moto = await startMoto();
    client = new DynamoDBClient({ ...sdkTestConfig(moto.endpoint), maxAttempts: 1 });
  }, 30_000);
  afterAll(async () => moto?.stop());
  beforeEach(async () => {
    await moto.reset();
    await client.send(
      new CreateTableCommand({ TableName: TABLE, BillingMode: 'PAY_PER_REQUEST', AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }] }),
    );
  });

  test('stores an answer as one item with a TTL in seconds, and reads it back', async () => {
    const store = new DynamoDbCacheStore(client, TABLE);
    expect(await store.get('k')).toBeUndefined();
    await store.put('k', ENTRY);
    expect(await store.get('k')).toEqual(ENTRY);
    const { Item } = await client.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'k' } } }));
    expect(Item?.ttl).toEqual({ N: '1700000301' });
  });

  test('an item it did not write is no answer', async () => {
    await client.send(new PutItemCommand({ TableName: TABLE, Item: { pk: { S: 'k' }, body: { S: 'x' } } }));
    expect(await new DynamoDbCacheStore(client, TABLE).get('k')).toBeUndefined();
  });

  test('the table going away degrades the cache to misses, reported, and memory still serves', async () => {
    const errors: string[] = [];
    const cache = new TieredPredictionCache({
      memory: new ByteLru(1 << 20),
      shared: new DynamoDbCacheStore(client, TABLE),
      ttlMs: 300_000,
      sharedTimeoutMs: 2_000,
      onSharedError: (operation, error) => errors.push(`${operation} ${(error as Error).name}`),
    });
    await cache.store('warm', ENTRY);
    await client.send(new DeleteTableCommand({ TableName: TABLE }));
    expect(await cache.lookup('cold')).toBeUndefined();
    expect(await cache.store('new', ENTRY)).toMatchObject({ body: ENTRY.body });
    expect(await cache.lookup('warm')).toMatchObject({ tier: 'memory' });
    expect(errors).toEqual(['get ResourceNotFoundException', 'put ResourceNotFoundException']);
  });
});

test('a DynamoDB that cannot be reached is a miss, not an error', async () => {
  const port = await freePort();
  const client = new DynamoDBClient({ ...sdkTestConfig(`http://127.0.0.1:${port}`), maxAttempts: 1 });
  const errors: string[] = [];
  const cache = new TieredPredictionCache({ memory: new ByteLru(1 << 20), shared: new DynamoDbCacheStore(client, TABLE), ttlMs: 1_000, sharedTimeoutMs: 2_000, onSharedError: (operation) => errors.push(operation) });
  expect(await cache.lookup('k')).toBeUndefined();
  expect(errors).toEqual(['get']);
});
