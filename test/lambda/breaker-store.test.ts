// The circuit breakers' shared state in DynamoDB (lambda/invoke/breaker-store.ts) over the wire protocol,
// against moto with atomic conditional writes (test/support/moto_server_ext.py): concurrent instances
// agree on every transition, and only `probes` probes are claimed however many instances ask.
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDbBreakerStore } from '../../lambda/invoke/breaker-store';
import { CircuitBreaker, type BreakerPolicy } from '../../lambda/shared/circuit-breaker';
import { sdkTestConfig, startMoto, type MotoServer } from '../support/moto';

const TABLE = 'inference-state';
const POLICY: BreakerPolicy = { windowMs: 10_000, failureRateThreshold: 0.5, minimumCalls: 4, coolDownMs: 5_000, probes: 2, refreshMs: 0 };

describe('DynamoDbBreakerStore against moto DynamoDB', () => {
  let moto: MotoServer;
  let client: DynamoDBClient;
  beforeAll(async () => {
    moto = await startMoto({ extended: true });
    client = new DynamoDBClient({ ...sdkTestConfig(moto.endpoint), maxAttempts: 1 });
  }, 30_000);
  afterAll(async () => moto?.stop());
  beforeEach(async () => {
    await client.send(new DeleteTableCommand({ TableName: TABLE })).catch(() => undefined);
    await client.send(new CreateTableCommand({ TableName: TABLE, BillingMode: 'PAY_PER_REQUEST', AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }] }));
  });

  test('writes each transition only over the version it saw, and reads back what it wrote', async () => {
    const store = new DynamoDbBreakerStore(client, TABLE);
    expect(await store.read('churn-endpoint')).toBeUndefined();
    expect(await store.write('churn-endpoint', { status: 'open', version: 1, openedAt: 1234 }, 0)).toBe(true);
    expect(await store.write('churn-endpoint', { status: 'open', version: 1, openedAt: 9999 }, 0)).toBe(false);
    expect(await store.read('churn-endpoint')).toEqual({ status: 'open', version: 1, openedAt: 1234 });
    expect(await store.write('churn-endpoint', { status: 'half-open', version: 2, probesLeft: 1 }, 1)).toBe(true);
    expect(await store.read('churn-endpoint')).toEqual({ status: 'half-open', version: 2, probesLeft: 1 });
    await client.send(new PutItemCommand({ TableName: TABLE, Item: { pk: { S: 'breaker#odd' }, status: { S: 'melted' }, version: { N: '3' } } }));
    expect(await store.read('odd')).toBeUndefined();
  });

  test('eight concurrent instances after the cool-down: exactly `probes` probes, the rest rejected; a good probe closes it for all', async () => {
    let now = 1_000_000;
    const instances = Array.from({ length: 8 }, () => new CircuitBreaker({ name: 'churn-endpoint', policy: POLICY, store: new DynamoDbBreakerStore(client, TABLE), now: () => now }));
    const [first] = instances;
    for (let i = 0; i < 4; i += 1) await first.record(await first.admission(), 'failure');
    expect(first.state.status).toBe('open');
    expect((await Promise.all(instances.map((instance) => instance.admission()))).map((admission) => admission.kind)).toEqual(Array(8).fill('reject'));
    now += POLICY.coolDownMs;
    const admissions = await Promise.all(instances.map((instance) => instance.admission()));
    const probes = admissions.map((admission, index) => ({ admission, index })).filter(({ admission }) => admission.kind === 'probe');
    expect(probes).toHaveLength(POLICY.probes);
    expect(admissions.filter((admission) => admission.kind === 'reject')).toHaveLength(8 - POLICY.probes);
    await instances[probes[0].index].record(probes[0].admission, 'success');
    expect((await Promise.all(instances.map((instance) => instance.admission()))).map((admission) => admission.kind)).toEqual(Array(8).fill('call'));
  });

  test('the table going away: each instance goes on with its own view', async () => {
    const errors: string[] = [];
    const breaker = new CircuitBreaker({ name: 'e', policy: POLICY, store: new DynamoDbBreakerStore(client, TABLE), onStoreError: (error) => errors.push((error as Error).name) });
    await client.send(new DeleteTableCommand({ TableName: TABLE }));
    expect((await breaker.admission()).kind).toBe('call');
    for (let i = 0; i < 4; i += 1) await breaker.record(await breaker.admission(), 'failure');
    expect((await breaker.admission()).kind).toBe('reject');
    expect(new Set(errors)).toEqual(new Set(['ResourceNotFoundException']));
  });
});
