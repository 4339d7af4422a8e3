import { type Duration, Stack, Tags, Token } from 'aws-cdk-lib';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import type { ModelEndpoint } from './model-endpoint';
import type { AddEndpointOptions, RealTimeInferenceApi } from './real-time-inference-api';
import { assertRequiredProps } from '../core/private/props';

export interface InferenceRouteProps extends AddEndpointOptions {
  /** The API that serves the route. */
  readonly api: RealTimeInferenceApi;
  /** The endpoint served at `POST /models/{endpoint.modelName}/predict`. */
  readonly endpoint: ModelEndpoint;
}

/** What the API's handlers read for one model (lambda/shared/inference.ts, ModelRouteSchema). */
interface RouteDocument {
  readonly endpointName: string;
  readonly variants: Record<string, { readonly modelVersion: string; readonly weight?: number }>;
  readonly sticky?: { readonly salt: string };
  readonly cache?: { readonly ttlSeconds: number };
}

/** What is wrong with routing `endpoint` with these options, one message per problem (empty when nothing is). */
export function routeOptionProblems(endpoint: ModelEndpoint, options: AddEndpointOptions, path = ''): string[] {
  const problems: string[] = [];
  const production = endpoint.variants.filter((variant) => variant.kind === 'production');
  if (options.stickyRouting && production.length < 2) {
    problems.push(`${path}stickyRouting needs at least two production variants; '${endpoint.modelName}' has ${production.length}`);
  }
  const salt: unknown = options.stickySalt;
  if (salt !== undefined && (typeof salt !== 'string' || salt.length === 0 || salt.length > 256)) {
    problems.push(`${path}stickySalt: must be 1-256 characters; got ${typeof salt === 'string' ? salt.length : JSON.stringify(salt)}`);
  }
  const cacheTtl = options.cacheTtl;
  if (cacheTtl !== undefined) {
    const seconds = typeof (cacheTtl as Partial<Duration>).toSeconds === 'function' ? cacheTtl.toSeconds({ integral: false }) : NaN;
    if (!(Number.isInteger(seconds) && seconds >= 1 && seconds <= 86_400)) problems.push(`${path}cacheTtl: must be whole seconds from 1 second to 1 day; got ${Number.isNaN(seconds) ? JSON.stringify(cacheTtl) : `${seconds} seconds`}`);
  }
  return problems;
}

/**
 * One model's route of a {@link RealTimeInferenceApi}: an SSM parameter `<api prefix><modelName>`
 * holding the endpoint's name, its production variants (with their versions and weights) and sticky
 * routing, plus the tag on the endpoint that lets the API's handler invoke it.
 *
 * Usually made by `api.addEndpoint(endpoint)`, which puts it beside the endpoint: in the endpoint's
 * stack, so that adding, changing or removing a model family deploys that family's stack only.
 */
export class InferenceRoute extends Construct {
  /** The parameter that holds the route. */
  public readonly parameter: ssm.StringParameter;
  public readonly modelName: string;
  /** How long the model's answers are cached, when they are. */
  public readonly cacheTtl?: Duration;

  constructor(scope: Construct, id: string, props: InferenceRouteProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'InferenceRoute', props, { api: 'construct', endpoint: 'construct' });
    const { api, endpoint } = props;
    const where = `${this.node.path} (InferenceRoute)`;
    if (Token.isUnresolved(endpoint.modelName)) {
      throw new Error(`${where}: endpoint.modelName: must be a plain string (it names the route parameter); got a token`);
    }
    const production = endpoint.variants.filter((variant) => variant.kind === 'production');
    const problems = routeOptionProblems(endpoint, props);
    if (props.cacheTtl !== undefined && api.predictionCacheTable === undefined) {
      problems.push(`cacheTtl: the API has no prediction cache; give the RealTimeInferenceApi predictionCache`);
    }
    if (problems.length > 0) throw new Error(`${where}: ${problems.join('; ')}`);
    this.modelName = endpoint.modelName;
    this.cacheTtl = props.cacheTtl;
    const route: RouteDocument = {
      endpointName: endpoint.endpointName,
      variants: Object.fromEntries(production.map((variant) => [variant.name, { modelVersion: variant.modelVersion, weight: variant.weight }])),
      ...(props.stickyRouting ? { sticky: { salt: props.stickySalt ?? endpoint.modelName } } : {}),
      ...(props.cacheTtl === undefined ? {} : { cache: { ttlSeconds: props.cacheTtl.toSeconds() } }),
    };
    this.parameter = new ssm.StringParameter(this, 'Parameter', {
      parameterName: `${api.routeParameterPrefix}${endpoint.modelName}`,
      stringValue: Stack.of(this).toJsonString(route),
      description: `Route of model ${endpoint.modelName} for the real-time inference API`,
      tier: ssm.ParameterTier.STANDARD,
    });
    Tags.of(endpoint).add(api.endpointAccessTag.key, api.endpointAccessTag.value, { includeResourceTypes: ['AWS::SageMaker::Endpoint'] });
  }
}
