// lambda/sdk/credential-provider-node.ts: the credential chain the Lambda bundles use in place of the
// SDK's (scripts/build-lambdas.mjs aliases it): environment variables, then the container credentials
// endpoint, nothing else.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { credentialsTreatedAsExpired, defaultProvider } from '../../../lambda/sdk/credential-provider-node';
import { handlerModulePaths } from '../../support/handler-harness';

const KEYS = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
] as const;

describe('the Lambda bundles\' credential chain', () => {
  const saved = new Map(KEYS.map((key) => [key, process.env[key]]));
  let server: Server;
  let calls = 0;
  let endpoint = '';

  beforeAll(async () => {
    server = createServer((_req, res) => {
      calls += 1;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ AccessKeyId: 'AKIDCONTAINER', SecretAccessKey: 'container-secret', Token: 'container-token', Expiration: new Date(Date.now() + 3_600_000).toISOString() }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/creds`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    for (const [key, value] of saved) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });
  beforeEach(() => {
    for (const key of KEYS) delete process.env[key];
    calls = 0;
  });

  test('takes the function role\'s credentials from the environment, once', async () => {
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'AKIDENV', AWS_SECRET_ACCESS_KEY: 'env-secret', AWS_SESSION_TOKEN: 'env-token' });
    const provider = defaultProvider();
    await expect(provider()).resolves.toMatchObject({ accessKeyId: 'AKIDENV', secretAccessKey: 'env-secret', sessionToken: 'env-token' });
    process.env.AWS_ACCESS_KEY_ID = 'AKIDCHANGED';
    // Memoized, as the SDK's chain: credentials without an expiry are read once.
    await expect(provider()).resolves.toMatchObject({ accessKeyId: 'AKIDENV' });
  });

  test('falls back to the container credentials endpoint when the environment has none', async () => {
    process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI = endpoint;
    const provider = defaultProvider();
    await expect(provider()).resolves.toMatchObject({ accessKeyId: 'AKIDCONTAINER', secretAccessKey: 'container-secret', sessionToken: 'container-token' });
    await provider();
    expect(calls).toBe(1);
  });

  test('prefers the environment over the container endpoint', async () => {
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'AKIDENV', AWS_SECRET_ACCESS_KEY: 'env-secret', AWS_CONTAINER_CREDENTIALS_FULL_URI: endpoint });
    await expect(defaultProvider()()).resolves.toMatchObject({ accessKeyId: 'AKIDENV' });
    expect(calls).toBe(0);
  });

  test('ignores profiles and config files, and says what it reads when nothing is there', async () => {
    process.env.AWS_PROFILE = 'developer';
    await expect(defaultProvider()()).rejects.toThrow(/neither AWS_ACCESS_KEY_ID\/AWS_SECRET_ACCESS_KEY nor AWS_CONTAINER_CREDENTIALS_FULL_URI\/AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is set/);
  });

  test('treats credentials as expired five minutes before they expire', () => {
    expect(credentialsTreatedAsExpired({ accessKeyId: 'a', secretAccessKey: 'b', expiration: new Date(Date.now() + 4 * 60_000) })).toBe(true);
    expect(credentialsTreatedAsExpired({ accessKeyId: 'a', secretAccessKey: 'b', expiration: new Date(Date.now() + 6 * 60_000) })).toBe(false);
    expect(credentialsTreatedAsExpired({ accessKeyId: 'a', secretAccessKey: 'b' })).toBe(false);
  });
});

test.each(['invoke', 'record-outcome', 'detect-drift', 'rag-query'])('the %s bundle carries this chain and none of the SDK\'s other providers', (name) => {
  const bundle = readFileSync(handlerModulePaths(name).bundle, 'utf8');
  expect(bundle).toContain('a Lambda bundle reads only these');
  // The SDK's default chain logs these as it tries each provider.
  for (const provider of ['defaultProvider::fromSSO', 'defaultProvider::fromIni', 'defaultProvider::fromProcess', 'defaultProvider::fromTokenFile']) {
    expect(bundle).not.toContain(provider);
  }
});
