// Runs the endpoint-weights custom resource handler (source via swc, and the esbuild bundle) the way
// CloudFormation does: an event with a pre-signed response URL (here a local HTTP server that records
// what it is sent), against moto's SageMaker, and against a local stand-in speaking SageMaker's JSON 1.1
// protocol for what moto cannot do (an endpoint that stays Updating, fails, or throttles).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import { createEndpoint, endpointWeights } from '../lib/experiments/moto-world';
import { captureOutput, handlerModulePaths, loadFreshHandler, logEntries, useHandlerEnv } from '../support/handler-harness';
import { startMoto, type MotoServer } from '../support/moto';

type Handler = (event: CloudFormationCustomResourceEvent, context?: Context) => Promise<void>;
const { source: HANDLER_SOURCE, bundle: HANDLER_BUNDLE } = handlerModulePaths('endpoint-weights');
const setEnv = useHandlerEnv(['AWS_ENDPOINT_URL_SAGEMAKER', 'WEIGHTS_POLL_SECONDS', 'POWERTOOLS_SERVICE_NAME'], { WEIGHTS_POLL_SECONDS: '0.02' });

interface Listening {
  readonly url: string;
  close(): Promise<void>;
}

async function listen(handle: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<Listening & { server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handle(req, Buffer.concat(chunks).toString('utf8'), res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** CloudFormation's side: records each answer PUT to the response URL; can refuse the first ones. */
class ResponseUrl {
  readonly answers: Array<{ method: string; contentType: string | undefined; body: Record<string, unknown> }> = [];
  refuseNext = 0;
  private listening!: Listening;

  async start(): Promise<void> {
    this.listening = await listen((req, body, res) => {
      if (this.refuseNext > 0) {
        this.refuseNext -= 1;
        res.writeHead(503).end();
        return;
      }
      this.answers.push({ method: req.method ?? '', contentType: req.headers['content-type'], body: JSON.parse(body) as Record<string, unknown> });
      res.writeHead(200).end();
    });
  }

  get url(): string {
    return `${this.listening.url}/cloudformation-response?signature=abc`;
  }

  last(): Record<string, unknown> {
    const answer = this.answers.at(-1);
    if (answer === undefined) throw new Error('the handler sent CloudFormation no answer');
    return answer.body;
  }

  stop(): Promise<void> {
    return this.listening.close();
  }
}

const context = (remainingMs = 60_000): Context => ({ getRemainingTimeInMillis: () => remainingMs }) as unknown as Context;

function event(
  responseUrl: string,
  requestType: 'Create' | 'Update' | 'Delete',
  endpointName: string,
  weights: Record<string, number>,
  oldWeights?: Record<string, number>,
): CloudFormationCustomResourceEvent {
  const properties = (values: Record<string, number>) => ({
    ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:weights',
    EndpointName: endpointName,
    // CloudFormation hands every number of a custom resource's properties over as a string.
    Weights: Object.entries(values).map(([VariantName, weight]) => ({ VariantName, DesiredWeight: String(weight) })),
  });
  const common = {
    ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:weights',
    ResponseURL: responseUrl,
    StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/MlPlatform-prod-churn/1',
    RequestId: `request-${Math.random().toString(36).slice(2)}`,
    LogicalResourceId: 'ModelchurnDeclaredWeights',
    ResourceType: 'Custom::EndpointWeights',
    ResourceProperties: properties(weights),
  };
  if (requestType === 'Create') return { ...common, RequestType: 'Create' };
  if (requestType === 'Delete') return { ...common, RequestType: 'Delete', PhysicalResourceId: `${endpointName}/weights` };
  return { ...common, RequestType: 'Update', PhysicalResourceId: `${endpointName}/weights`, OldResourceProperties: properties(oldWeights ?? weights) };
}

describe.each([
  ['source', HANDLER_SOURCE],
  ['bundle', HANDLER_BUNDLE],
])('endpoint-weights handler (%s) against moto SageMaker', (_kind, path) => {
  let moto: MotoServer;
  let cloudformation: ResponseUrl;
  let handler: Handler;

  beforeAll(async () => {
    moto = await startMoto();
    cloudformation = new ResponseUrl();
    await cloudformation.start();
    setEnv({ AWS_ENDPOINT_URL_SAGEMAKER: moto.endpoint });
    handler = loadFreshHandler<Handler>(path);
  }, 30_000);
  afterAll(async () => {
    await cloudformation?.stop();
    await moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    // The split a promotion step left behind, not the 95/5 the props declare.
    await createEndpoint(moto, 'churn', [
      { name: 'champion', weight: 1 },
      { name: 'challenger', weight: 9 },
    ]);
  });

  test('create answers SUCCESS and leaves the endpoint\'s weights alone', async () => {
    await captureOutput(() => handler(event(cloudformation.url, 'Create', 'churn', { champion: 95, challenger: 5 }), context()));
    expect(cloudformation.last()).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'churn/weights', LogicalResourceId: 'ModelchurnDeclaredWeights' });
    expect(cloudformation.answers.at(-1)).toMatchObject({ method: 'PUT', contentType: '' });
    expect(await endpointWeights(moto, 'churn')).toEqual({ champion: 1, challenger: 9 });
  });

  test('an update whose declared weights did not change keeps the run-time weights', async () => {
    const { lines } = await captureOutput(() => handler(event(cloudformation.url, 'Update', 'churn', { champion: 95, challenger: 5 }, { challenger: 5, champion: 95 }), context()));
    expect(cloudformation.last()).toMatchObject({ Status: 'SUCCESS', Reason: expect.stringContaining('deployed weights are kept') });
    expect(await endpointWeights(moto, 'churn')).toEqual({ champion: 1, challenger: 9 });
    expect(logEntries(lines, 'INFO')).toEqual([expect.objectContaining({ message: 'endpoint weights', requestType: 'Update', status: 'SUCCESS' })]);
  });

  test('an update with changed declared weights applies them', async () => {
    await captureOutput(() => handler(event(cloudformation.url, 'Update', 'churn', { champion: 50, challenger: 50 }, { champion: 95, challenger: 5 }), context()));
    expect(cloudformation.last()).toMatchObject({ Status: 'SUCCESS', Data: { Weights: 'champion=50 challenger=50' } });
    expect(await endpointWeights(moto, 'churn')).toEqual({ champion: 50, challenger: 50 });
  });

  test('declared weights naming a variant the endpoint lacks fail, naming it, and change nothing', async () => {
    await captureOutput(() => handler(event(cloudformation.url, 'Update', 'churn', { champion: 1, explorer: 1 }, { champion: 95, challenger: 5 }), context()));
    expect(cloudformation.last()).toMatchObject({ Status: 'FAILED', Reason: expect.stringMatching(/no production variant explorer \(it has champion, challenger\)/) });
    expect(await endpointWeights(moto, 'churn')).toEqual({ champion: 1, challenger: 9 });
  });

  test('an endpoint that does not exist fails with SageMaker\'s message', async () => {
    await captureOutput(() => handler(event(cloudformation.url, 'Update', 'gone', { a: 1 }, { a: 2 }), context()));
    expect(cloudformation.last()).toMatchObject({ Status: 'FAILED', Reason: expect.stringContaining('gone') });
  });

  test('properties that do not parse fail, naming the field; delete always succeeds', async () => {
    const bad = event(cloudformation.url, 'Update', 'churn', { champion: 1 });
    (bad.ResourceProperties as unknown as { Weights: unknown }).Weights = [{ VariantName: 'champion', DesiredWeight: 'lots' }];
    await captureOutput(() => handler(bad, context()));
    expect(cloudformation.last()).toMatchObject({ Status: 'FAILED', Reason: expect.stringContaining('ResourceProperties.Weights[0].DesiredWeight') });
    await captureOutput(() => handler(event(cloudformation.url, 'Delete', 'churn', { champion: 1 }), context()));
    expect(cloudformation.last()).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'churn/weights' });
    expect(await endpointWeights(moto, 'churn')).toEqual({ champion: 1, challenger: 9 });
  });

  test('a response URL that refuses twice gets the answer on the third try', async () => {
    cloudformation.refuseNext = 2;
    const before = cloudformation.answers.length;
    await captureOutput(() => handler(event(cloudformation.url, 'Create', 'churn', { champion: 1, challenger: 1 }), context()));
    expect(cloudformation.answers.length).toBe(before + 1);
    expect(cloudformation.last()).toMatchObject({ Status: 'SUCCESS' });
  });
});

/**
 * SageMaker's DescribeEndpoint and UpdateEndpointWeightsAndCapacities over JSON 1.1, scripted: the
 * statuses DescribeEndpoint reports in turn (the last one repeats), and errors for the weight update.
 */
class SageMakerStandIn {
  statuses: Array<{ status: string; failureReason?: string }> = [];
  updateErrors: Array<{ status: number; type: string; message: string }> = [];
  readonly calls: Array<{ target: string; body: Record<string, unknown> }> = [];
  private listening!: Listening;

  async start(): Promise<void> {
    this.listening = await listen((req, body, res) => {
      const target = String(req.headers['x-amz-target'] ?? '').replace(/^SageMaker\./, '');
      const input = JSON.parse(body || '{}') as Record<string, unknown>;
      this.calls.push({ target, body: input });
      const reply = (status: number, payload: unknown, errorType?: string) => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', ...(errorType ? { 'x-amzn-errortype': errorType } : {}) }).end(JSON.stringify(payload));
      };
      if (target === 'DescribeEndpoint') {
        const next = this.statuses.length > 1 ? this.statuses.shift()! : this.statuses[0];
        reply(200, {
          EndpointName: input.EndpointName,
          EndpointArn: `arn:aws:sagemaker:us-east-1:123456789012:endpoint/${String(input.EndpointName)}`,
          EndpointConfigName: 'config',
          EndpointStatus: next.status,
          ...(next.failureReason ? { FailureReason: next.failureReason } : {}),
          CreationTime: 1_700_000_000,
          LastModifiedTime: 1_700_000_000,
          ProductionVariants: [{ VariantName: 'champion' }, { VariantName: 'challenger' }],
        });
      } else if (target === 'UpdateEndpointWeightsAndCapacities') {
        const error = this.updateErrors.shift();
        if (error) reply(error.status, { __type: error.type, message: error.message }, error.type);
        else reply(200, { EndpointArn: `arn:aws:sagemaker:us-east-1:123456789012:endpoint/${String(input.EndpointName)}` });
      } else {
        reply(400, { __type: 'UnknownOperationException', message: target }, 'UnknownOperationException');
      }
    });
  }

  get url(): string {
    return this.listening.url;
  }

  targets(): string[] {
    return this.calls.map((call) => call.target);
  }

  stop(): Promise<void> {
    return this.listening.close();
  }
}

describe('endpoint-weights handler (bundle) when SageMaker is slow, fails or throttles', () => {
  let sagemaker: SageMakerStandIn;
  let cloudformation: ResponseUrl;
  let handler: Handler;
  const changed = () => event(cloudformation.url, 'Update', 'churn', { champion: 50, challenger: 50 }, { champion: 95, challenger: 5 });

  beforeAll(async () => {
    sagemaker = new SageMakerStandIn();
    await sagemaker.start();
    cloudformation = new ResponseUrl();
    await cloudformation.start();
    setEnv({ AWS_ENDPOINT_URL_SAGEMAKER: sagemaker.url, AWS_MAX_ATTEMPTS: '2' });
    handler = loadFreshHandler<Handler>(HANDLER_BUNDLE);
  });
  afterAll(async () => {
    await sagemaker?.stop();
    await cloudformation?.stop();
  });
  beforeEach(() => {
    sagemaker.calls.length = 0;
    sagemaker.updateErrors = [];
  });

  test('waits while a workflow is still updating the endpoint, then applies the weights and waits again', async () => {
    sagemaker.statuses = [{ status: 'Updating' }, { status: 'Updating' }, { status: 'InService' }, { status: 'Updating' }, { status: 'InService' }];
    await captureOutput(() => handler(changed(), context()));
    expect(cloudformation.last()).toMatchObject({ Status: 'SUCCESS', Reason: expect.stringContaining('applied champion=50 challenger=50') });
    expect(sagemaker.targets()).toEqual(['DescribeEndpoint', 'DescribeEndpoint', 'DescribeEndpoint', 'UpdateEndpointWeightsAndCapacities', 'DescribeEndpoint', 'DescribeEndpoint']);
    expect(sagemaker.calls[3].body).toEqual({
      EndpointName: 'churn',
      DesiredWeightsAndCapacities: [
        { VariantName: 'champion', DesiredWeight: 50 },
        { VariantName: 'challenger', DesiredWeight: 50 },
      ],
    });
  });

  test('an endpoint that fails answers FAILED with SageMaker\'s reason', async () => {
    sagemaker.statuses = [{ status: 'Failed', failureReason: 'the model container did not pass the ping health check' }];
    await captureOutput(() => handler(changed(), context()));
    expect(cloudformation.last()).toMatchObject({ Status: 'FAILED', Reason: expect.stringContaining('is Failed: the model container did not pass the ping health check') });
    expect(sagemaker.targets()).not.toContain('UpdateEndpointWeightsAndCapacities');
  });

  test('one throttled weight update is retried by the SDK; throttling every time answers FAILED with the error', async () => {
    sagemaker.statuses = [{ status: 'InService' }];
    sagemaker.updateErrors = [{ status: 400, type: 'ThrottlingException', message: 'Rate exceeded' }];
    await captureOutput(() => handler(changed(), context()));
    expect(cloudformation.last()).toMatchObject({ Status: 'SUCCESS' });
    expect(sagemaker.targets().filter((target) => target === 'UpdateEndpointWeightsAndCapacities')).toHaveLength(2);

    sagemaker.calls.length = 0;
    sagemaker.updateErrors = [1, 2].map(() => ({ status: 400, type: 'ThrottlingException', message: 'Rate exceeded' }));
    await captureOutput(() => handler(changed(), context()));
    expect(cloudformation.last()).toMatchObject({ Status: 'FAILED', Reason: 'ThrottlingException: Rate exceeded' });
  }, 20_000);

  test('answers before the function\'s time runs out: FAILED when it never got to set the weights, SUCCESS once it did', async () => {
    sagemaker.statuses = [{ status: 'Updating' }];
    await captureOutput(() => handler(changed(), context(20_100)));
    expect(cloudformation.last()).toMatchObject({ Status: 'FAILED', Reason: expect.stringContaining('stayed Updating') });
    expect(sagemaker.targets()).not.toContain('UpdateEndpointWeightsAndCapacities');

    sagemaker.calls.length = 0;
    sagemaker.statuses = [{ status: 'InService' }, { status: 'Updating' }];
    await captureOutput(() => handler(changed(), context(20_100)));
    expect(cloudformation.last()).toMatchObject({ Status: 'SUCCESS', Reason: expect.stringContaining('still Updating when the function answered') });
  });

  test('SageMaker that cannot be reached answers FAILED rather than leaving CloudFormation waiting', async () => {
    const closed = new SageMakerStandIn();
    await closed.start();
    const url = closed.url;
    await closed.stop();
    setEnv({ AWS_ENDPOINT_URL_SAGEMAKER: url, AWS_MAX_ATTEMPTS: '1' });
    const unreachable = loadFreshHandler<Handler>(HANDLER_BUNDLE);
    await captureOutput(() => unreachable(changed(), context()));
    expect(cloudformation.last()).toMatchObject({ Status: 'FAILED', Reason: expect.stringMatching(/ECONNREFUSED|connect/) });
    setEnv({ AWS_ENDPOINT_URL_SAGEMAKER: sagemaker.url, AWS_MAX_ATTEMPTS: '2' });
  });
});
