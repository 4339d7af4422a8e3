// CloudFormation custom resource (Custom::EndpointWeights) of ModelEndpoint: applies the traffic weights
// the construct's props declare, but only when they changed (lambda/shared/endpoint-weights.ts decides).
// The endpoint itself deploys with RetainAllVariantProperties, so every other update keeps the weights
// the endpoint has at run time: a champion–challenger promotion or rollback survives routine deploys.
//
// CloudFormation invokes the function asynchronously and waits for the answer at the event's pre-signed
// ResponseURL. The handler answers every event, its own failures included (FAILED with the reason), and
// answers before the function's timeout, so a stack operation never waits for CloudFormation's hour.
//
// Update with changed weights: wait until the endpoint is InService (a CloudFormation update of the
// endpoint has finished by then; a workflow may still be shifting traffic), check that every declared
// variant exists, UpdateEndpointWeightsAndCapacities, then wait until InService again. An endpoint that
// fails answers FAILED with SageMaker's FailureReason. When the time runs out after SageMaker accepted
// the weights, it answers SUCCESS saying the endpoint was still updating: the weights are set.
//
// Environment:
//   WEIGHTS_POLL_SECONDS     seconds between DescribeEndpoint calls (default 15)
//   POWERTOOLS_SERVICE_NAME  service name in the logs
//   AWS_ENDPOINT_URL_SAGEMAKER / AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS, AWS_REGION: read by the SDK itself
import { Logger } from '@aws-lambda-powertools/logger';
import { DescribeEndpointCommand, SageMakerClient, UpdateEndpointWeightsAndCapacitiesCommand } from '@aws-sdk/client-sagemaker';
import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import {
  customResourceResponse,
  endpointState,
  unknownVariants,
  weightsAction,
  type CustomResourceResponse,
  type VariantWeight,
} from '../shared/endpoint-weights';

const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'endpoint-weights' });
const sagemaker = new SageMakerClient({});

/** Answer this long before the function's timeout. */
const SAFETY_MARGIN_MS = 20_000;

function pollMs(): number {
  const raw = process.env.WEIGHTS_POLL_SECONDS?.trim();
  const seconds = raw === undefined || raw === '' ? 15 : Number(raw);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 15_000;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

class EndpointFailedError extends Error {
  public override readonly name = 'EndpointFailedError';
}

/** Waits until the endpoint is InService; false when the deadline came first. Returns its variants. */
async function waitInService(endpointName: string, deadline: number): Promise<{ ready: boolean; variants: string[]; status?: string }> {
  for (;;) {
    const described = await sagemaker.send(new DescribeEndpointCommand({ EndpointName: endpointName }));
    const status = described.EndpointStatus;
    const state = endpointState(status);
    const variants = (described.ProductionVariants ?? []).flatMap((variant) => (variant.VariantName === undefined ? [] : [variant.VariantName]));
    if (state === 'ready') return { ready: true, variants, status };
    if (state === 'failed') {
      throw new EndpointFailedError(`endpoint ${endpointName} is ${status ?? 'in an unknown state'}${described.FailureReason ? `: ${described.FailureReason}` : ''}`);
    }
    const wait = pollMs();
    if (Date.now() + wait >= deadline) return { ready: false, variants, status };
    await sleep(wait);
  }
}

async function applyWeights(endpointName: string, weights: readonly VariantWeight[], deadline: number): Promise<{ reason: string; data: Record<string, string> }> {
  const before = await waitInService(endpointName, deadline);
  if (!before.ready) {
    throw new Error(`endpoint ${endpointName} stayed ${before.status} until the function's time ran out; the declared weights were not applied: deploy again when it is InService`);
  }
  const missing = unknownVariants(weights, before.variants);
  if (missing.length > 0) {
    throw new Error(`Weights: endpoint ${endpointName} has no production variant ${missing.join(', ')} (it has ${before.variants.join(', ') || 'none'})`);
  }
  await sagemaker.send(
    new UpdateEndpointWeightsAndCapacitiesCommand({
      EndpointName: endpointName,
      DesiredWeightsAndCapacities: weights.map((weight) => ({ VariantName: weight.VariantName, DesiredWeight: weight.DesiredWeight })),
    }),
  );
  const applied = weights.map((weight) => `${weight.VariantName}=${weight.DesiredWeight}`).join(' ');
  const after = await waitInService(endpointName, deadline);
  return {
    reason: after.ready ? `applied ${applied}` : `applied ${applied}; the endpoint was still ${after.status} when the function answered`,
    data: { Weights: applied },
  };
}

/** PUTs the answer to the pre-signed URL CloudFormation gave (S3 in AWS, any HTTP server in tests). */
async function respond(url: string, body: CustomResourceResponse): Promise<void> {
  const text = JSON.stringify(body);
  for (let attempt = 1; ; attempt += 1) {
    try {
      // The pre-signed URL signs no content type: send none.
      const response = await fetch(url, { method: 'PUT', body: text, headers: { 'content-type': '', 'content-length': String(Buffer.byteLength(text)) } });
      if (response.ok) return;
      throw new Error(`the response URL answered ${response.status}`);
    } catch (error) {
      if (attempt >= 3) throw error;
      await sleep(500 * attempt);
    }
  }
}

export async function handler(event: CloudFormationCustomResourceEvent, context?: Context): Promise<void> {
  if (context !== undefined) logger.addContext(context);
  const deadline = Date.now() + (context === undefined ? 14 * 60_000 : context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS);
  let outcome: { status: 'SUCCESS' | 'FAILED'; reason: string; data?: Record<string, string> };
  try {
    const action = weightsAction(event);
    if (action.kind === 'none') {
      outcome = { status: 'SUCCESS', reason: action.reason };
    } else {
      const applied = await applyWeights(action.endpointName, action.weights, deadline);
      outcome = { status: 'SUCCESS', reason: `${action.reason}: ${applied.reason}`, data: applied.data };
    }
  } catch (error) {
    const failure = error as Error;
    outcome = { status: 'FAILED', reason: `${failure.name}: ${failure.message}` };
  }
  logger.info('endpoint weights', { requestType: event.RequestType, logicalResourceId: event.LogicalResourceId, status: outcome.status, reason: outcome.reason });
  try {
    await respond(event.ResponseURL, customResourceResponse(event, outcome));
  } catch (error) {
    // Nothing else can tell CloudFormation: log it; the stack operation times out and rolls back.
    logger.error('could not answer CloudFormation', { error: error as Error });
  }
}
