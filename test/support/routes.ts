// Test helper: the model routes the inference handlers read, one SSM parameter per model
// (`<prefix><model>`, as InferenceRoute writes them).
//
//   const vars = await putRouteParameters(moto.endpoint, '/invoke-test/', { churn: { endpointName: 'e', variants: {...} } });
//   setEnv({ ...vars });   // ROUTES_PARAMETER_PREFIX and AWS_ENDPOINT_URL_SSM
//
// A string value is written as it is (for routes that are not valid JSON or not a valid route).
// `startFakeSsm` is a local stand-in speaking SSM's JSON wire protocol (awsJson1_1) for what moto
// cannot be made to do on cue: throttle, fail, answer slowly or go away.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { sdkTestConfig } from './moto';

/** The handler variables that point it at routes written by {@link putRouteParameters}. */
export interface RouteParameterEnv {
  readonly ROUTES_PARAMETER_PREFIX: string;
  readonly AWS_ENDPOINT_URL_SSM: string;
}

/** Writes each model's route as the String parameter `<prefix><model>` at `endpoint` (moto). */
export async function putRouteParameters(endpoint: string, prefix: string, routes: Readonly<Record<string, unknown>>): Promise<RouteParameterEnv> {
  const ssm = new SSMClient(sdkTestConfig(endpoint));
  try {
    for (const [model, route] of Object.entries(routes)) {
      const value = typeof route === 'string' ? route : JSON.stringify(route);
      await ssm.send(new PutParameterCommand({ Name: `${prefix}${model}`, Value: value, Type: 'String', Overwrite: true }));
    }
  } finally {
    ssm.destroy();
  }
  return { ROUTES_PARAMETER_PREFIX: prefix, AWS_ENDPOINT_URL_SSM: endpoint };
}

/** How the fake answers the next GetParameter. */
export type FakeSsmMode = 'ok' | 'throttle' | 'error' | 'slow';

export interface FakeSsm {
  readonly endpoint: string;
  /** Names asked for, in order. */
  readonly requests: string[];
  mode: FakeSsmMode;
  /** Closes the server: the store goes away (connections are refused from then on). */
  close(): Promise<void>;
}

/**
 * A GetParameter server over SSM's awsJson1_1 protocol, answering from `parameters` (name to value;
 * a missing name is ParameterNotFound). `slow` answers after `slowMs`.
 */
export async function startFakeSsm(parameters: Readonly<Record<string, string>>, slowMs = 1_500): Promise<FakeSsm> {
  const requests: string[] = [];
  const json = { 'content-type': 'application/x-amz-json-1.1' };
  const fail = (res: import('node:http').ServerResponse, status: number, type: string, message: string) => {
    res.writeHead(status, { ...json, 'x-amzn-requestid': 'fake' });
    res.end(JSON.stringify({ __type: type, message }));
  };
  const state: { mode: FakeSsmMode } = { mode: 'ok' };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.headers['x-amz-target'] !== 'AmazonSSM.GetParameter') {
        fail(res, 400, 'InvalidAction', `unsupported target ${String(req.headers['x-amz-target'])}`);
        return;
      }
      const { Name: name } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { Name: string };
      requests.push(name);
      const answer = () => {
        const value = parameters[name];
        if (value === undefined) {
          fail(res, 400, 'ParameterNotFound', '');
          return;
        }
        res.writeHead(200, json);
        res.end(JSON.stringify({ Parameter: { Name: name, Type: 'String', Value: value, Version: 1, DataType: 'text' } }));
      };
      switch (state.mode) {
        case 'throttle':
          fail(res, 400, 'ThrottlingException', 'Rate exceeded');
          return;
        case 'error':
          fail(res, 500, 'InternalServerError', 'An internal error occurred');
          return;
        case 'slow':
          setTimeout(() => {
            if (!res.destroyed) answer();
          }, slowMs).unref();
          return;
        default:
          answer();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    get mode() {
      return state.mode;
    },
    set mode(mode: FakeSsmMode) {
      state.mode = mode;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
