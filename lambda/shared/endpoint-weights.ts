// The decisions of the endpoint-weights custom resource (lambda/endpoint-weights), kept free of I/O so
// they are tested on their own.
//
// ModelEndpoint deploys with RetainAllVariantProperties, so an update of the endpoint configuration keeps
// the traffic weights the endpoint has at run time (a promotion's, a rollback's). CloudFormation sends
// this resource an Update only when its properties change, and its properties are the weights the
// construct's props declare: so the props' weights are applied exactly when they changed, and a routine
// deploy leaves the run-time weights alone.
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { formatIssues } from './errors';
import * as z from './zod';

/** SageMaker's rules for a variant name (ProductionVariant.VariantName). */
const VARIANT_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;

/**
 * A weight as CloudFormation delivers it: custom resource properties arrive as strings, so `95` is `'95'`.
 * Non-negative, finite.
 */
const weightSchema = z.pipe(
  z.union([z.number(), z.string().check(z.regex(/^\s*\d+(\.\d+)?\s*$/, 'must be a non-negative number'))]),
  z.transform((value: number | string) => Number(value)),
).check(z.refine((value: number) => Number.isFinite(value) && value >= 0, 'must be a non-negative number'));

const propertiesSchema = z.object({
  EndpointName: z.string().check(z.minLength(1, 'must not be empty')),
  Weights: z.array(
    z.object({
      VariantName: z.string().check(z.regex(VARIANT_NAME, 'must be a SageMaker variant name')),
      DesiredWeight: weightSchema,
    }),
  ).check(
    z.minLength(1, 'must list at least one variant'),
    z.refine((weights) => new Set(weights.map((weight) => weight.VariantName)).size === weights.length, 'must name each variant once'),
    z.refine((weights) => weights.some((weight) => weight.DesiredWeight > 0), 'must give at least one variant a weight above 0'),
  ),
});

export interface VariantWeight {
  readonly VariantName: string;
  readonly DesiredWeight: number;
}

/** The resource's properties, parsed. */
export interface WeightsProperties {
  readonly EndpointName: string;
  readonly Weights: readonly VariantWeight[];
}

/** Properties that do not parse; the message names every bad field. */
export class WeightsPropertiesError extends Error {
  public override readonly name = 'WeightsPropertiesError';
}

export function parseWeightsProperties(value: unknown, root = 'ResourceProperties'): WeightsProperties {
  const parsed = propertiesSchema.safeParse(value);
  if (!parsed.success) throw new WeightsPropertiesError(formatIssues(parsed.error.issues.map((issue) => ({ ...issue, path: [root, ...issue.path] })), root));
  return parsed.data;
}

/** What the handler does for one event. */
export type WeightsAction =
  /** Answer SUCCESS and touch nothing. */
  | { readonly kind: 'none'; readonly reason: string }
  /** Wait for the endpoint, set these weights with UpdateEndpointWeightsAndCapacities, wait again. */
  | { readonly kind: 'apply'; readonly endpointName: string; readonly weights: readonly VariantWeight[]; readonly reason: string };

/** Same endpoint and the same weight for each variant, in any order. */
export function sameWeights(a: WeightsProperties, b: WeightsProperties): boolean {
  if (a.EndpointName !== b.EndpointName || a.Weights.length !== b.Weights.length) return false;
  const byName = new Map(a.Weights.map((weight) => [weight.VariantName, weight.DesiredWeight]));
  return b.Weights.every((weight) => byName.get(weight.VariantName) === weight.DesiredWeight);
}

/**
 * The action for an event:
 * - Create: none. The endpoint was just created with these weights, or (when the resource is added to a
 *   stack whose endpoint already runs) it keeps whatever weights it has now.
 * - Delete: none. Deleting the record of the props' weights changes no traffic.
 * - Update: apply the new weights when they differ from the old ones; otherwise none (CloudFormation also
 *   sends an Update when only the service token changed). A new endpoint name means CloudFormation
 *   replaced the endpoint, which starts with the declared weights: none.
 */
export function weightsAction(event: CloudFormationCustomResourceEvent): WeightsAction {
  if (event.RequestType === 'Delete') return { kind: 'none', reason: 'delete: the endpoint keeps its weights' };
  const desired = parseWeightsProperties(event.ResourceProperties);
  if (event.RequestType === 'Create') {
    return { kind: 'none', reason: 'create: the endpoint already serves with the weights it was created or last set with' };
  }
  let previous: WeightsProperties | undefined;
  try {
    previous = parseWeightsProperties(event.OldResourceProperties, 'OldResourceProperties');
  } catch {
    previous = undefined;
  }
  if (previous !== undefined && previous.EndpointName !== desired.EndpointName) {
    return { kind: 'none', reason: 'update: the endpoint was replaced, and a new endpoint starts with the declared weights' };
  }
  if (previous !== undefined && sameWeights(previous, desired)) {
    return { kind: 'none', reason: 'update: the declared weights did not change, so the deployed weights are kept' };
  }
  return { kind: 'apply', endpointName: desired.EndpointName, weights: desired.Weights, reason: 'update: the declared weights changed' };
}

/** Endpoint statuses (DescribeEndpoint EndpointStatus) and what waiting for InService makes of them. */
export type EndpointState = 'ready' | 'wait' | 'failed';

export function endpointState(status: string | undefined): EndpointState {
  switch (status) {
    case 'InService':
      return 'ready';
    case 'Creating':
    case 'Updating':
    case 'SystemUpdating':
    case 'RollingBack':
      return 'wait';
    default:
      // Failed, OutOfService, Deleting, UpdateRollbackFailed, or a status this code does not know.
      return 'failed';
  }
}

/** Variants the weights name that the endpoint does not have (DescribeEndpoint ProductionVariants). */
export function unknownVariants(weights: readonly VariantWeight[], deployed: readonly string[]): string[] {
  const present = new Set(deployed);
  return weights.map((weight) => weight.VariantName).filter((name) => !present.has(name));
}

/** The body CloudFormation expects at the response URL. */
export interface CustomResourceResponse {
  readonly Status: 'SUCCESS' | 'FAILED';
  readonly Reason: string;
  readonly PhysicalResourceId: string;
  readonly StackId: string;
  readonly RequestId: string;
  readonly LogicalResourceId: string;
  readonly Data?: Record<string, string>;
}

/** CloudFormation shows at most this much of a reason. */
const MAX_REASON = 1_000;

export function customResourceResponse(
  event: CloudFormationCustomResourceEvent,
  outcome: { status: 'SUCCESS' | 'FAILED'; reason: string; data?: Record<string, string> },
): CustomResourceResponse {
  const endpointName = typeof event.ResourceProperties?.EndpointName === 'string' ? event.ResourceProperties.EndpointName : 'endpoint';
  const physicalResourceId = event.RequestType === 'Create' ? `${endpointName}/weights` : event.PhysicalResourceId;
  return {
    Status: outcome.status,
    Reason: outcome.reason.length > MAX_REASON ? `${outcome.reason.slice(0, MAX_REASON - 1)}…` : outcome.reason,
    PhysicalResourceId: physicalResourceId,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
    ...(outcome.data === undefined ? {} : { Data: outcome.data }),
  };
}
