import { Duration, Stack, Tags, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { AlarmSeverity } from './endpoint-alarms';
import type { ModelEndpoint } from './model-endpoint';
import type { AddEndpointOptions, EndpointCircuitBreaker, RealTimeInferenceApi } from './real-time-inference-api';
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
  readonly breaker?: { windowSeconds: number; failureRateThreshold: number; minimumCalls: number; coolDownSeconds: number; probes: number };
  readonly fallback?: { variant?: string; static?: unknown };
  readonly precomputed?: { readonly maxAgeSeconds: number };
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
  const breaker = options.circuitBreaker;
  if (breaker !== undefined) {
    // The rules of lambda/shared/circuit-breaker.ts (breakerPolicyProblems), in the prop's units.
    const document = breakerDocument(breaker);
    const at = `${path}circuitBreaker.`;
    const wholeFrom = (value: number, min: number, max: number) => Number.isInteger(value) && value >= min && value <= max;
    if (!wholeFrom(document.windowSeconds, 1, 3_600)) problems.push(`${at}window: must be whole seconds from 1 second to 1 hour; got ${document.windowSeconds} seconds`);
    if (!wholeFrom(document.coolDownSeconds, 1, 3_600)) problems.push(`${at}coolDown: must be whole seconds from 1 second to 1 hour; got ${document.coolDownSeconds} seconds`);
    if (!(document.failureRateThreshold > 0 && document.failureRateThreshold < 1)) problems.push(`${at}failureRateThreshold: must be above 0 and below 1; got ${document.failureRateThreshold}`);
    if (!wholeFrom(document.minimumCalls, 1, 10_000)) problems.push(`${at}minimumCalls: must be a whole number from 1 to 10000; got ${document.minimumCalls}`);
    if (!wholeFrom(document.probes, 1, 100)) problems.push(`${at}probes: must be a whole number from 1 to 100; got ${document.probes}`);
  }
  const fallback = options.fallback;
  if (fallback !== undefined) {
    const production = endpoint.variants.filter((variant) => variant.kind === 'production').map((variant) => variant.name);
    if (fallback.variant === undefined && fallback.staticAnswer === undefined) problems.push(`${path}fallback: must name a variant or a staticAnswer`);
    if (fallback.variant !== undefined && !production.includes(fallback.variant)) {
      problems.push(`${path}fallback.variant: '${fallback.variant}' is not a production variant of '${endpoint.modelName}' (${production.join(', ')})`);
    }
    if (fallback.staticAnswer !== undefined) {
      let size = Number.POSITIVE_INFINITY;
      try {
        size = JSON.stringify(fallback.staticAnswer)?.length ?? Number.POSITIVE_INFINITY;
      } catch {
        // not JSON: reported below
      }
      if (!(size <= 2_048)) problems.push(`${path}fallback.staticAnswer: must be a JSON value of at most 2048 characters`);
    }
  }
  const maxAge = options.precomputedMaxAge;
  if (maxAge !== undefined) {
    const seconds = typeof (maxAge as Partial<Duration>).toSeconds === 'function' ? maxAge.toSeconds({ integral: false }) : NaN;
    if (!(Number.isInteger(seconds) && seconds >= 1 && seconds <= 30 * 86_400)) problems.push(`${path}precomputedMaxAge: must be whole seconds from 1 second to 30 days; got ${Number.isNaN(seconds) ? JSON.stringify(maxAge) : `${seconds} seconds`}`);
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
  /** Whether a circuit breaker guards the model's endpoint. */
  public readonly guarded: boolean;
  /** The warning alarm while the model's breaker refuses calls, when it has one. */
  public readonly circuitOpenAlarm?: cloudwatch.Alarm;
  /** How old a precomputed answer may be and still be served, when the model's are. */
  public readonly precomputedMaxAge?: Duration;
  /** The names of the endpoint's production variants (the ones a request or a composite may target). */
  public readonly productionVariants: string[];

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
    if (props.cacheTtl !== undefined && !api.cachesPredictions) {
      problems.push(`cacheTtl: the API has no prediction cache; give the RealTimeInferenceApi predictionCache`);
    }
    if (props.precomputedMaxAge !== undefined && !api.servesPrecomputed) {
      problems.push(`precomputedMaxAge: the API serves no precomputed predictions; give the RealTimeInferenceApi precomputedPredictions: true`);
    }
    if (props.circuitBreaker !== undefined && !api.guardsEndpoints) {
      problems.push(`circuitBreaker: the API does not guard endpoints; give the RealTimeInferenceApi circuitBreakers: true`);
    }
    if (problems.length > 0) throw new Error(`${where}: ${problems.join('; ')}`);
    this.modelName = endpoint.modelName;
    this.productionVariants = production.map((variant) => variant.name);
    this.cacheTtl = props.cacheTtl;
    this.guarded = props.circuitBreaker !== undefined;
    this.precomputedMaxAge = props.precomputedMaxAge;
    if (this.guarded) {
      // Beside the route, in the family's stack: a fleet's alarms do not pile up in the API's stack.
      this.circuitOpenAlarm = new cloudwatch.Alarm(this, 'CircuitOpen', {
        metric: api.metricCircuitOpenRejections(endpoint.modelName, { period: Duration.minutes(1), statistic: 'Sum' }),
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `[WARNING] the circuit breaker of model ${endpoint.modelName} refused calls to its endpoint (fallbacks or 503s answered them)`,
      });
      const action = api.alarmActions[AlarmSeverity.WARNING];
      if (action) {
        this.circuitOpenAlarm.addAlarmAction(action);
        this.circuitOpenAlarm.addOkAction(action);
      }
    }
    const route: RouteDocument = {
      endpointName: endpoint.endpointName,
      variants: Object.fromEntries(production.map((variant) => [variant.name, { modelVersion: variant.modelVersion, weight: variant.weight }])),
      ...(props.stickyRouting ? { sticky: { salt: props.stickySalt ?? endpoint.modelName } } : {}),
      ...(props.cacheTtl === undefined ? {} : { cache: { ttlSeconds: props.cacheTtl.toSeconds() } }),
      ...(props.circuitBreaker === undefined ? {} : { breaker: breakerDocument(props.circuitBreaker) }),
      ...(props.precomputedMaxAge === undefined ? {} : { precomputed: { maxAgeSeconds: props.precomputedMaxAge.toSeconds() } }),
      ...(props.fallback === undefined
        ? {}
        : { fallback: { ...(props.fallback.variant === undefined ? {} : { variant: props.fallback.variant }), ...(props.fallback.staticAnswer === undefined ? {} : { static: props.fallback.staticAnswer }) } }),
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

/** The route's breaker settings: the prop's, with the defaults, in whole seconds. */
function breakerDocument(breaker: EndpointCircuitBreaker): NonNullable<RouteDocument['breaker']> {
  return {
    windowSeconds: (breaker.window ?? Duration.minutes(1)).toSeconds({ integral: false }),
    failureRateThreshold: breaker.failureRateThreshold ?? 0.5,
    minimumCalls: breaker.minimumCalls ?? 20,
    coolDownSeconds: (breaker.coolDown ?? Duration.seconds(30)).toSeconds({ integral: false }),
    probes: breaker.probes ?? 3,
  };
}
