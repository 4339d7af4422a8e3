// The SSM side of the routes, over the real SDK wire protocol: moto for what it serves, the local
// stand-in for errors other than ParameterNotFound.
import { SSMClient } from '@aws-sdk/client-ssm';
import { ConfigError } from '../../../lambda/shared/inference';
import { routeParametersFromEnv, ssmRouteStore } from '../../../lambda/shared/route-parameters';
import { sdkTestConfig, startMoto, type MotoServer } from '../../support/moto';
import { putRouteParameters, startFakeSsm } from '../../support/routes';

const ROUTE = { endpointName: 'churn-endpoint', variants: { blue: { modelVersion: 'churn-v1' } } };

let moto: MotoServer;
let ssm: SSMClient;
beforeAll(async () => {
  moto = await startMoto();
  ssm = new SSMClient(sdkTestConfig(moto.endpoint));
  await putRouteParameters(moto.endpoint, '/cdk-ml-patterns/api/routes/', { churn: ROUTE });
}, 30_000);
afterAll(async () => {
  ssm?.destroy();
  await moto?.stop();
});

describe('ssmRouteStore', () => {
  test('reads <prefix><model> and answers undefined for a parameter that does not exist', async () => {
    const store = ssmRouteStore('/cdk-ml-patterns/api/routes/', ssm);

    expect(JSON.parse((await store.read('churn'))!)).toEqual(ROUTE);
    expect(await store.read('upsell')).toBeUndefined();
    expect(store.describe('churn')).toBe('SSM parameter /cdk-ml-patterns/api/routes/churn');
  });

  test('throws the SDK error for anything else, so the cache can tell an outage from a missing route', async () => {
    const fake = await startFakeSsm({});
    const client = new SSMClient({ ...sdkTestConfig(fake.endpoint), maxAttempts: 1 });
    try {
      fake.mode = 'throttle';
      await expect(ssmRouteStore('/p/', client).read('churn')).rejects.toMatchObject({ name: 'ThrottlingException' });
      fake.mode = 'error';
      await expect(ssmRouteStore('/p/', client).read('churn')).rejects.toMatchObject({ name: 'InternalServerError' });
      expect(fake.requests).toEqual(['/p/churn', '/p/churn']);
    } finally {
      client.destroy();
      await fake.close();
    }
  });
});

describe('routeParametersFromEnv', () => {
  const env = (vars: Record<string, string>): NodeJS.ProcessEnv => ({ AWS_REGION: 'us-east-1', ...vars });

  test.each([
    [{}, 'ROUTES_PARAMETER_PREFIX: is not set'],
    [{ ROUTES_PARAMETER_PREFIX: '  ' }, 'ROUTES_PARAMETER_PREFIX: is not set'],
    [{ ROUTES_PARAMETER_PREFIX: '/no/trailing' }, `ROUTES_PARAMETER_PREFIX: must start and end with '/' and hold only letters, digits and _ . - /; got "/no/trailing"`],
    [{ ROUTES_PARAMETER_PREFIX: 'no/leading/' }, `ROUTES_PARAMETER_PREFIX: must start and end with '/' and hold only letters, digits and _ . - /; got "no/leading/"`],
    [{ ROUTES_PARAMETER_PREFIX: '/sp ace/' }, `ROUTES_PARAMETER_PREFIX: must start and end with '/' and hold only letters, digits and _ . - /; got "/sp ace/"`],
    [{ ROUTES_PARAMETER_PREFIX: '/p/', ROUTE_CACHE_TTL_SECONDS: '-5' }, 'ROUTE_CACHE_TTL_SECONDS: must be a whole number of seconds from 0 to 86400; got "-5"'],
  ])('rejects %p with a message naming the variable', (vars, message) => {
    expect(() => routeParametersFromEnv(env(vars))).toThrow(new ConfigError(message));
  });

  test('serves the routes of the prefix from SSM', async () => {
    const source = routeParametersFromEnv(env({ ROUTES_PARAMETER_PREFIX: '/cdk-ml-patterns/api/routes/', AWS_ENDPOINT_URL_SSM: moto.endpoint }));
    const previous = { ...process.env };
    // The SDK reads credentials and the endpoint from the process environment.
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_SSM: moto.endpoint });
    try {
      expect(await source.route('churn')).toEqual(ROUTE);
      expect(await source.route('upsell')).toBeUndefined();
    } finally {
      for (const key of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION', 'AWS_ENDPOINT_URL_SSM']) {
        if (previous[key] === undefined) delete process.env[key];
        else process.env[key] = previous[key];
      }
    }
  });
});
