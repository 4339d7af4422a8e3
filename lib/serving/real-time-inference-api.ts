import { Duration, Names, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { iamLambdaRestApi, managedRulesWebAcl } from '../core/private/iam-rest-api';
import { acknowledgeWildcardResource } from '../core/private/nag';
import { checkPropType, invalidProps } from '../core/private/props';
import { DataKey } from '../core/data-key';
import { MlFunction } from '../core/ml-function';
import { AlarmSeverity } from './endpoint-alarms';
import type { PredictionLog } from '../experiments/prediction-log';
import type { FeatureGroup } from '../features/feature-group';
import { CompositeRoute, type CascadeOptions, type ChainOptions, type CompositeDefinition, type EnsembleOptions } from './composite-route';
import { InferenceRoute, routeOptionProblems } from './inference-route';
import type { ModelEndpoint } from './model-endpoint';
import { InferenceStateTable } from './inference-state-table';

export interface RealTimeInferenceApiProps {
  /**
   * Endpoints served at `POST /models/{modelName}/predict`: an endpoint, or `{ modelEndpoint, stickyRouting,
   * stickySalt }` to route it as {@link RealTimeInferenceApi.addEndpoint} would. More can be added with
   * `addEndpoint`.
   * @default - none yet
   */
  readonly endpoints?: Array<ModelEndpoint | ServedEndpoint>;
  /**
   * Key that encrypts the function's and the API's log groups.
   * @default - a new customer-managed key with rotation
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Retention of the function's and the API's logs.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Removal policy of the log groups.
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * Steady-state requests per second allowed on the stage.
   * @default 100
   */
  readonly throttlingRateLimit?: number;
  /**
   * Burst of requests allowed on the stage.
   * @default 200
   */
  readonly throttlingBurstLimit?: number;
  /**
   * Reserved concurrency of the inference function.
   * @default 10
   */
  readonly reservedConcurrency?: number;
  /**
   * Run the function in this VPC; SageMaker Runtime must be reachable there (an interface endpoint).
   * @default - outside any VPC
   */
  readonly vpc?: ec2.IVpc;
  /**
   * Subnets of the VPC for the function.
   * @default - the VPC's isolated subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Protect the API with an AWS WAF web ACL: AWS managed common and known-bad-input rules and a
   * per-IP rate limit.
   * @default false
   */
  readonly waf?: boolean;
  /**
   * Per-IP request limit over 5 minutes enforced by the web ACL.
   * @default 2000
   */
  readonly wafRateLimitPer5Minutes?: number;
  /**
   * Log every prediction (variant, model version, caller hash) to this table, and serve
   * `POST /models/{modelName}/outcomes` to record business outcomes against them, for A/B tests
   * and champion-challenger analysis.
   * @default - no prediction log and no outcomes route
   */
  readonly predictionLog?: PredictionLog;
  /**
   * Days a logged prediction (and its outcome) is kept before DynamoDB expires it.
   * @default 90
   */
  readonly predictionLogRetentionDays?: number;
  /**
   * Alarm actions per severity for the API's alarms.
   * @default - no alarms
   */
  readonly alarmActions?: Partial<Record<AlarmSeverity, cloudwatch.IAlarmAction>>;
  /**
   * SSM parameter-name prefix of the models' routes: each served model's route is the parameter
   * `<prefix><modelName>`, written beside its endpoint (see {@link InferenceRoute}). A plain string
   * starting and ending with `/`.
   * @default - `/cdk-ml-patterns/<unique id of this construct>/routes/`
   */
  readonly routeParameterPrefix?: string;
  /**
   * Create API Gateway's account-level CloudWatch Logs role (`AWS::ApiGateway::Account`), which every REST
   * API of the account and region shares. Leave it off when another API of the account already sets it.
   * @default true
   */
  readonly cloudWatchRole?: boolean;
  /**
   * How long the handlers serve a route from memory before reading its parameter again. A change of
   * route (a new variant, a new sticky salt) reaches every request within this time.
   * @default Duration.minutes(1)
   */
  readonly routeCacheTtl?: Duration;
  /**
   * A prediction cache for the models routed with `cacheTtl`: an in-memory tier in each function instance
   * in front of a shared DynamoDB table. Repeated requests (same model version, variant, content and accept
   * types, and payload up to key order) are answered without calling the endpoint.
   * @default - no prediction cache
   */
  readonly predictionCache?: PredictionCacheOptions;
  /**
   * Guard the endpoints of the models routed with `circuitBreaker` (the breakers' state is shared by every
   * function instance through the state table).
   * @default false
   */
  readonly circuitBreakers?: boolean;
  /**
   * Serve the answers the batch layer precomputes per entity (a `BatchInference` with `precomputed` loads
   * them into the state table) to the models routed with `precomputedMaxAge`: a request that names an
   * `entity` gets a fresh precomputed answer without calling the endpoint.
   * @default false
   */
  readonly precomputedPredictions?: boolean;
  /**
   * The table of the API's shared state (cached predictions, breaker states, precomputed answers), when
   * `predictionCache`, `circuitBreakers` or `precomputedPredictions` is on.
   * @default - a new InferenceStateTable encrypted with the API's key
   */
  readonly stateTable?: InferenceStateTable;
}

export interface PredictionCacheOptions {
  /**
   * Size of each function instance's in-memory tier, in MiB; 0 leaves only the shared tier.
   * @default 32
   */
  readonly memorySizeMiB?: number;
  /**
   * A shared-tier read slower than this is a miss (the request goes on to the model).
   * @default Duration.millis(100)
   */
  readonly sharedReadTimeout?: Duration;
}

/** Per-model metrics of the inference handler that {@link RealTimeInferenceApi.metricTopModels} ranks models by. */
export type TopModelsMetric = 'Predictions' | 'PredictionErrors' | 'ModelLatency';

/** The tag that lets the inference handler invoke an endpoint: one IAM statement covers any number of endpoints. */
export interface EndpointAccessTag {
  readonly key: string;
  readonly value: string;
}

export interface AddEndpointOptions {
  /**
   * Route each caller (`callerId` in the request) to the same variant every time, by a salted hash
   * of the caller id over the variants' weights, so that one user stays in one arm of an A/B test.
   * Requests without a `callerId` are split by SageMaker's weights as usual.
   * @default false
   */
  readonly stickyRouting?: boolean;
  /**
   * Salt of the sticky assignment; change it to reshuffle callers between arms for a new experiment.
   * @default - the model name
   */
  readonly stickySalt?: string;
  /**
   * Serve repeated requests from the API's prediction cache (`predictionCache`) for this long: 1 second
   * to 1 day, whole seconds. Only requests whose variant is known before the call are cached (a target
   * variant, a sticky caller, or a single production variant), so caching never changes an A/B split.
   * @default - the model's answers are not cached
   */
  readonly cacheTtl?: Duration;
  /**
   * A circuit breaker on the model's endpoint (per variant when a request targets one), when the API has
   * `circuitBreakers`. An open breaker answers 503 `CircuitOpen` with `Retry-After` without calling the
   * endpoint, or a fallback answers.
   * @default - no breaker
   */
  readonly circuitBreaker?: EndpointCircuitBreaker;
  /**
   * What answers, marked `degraded`, when the endpoint fails (5xx, throttling, timeout) or its breaker is
   * open: `variant` first (another production variant, a simpler model), then `staticAnswer`.
   * @default - the endpoint's error stands
   */
  readonly fallback?: EndpointFallback;
  /**
   * Answer a request that names an `entity` with the batch layer's precomputed answer for it when that was
   * computed at most this long ago (1 second to 30 days, whole seconds), when the API has
   * `precomputedPredictions`; otherwise the endpoint answers. An older answer is still the fallback when the
   * endpoint fails (after `fallback.variant`, before `fallback.staticAnswer`). The answer says
   * `source: precomputed` or `realtime`.
   * @default - nothing precomputed is served
   */
  readonly precomputedMaxAge?: Duration;
}

export interface EndpointCircuitBreaker {
  /** Failure rate (0-1, exclusive) over the window above which the breaker opens. @default 0.5 */
  readonly failureRateThreshold?: number;
  /** Calls an instance must have seen in the window before the rate counts. @default 20 */
  readonly minimumCalls?: number;
  /** The rolling window. @default Duration.minutes(1) */
  readonly window?: Duration;
  /** How long an open breaker refuses calls before probing. @default Duration.seconds(30) */
  readonly coolDown?: Duration;
  /** Calls let through while half-open, across all instances. @default 3 */
  readonly probes?: number;
}

export interface EndpointFallback {
  /** Another production variant of the endpoint. */
  readonly variant?: string;
  /** A fixed answer, returned as the prediction (any JSON value). */
  readonly staticAnswer?: unknown;
}

/** An endpoint to serve, with how it is routed: the `endpoints` prop's form of {@link RealTimeInferenceApi.addEndpoint}. */
export interface ServedEndpoint extends AddEndpointOptions {
  readonly modelEndpoint: ModelEndpoint;
}

const STAGE_NAME = 'v1';
const METRICS_NAMESPACE = 'MlPlatform/Inference';
const SERVICE_NAME = 'inference-api';

/**
 * The real-time inference API: API Gateway (IAM auth, throttling, access logs, tracing, optional WAF)
 * in front of a TypeScript Lambda function that validates the payload, invokes the model's SageMaker
 * endpoint (optionally a target variant) and returns the prediction with the variant and model
 * version that served it. `POST /models/{modelName}/predict`.
 */
export class RealTimeInferenceApi extends Construct {
  public readonly api: apigateway.RestApi;
  public readonly handler: lambda.Function;
  public readonly encryptionKey: kms.IKey;
  public readonly webAcl?: wafv2.CfnWebACL;
  public readonly alarms: cloudwatch.Alarm[] = [];
  /** Records outcomes against logged predictions, when the API has a prediction log. */
  public readonly outcomeHandler?: lambda.Function;
  /** Serves online feature lookups, once `addFeatureLookup` has been called. */
  public featureLookupHandler?: lambda.Function;
  /** Prefix of the SSM parameters that hold the models' routes (`<prefix><modelName>`). */
  public readonly routeParameterPrefix: string;
  /** Endpoints carrying this tag can be invoked by the handler; {@link addEndpoint} sets it. */
  public readonly endpointAccessTag: EndpointAccessTag;
  /** The API's shared state (cached predictions, breaker states), when `predictionCache` or `circuitBreakers` is on. */
  public readonly stateTable?: InferenceStateTable;
  /** Whether the prediction cache is on (`predictionCache`). */
  public readonly cachesPredictions: boolean;
  /** Whether breakers can guard the endpoints (`circuitBreakers`). */
  public readonly guardsEndpoints: boolean;
  /** Whether routes may serve the batch layer's precomputed answers (`precomputedPredictions`). */
  public readonly servesPrecomputed: boolean;
  /** The alarm actions per severity (`alarmActions`); routes put them on their own alarms (an open breaker). */
  public readonly alarmActions: Partial<Record<AlarmSeverity, cloudwatch.IAlarmAction>>;
  private readonly routes = new Map<string, InferenceRoute>();
  private readonly composites = new Map<string, CompositeRoute>();
  private validator!: apigateway.RequestValidator;
  private handlerReservedConcurrency = 10;
  private handlerSettings!: { retention: logs.RetentionDays; removalPolicy: RemovalPolicy; vpc?: ec2.IVpc; vpcSubnets?: ec2.SubnetSelection };

  constructor(scope: Construct, id: string, props: RealTimeInferenceApiProps = {}) {
    super(scope, id);
    const retention = props.logRetention ?? logs.RetentionDays.ONE_YEAR;
    const removalPolicy = props.logRemovalPolicy ?? RemovalPolicy.RETAIN;
    this.encryptionKey = props.encryptionKey ?? new DataKey(this, 'Key', { description: 'Real-time inference API logs' }).key;
    const uniqueId = Names.uniqueId(this);
    this.routeParameterPrefix = props.routeParameterPrefix ?? `/cdk-ml-patterns/${uniqueId}/routes/`;
    this.endpointAccessTag = { key: 'cdk-ml-patterns:inference-api', value: uniqueId };
    this.validate(props);
    const routeEnvironment = {
      ROUTES_PARAMETER_PREFIX: this.routeParameterPrefix,
      ROUTE_CACHE_TTL_SECONDS: String((props.routeCacheTtl ?? Duration.minutes(1)).toSeconds()),
    };

    this.handlerSettings = { retention, removalPolicy, vpc: props.vpc, vpcSubnets: props.vpcSubnets };
    this.handlerReservedConcurrency = props.reservedConcurrency ?? 10;
    this.handler = this.createHandler('Handler', 'invoke', 'Validates prediction requests and invokes SageMaker endpoints', {
      // API Gateway gives up after 29 s; stop just before it so the caller gets our error, not a gateway timeout.
      timeout: Duration.seconds(28),
      reservedConcurrency: props.reservedConcurrency ?? 10,
      environment: {
        AWS_MAX_ATTEMPTS: '2',
        // Per-attempt limits, so that two SageMaker attempts and two prediction-log writes fit in the timeout.
        SAGEMAKER_TIMEOUT_MS: '12000',
        PREDICTION_LOG_TIMEOUT_MS: '1000',
        ...routeEnvironment,
      },
    });
    this.grantReadRoutes(this.handler);
    // One statement for every endpoint the API serves, however many: the endpoints carry the tag.
    const anyEndpoint = Stack.of(this).formatArn({ service: 'sagemaker', resource: 'endpoint', resourceName: '*' });
    this.handler.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['sagemaker:InvokeEndpoint'],
        resources: [anyEndpoint],
        conditions: { StringEquals: { [`aws:ResourceTag/${this.endpointAccessTag.key}`]: this.endpointAccessTag.value } },
      }),
    );
    acknowledgeWildcardResource(
      (this.handler.role as unknown as { grantsPolicy: iam.ManagedPolicy }).grantsPolicy,
      anyEndpoint,
      `Invokes only endpoints tagged ${this.endpointAccessTag.key}=${this.endpointAccessTag.value} (addEndpoint tags them): one statement for a fleet of any size instead of one ARN per endpoint, which would outgrow the managed-policy size limit.`,
    );
    this.alarmActions = props.alarmActions ?? {};
    this.cachesPredictions = props.predictionCache !== undefined;
    this.guardsEndpoints = props.circuitBreakers === true;
    this.servesPrecomputed = props.precomputedPredictions === true;
    if (this.cachesPredictions || this.guardsEndpoints || this.servesPrecomputed) {
      this.stateTable = props.stateTable ?? new InferenceStateTable(this, 'State', { encryptionKey: this.encryptionKey });
      this.stateTable.grantReadWrite(this.handler);
    }
    if (this.guardsEndpoints && this.stateTable) this.handler.addEnvironment('BREAKER_STATE_TABLE', this.stateTable.table.tableName);
    if (this.servesPrecomputed && this.stateTable) this.handler.addEnvironment('PRECOMPUTED_TABLE', this.stateTable.table.tableName);
    if (props.predictionCache && this.stateTable) {
      this.handler.addEnvironment('PREDICTION_CACHE_TABLE', this.stateTable.table.tableName);
      this.handler.addEnvironment('PREDICTION_CACHE_MEMORY_MB', String(props.predictionCache.memorySizeMiB ?? 32));
      this.handler.addEnvironment('PREDICTION_CACHE_TIMEOUT_MS', String((props.predictionCache.sharedReadTimeout ?? Duration.millis(100)).toMilliseconds()));
    }
    if (props.predictionLog) {
      this.handler.addEnvironment('PREDICTION_LOG_TABLE', props.predictionLog.table.tableName);
      this.handler.addEnvironment('PREDICTION_LOG_TTL_DAYS', String(props.predictionLogRetentionDays ?? 90));
      props.predictionLog.grantLogPredictions(this.handler);
    }

    const accessLogs = new logs.LogGroup(this, 'AccessLogs', { encryptionKey: this.encryptionKey, retention, removalPolicy });
    this.api = iamLambdaRestApi(this, {
      description: 'Real-time model inference',
      stageName: STAGE_NAME,
      accessLogs,
      throttlingRateLimit: props.throttlingRateLimit ?? 100,
      throttlingBurstLimit: props.throttlingBurstLimit ?? 200,
      cloudWatchRole: props.cloudWatchRole ?? true,
      notes: {
        grantedWith: 'RealTimeInferenceApi.grantInvoke',
        whyNoCache:
          'Responses are predictions for the caller’s own payload; an API Gateway cache would serve one caller’s prediction to another. A prediction cache with per-request keys belongs in the inference path instead.',
      },
    });

    // API Gateway rejects structurally wrong bodies before they cost a Lambda invocation; the
    // handler then checks every field and names the one that is wrong.
    const requestModel = this.api.addModel('PredictRequest', {
      contentType: 'application/json',
      schema: {
        schema: apigateway.JsonSchemaVersion.DRAFT4,
        type: apigateway.JsonSchemaType.OBJECT,
        required: ['payload'],
        properties: {
          payload: {},
          contentType: { type: apigateway.JsonSchemaType.STRING, enum: ['application/json', 'text/csv'] },
          accept: { type: apigateway.JsonSchemaType.STRING, enum: ['application/json', 'text/csv'] },
          targetVariant: { type: apigateway.JsonSchemaType.STRING, maxLength: 63 },
          inferenceId: { type: apigateway.JsonSchemaType.STRING, maxLength: 64 },
          callerId: { type: apigateway.JsonSchemaType.STRING, minLength: 1, maxLength: 256 },
          cache: { type: apigateway.JsonSchemaType.BOOLEAN },
          entity: {
            type: apigateway.JsonSchemaType.OBJECT,
            required: ['featureGroup', 'recordId'],
            properties: { featureGroup: { type: apigateway.JsonSchemaType.STRING }, recordId: { type: apigateway.JsonSchemaType.STRING } },
          },
        },
        additionalProperties: false,
      },
    });
    const validator = this.api.addRequestValidator('BodyValidator', { validateRequestBody: true, validateRequestParameters: true });
    this.validator = validator;
    this.api.addGatewayResponse('BadRequestBody', {
      type: apigateway.ResponseType.BAD_REQUEST_BODY,
      statusCode: '400',
      templates: {
        'application/json': '{"error":"BadRequest","message":$context.error.validationErrorString}',
      },
    });
    const model = this.api.root.addResource('models').addResource('{model}');
    model.addResource('predict').addMethod('POST', new apigateway.LambdaIntegration(this.handler), {
      requestValidator: validator,
      requestModels: { 'application/json': requestModel },
      requestParameters: { 'method.request.path.model': true },
    });
    if (props.predictionLog) {
      this.outcomeHandler = this.createHandler('OutcomeHandler', 'record-outcome', 'Records business outcomes against logged predictions', {
        timeout: Duration.seconds(10),
        reservedConcurrency: props.reservedConcurrency ?? 10,
        environment: { AWS_MAX_ATTEMPTS: '3', PREDICTION_LOG_TABLE: props.predictionLog.table.tableName, ...routeEnvironment },
      });
      props.predictionLog.grantRecordOutcomes(this.outcomeHandler);
      this.grantReadRoutes(this.outcomeHandler);
      const outcomeModel = this.api.addModel('OutcomeRequest', {
        contentType: 'application/json',
        schema: {
          schema: apigateway.JsonSchemaVersion.DRAFT4,
          type: apigateway.JsonSchemaType.OBJECT,
          required: ['predictionId', 'outcome'],
          properties: {
            predictionId: { type: apigateway.JsonSchemaType.STRING, minLength: 1, maxLength: 64 },
            outcome: {
              type: apigateway.JsonSchemaType.OBJECT,
              required: ['type', 'value'],
              properties: { type: { type: apigateway.JsonSchemaType.STRING, enum: ['binary', 'continuous'] }, value: {} },
            },
          },
          additionalProperties: false,
        },
      });
      model.addResource('outcomes').addMethod('POST', new apigateway.LambdaIntegration(this.outcomeHandler), {
        requestValidator: validator,
        requestModels: { 'application/json': outcomeModel },
        requestParameters: { 'method.request.path.model': true },
      });
    }

    if (props.waf) {
      this.webAcl = managedRulesWebAcl(this, 'InferenceApi', props.wafRateLimitPer5Minutes ?? 2000);
      // WAF only delivers to log groups whose names start with aws-waf-logs-.
      const wafLogs = new logs.LogGroup(this, 'WebAclLogs', {
        logGroupName: `aws-waf-logs-${Names.uniqueResourceName(this, { maxLength: 100 })}`,
        encryptionKey: this.encryptionKey,
        retention,
        removalPolicy,
      });
      new wafv2.CfnLoggingConfiguration(this, 'WebAclLogging', {
        resourceArn: this.webAcl.attrArn,
        logDestinationConfigs: [wafLogs.logGroupArn],
        // Never log credentials.
        redactedFields: [{ singleHeader: { Name: 'authorization' } }],
      });
      new wafv2.CfnWebACLAssociation(this, 'WebAclAssociation', {
        resourceArn: this.api.deploymentStage.stageArn,
        webAclArn: this.webAcl.attrArn,
      });
    } else {
      const reason = 'WAF is switched off in this environment to save cost (config api.waf); the API still requires SigV4 IAM auth and is throttled per stage.';
      Validations.of(this.api.deploymentStage).acknowledge(
        { id: 'AwsSolutions-APIG3', reason },
        { id: 'HIPAA.Security-APIGWAssociatedWithWAF', reason },
        { id: 'NIST.800.53.R5-APIGWAssociatedWithWAF', reason },
      );
    }

    for (const served of props.endpoints ?? []) {
      if (Construct.isConstruct(served)) this.addEndpoint(served);
      else {
        const { modelEndpoint, ...options } = served;
        this.addEndpoint(modelEndpoint, options);
      }
    }
    if (props.alarmActions) {
      this.createAlarms(props.alarmActions);
    }
  }

  /**
   * Serves an endpoint at `POST /models/{endpoint.modelName}/predict`: writes its route (an SSM
   * parameter beside the endpoint, in the endpoint's stack) and tags the endpoint so that the
   * handler may invoke it. The endpoint may live in another stack: nothing of it flows into the
   * API's stack, so a fleet's families deploy on their own.
   */
  public addEndpoint(endpoint: ModelEndpoint, options: AddEndpointOptions = {}): InferenceRoute {
    if (this.routes.has(endpoint.modelName) || this.composites.has(endpoint.modelName)) {
      throw new Error(`${this.node.path} (RealTimeInferenceApi): addEndpoint: a model named '${endpoint.modelName}' is already served`);
    }
    const route = new InferenceRoute(endpoint, 'InferenceRoute', { api: this, endpoint, ...options });
    this.routes.set(endpoint.modelName, route);
    return route;
  }

  /**
   * Serves an ensemble of models this API serves at `POST /models/{name}/predict`: the members are called
   * concurrently (each through its own route's cache, breaker and fallback) and their outputs combined. The
   * answer lists each member's output or failure. Its route parameter is made in `scope` (default: the API).
   */
  public addEnsemble(name: string, options: EnsembleOptions, scope: Construct = this): CompositeRoute {
    return this.addComposite(name, { kind: 'ensemble', ...options }, scope);
  }

  /**
   * Serves a cascade at `POST /models/{name}/predict`: a cheap model answers when it is confident enough,
   * otherwise the request goes on to the next stage. The answer lists the stages that ran.
   */
  public addCascade(name: string, options: CascadeOptions, scope: Construct = this): CompositeRoute {
    return this.addComposite(name, { kind: 'cascade', ...options }, scope);
  }

  /**
   * Serves a chain at `POST /models/{name}/predict`: each stage's answer, reshaped by the next stage's
   * `input`, is that stage's payload (for example candidate generation, then ranking).
   */
  public addChain(name: string, options: ChainOptions, scope: Construct = this): CompositeRoute {
    return this.addComposite(name, { kind: 'chain', ...options }, scope);
  }

  /** Serves a composite of any kind (as {@link addEnsemble}, {@link addCascade} or {@link addChain}). */
  public addComposite(name: string, definition: CompositeDefinition, scope: Construct = this): CompositeRoute {
    if (this.composites.has(name) || this.routes.has(name)) {
      throw new Error(`${this.node.path} (RealTimeInferenceApi): a model named '${name}' is already served`);
    }
    const id = `Composite${name.replace(/(^|-)([a-z0-9])/g, (_, __, letter: string) => letter.toUpperCase())}`;
    const route = new CompositeRoute(scope, id, { api: this, name, definition });
    this.composites.set(name, route);
    return route;
  }

  /** The route of a model served through {@link addEndpoint}, if there is one. */
  public routeOf(modelName: string): InferenceRoute | undefined {
    return this.routes.get(modelName);
  }

  /** The route of a composite served through {@link addComposite} (or its kinds), if there is one. */
  public compositeOf(name: string): CompositeRoute | undefined {
    return this.composites.get(name);
  }

  /** Names of the composites served through {@link addEnsemble}, {@link addCascade} and {@link addChain}. */
  public get compositeNames(): string[] {
    return [...this.composites.keys()];
  }

  /** The composite's members or stages that failed (or answered with a static fallback), summed over its requests. */
  public metricCompositePartsFailed(compositeName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric('CompositePartsFailed', compositeName, { statistic: 'Sum', ...props });
  }

  /** A cascade's escalations past its first stage, summed over its requests. */
  public metricCascadeEscalations(compositeName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric('CascadeEscalations', compositeName, { statistic: 'Sum', ...props });
  }

  /** Names of the models served through {@link addEndpoint} in this app. */
  public get modelNames(): string[] {
    return [...this.routes.keys()];
  }

  /**
   * Serves the online store of these feature groups: `GET /features/{featureGroup}/{recordId}` and
   * `POST /features/{featureGroup}/batch` (up to 100 ids), for callers that enrich their own
   * requests, and lets the prediction handler enrich a request by entity id (`entity` in the body).
   */
  public addFeatureLookup(groups: FeatureGroup[]): void {
    if (this.featureLookupHandler) {
      throw new Error(`${this.node.path} (RealTimeInferenceApi): addFeatureLookup: feature lookup is already served; pass every group in one call`);
    }
    if (groups.length === 0) {
      throw new Error(`${this.node.path} (RealTimeInferenceApi): addFeatureLookup: groups: must hold at least one feature group`);
    }
    const definitions = Stack.of(this).toJsonString(groups.map((group) => group.definition));
    this.featureLookupHandler = this.createHandler('FeatureLookupHandler', 'get-features', 'Serves online feature lookups from Feature Store', {
      timeout: Duration.seconds(10),
      reservedConcurrency: this.handlerReservedConcurrency,
      environment: { AWS_MAX_ATTEMPTS: '3', FEATURE_GROUPS: definitions, POWERTOOLS_METRICS_NAMESPACE: 'MlPlatform/Features' },
    });
    this.handler.addEnvironment('FEATURE_GROUPS', definitions);
    for (const group of groups) {
      group.grantRead(this.featureLookupHandler);
      group.grantRead(this.handler);
    }
    const integration = new apigateway.LambdaIntegration(this.featureLookupHandler);
    const group = this.api.root.addResource('features').addResource('{featureGroup}');
    group.addResource('{recordId}').addMethod('GET', integration, {
      requestParameters: { 'method.request.path.featureGroup': true, 'method.request.path.recordId': true },
      requestValidator: this.validator,
    });
    group.addResource('batch').addMethod('POST', integration, {
      requestParameters: { 'method.request.path.featureGroup': true },
      requestValidator: this.validator,
    });
  }

  /** Lets the grantee call the predict route of every model (SigV4-signed requests). */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:Invoke'],
      resourceArns: [this.api.arnForExecuteApi('POST', '/models/*/predict', STAGE_NAME)],
    });
  }

  /** URL of the predict route of one model. */
  public urlForModel(modelName: string): string {
    return `${this.api.url}models/${modelName}/predict`;
  }

  /** Predictions served, from the handler's EMF metrics. Default: sum over 5 minutes. */
  public metricPredictions(modelName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric('Predictions', modelName, props);
  }

  /** Requests whose model call failed (429 or 5xx; rejected bad input is not counted), from the handler's EMF metrics. Default: sum over 5 minutes. */
  public metricPredictionErrors(modelName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric('PredictionErrors', modelName, props);
  }

  /** Predictions answered by the prediction cache (either tier), from the handler's EMF metrics. Default: sum over 5 minutes. */
  public metricCacheHits(modelName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric('PredictionCacheHits', modelName, props);
  }

  /** Cacheable predictions the model answered (and the cache then kept). Default: sum over 5 minutes. */
  public metricCacheMisses(modelName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric('PredictionCacheMisses', modelName, props);
  }

  /** Reads and writes of the shared tier that failed or timed out (each served as a miss). Default: sum over 5 minutes. */
  public metricCacheErrors(modelName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric('PredictionCacheErrors', modelName, props);
  }

  /** Share of cacheable predictions answered by the cache, in percent (hits over hits and misses). */
  public metricCacheHitRatio(modelName: string, props: { readonly period?: Duration; readonly label?: string } = {}): cloudwatch.MathExpression {
    const period = props.period ?? Duration.minutes(5);
    return new cloudwatch.MathExpression({
      expression: 'IF(hits + misses > 0, 100 * hits / (hits + misses), 0)',
      usingMetrics: { hits: this.metricCacheHits(modelName, { period }), misses: this.metricCacheMisses(modelName, { period }) },
      period,
      label: props.label ?? `${modelName} cache hit ratio (%)`,
    });
  }

  /** Calls an open circuit breaker refused (each answered by a fallback or with 503). Default: sum over 5 minutes. */
  public metricCircuitOpenRejections(modelName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric('CircuitOpenRejections', modelName, props);
  }

  /** Predictions a fallback answered, by kind (`variant`, `precomputed` or `static`). Default: sum over 5 minutes. */
  public metricFallbacksServed(modelName: string, kind: 'variant' | 'precomputed' | 'static', props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    const names = { variant: 'FallbacksServedVariant', precomputed: 'FallbacksServedPrecomputed', static: 'FallbacksServedStatic' } as const;
    return this.handlerMetric(names[kind], modelName, props);
  }

  /** Requests naming an entity that a fresh precomputed answer served. Default: sum over 5 minutes. */
  public metricPrecomputedHits(modelName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric('PrecomputedHits', modelName, props);
  }

  /** Requests naming an entity that had no precomputed answer, or only an older one: the endpoint answered. Default: sum over 5 minutes. */
  public metricPrecomputedMisses(modelName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric('PrecomputedMisses', modelName, props);
  }

  /** Reads of precomputed answers that failed or timed out (each served in real time). Default: sum over 5 minutes. */
  public metricPrecomputedErrors(modelName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric('PrecomputedErrors', modelName, props);
  }

  /** Names of the models routed with `precomputedMaxAge`. */
  public get precomputedModelNames(): string[] {
    return [...this.routes.entries()].filter(([, route]) => route.precomputedMaxAge !== undefined).map(([name]) => name);
  }

  /** Names of the models routed with `circuitBreaker`. */
  public get guardedModelNames(): string[] {
    return [...this.routes.entries()].filter(([, route]) => route.guarded).map(([name]) => name);
  }

  /** Names of the models routed with `cacheTtl`. */
  public get cachedModelNames(): string[] {
    return [...this.routes.entries()].filter(([, route]) => route.cacheTtl !== undefined).map(([name]) => name);
  }

  /**
   * The `limit` models with the highest value of one of the handler's per-model metrics, across
   * every family the API serves (a CloudWatch Metrics Insights query, so it needs no list of models
   * and stays one expression for any fleet size). Default: 5-minute periods.
   */
  public metricTopModels(metric: TopModelsMetric, options: { readonly limit?: number; readonly period?: Duration; readonly label?: string } = {}): cloudwatch.MathExpression {
    const limit = options.limit ?? 10;
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
      throw new Error(`${this.node.path} (RealTimeInferenceApi): metricTopModels: limit: must be a whole number from 1 to 500; got ${limit}`);
    }
    const aggregate = metric === 'ModelLatency' ? 'MAX' : 'SUM';
    return new cloudwatch.MathExpression({
      expression: `SELECT ${aggregate}(${metric}) FROM SCHEMA("${METRICS_NAMESPACE}", Model, service) WHERE service = '${SERVICE_NAME}' GROUP BY Model ORDER BY ${aggregate}() DESC LIMIT ${limit}`,
      usingMetrics: {},
      period: options.period ?? Duration.minutes(5),
      label: options.label ?? '',
    });
  }

  private handlerMetric(metricName: string, modelName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { service: SERVICE_NAME, Model: modelName },
      statistic: 'Sum',
      period: Duration.minutes(5),
      ...props,
    });
  }

  /** Lets a handler read the routes' parameters (and nothing else of Parameter Store). */
  private grantReadRoutes(handler: lambda.Function): void {
    const routes = Stack.of(this).formatArn({ service: 'ssm', resource: 'parameter', resourceName: `${this.routeParameterPrefix.slice(1)}*` });
    handler.addToRolePolicy(new iam.PolicyStatement({ actions: ['ssm:GetParameter'], resources: [routes] }));
    acknowledgeWildcardResource(
      (handler.role as unknown as { grantsPolicy: iam.ManagedPolicy }).grantsPolicy,
      routes,
      `Reads the route of whichever model a request names: one parameter per model under ${this.routeParameterPrefix}; read-only.`,
    );
  }

  /** A handler function of the API; the id keeps the construct paths of earlier releases. */
  private createHandler(
    id: string,
    bundle: string,
    description: string,
    options: { timeout: Duration; reservedConcurrency: number; environment: Record<string, string> },
  ): lambda.Function {
    const { retention, removalPolicy, vpc, vpcSubnets } = this.handlerSettings;
    return new MlFunction(this, id, {
      handler: bundle,
      description,
      encryptionKey: this.encryptionKey,
      invokedSynchronouslyBy: 'API Gateway and answers every request',
      calls: 'SageMaker Runtime and DynamoDB',
      timeout: options.timeout,
      reservedConcurrency: options.reservedConcurrency,
      logRetention: retention,
      logRemovalPolicy: removalPolicy,
      vpc,
      vpcSubnets,
      environment: {
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: 'INFO',
        ...options.environment,
      },
    }).function;
  }

  private createAlarms(actions: Partial<Record<AlarmSeverity, cloudwatch.IAlarmAction>>): void {
    const add = (severity: AlarmSeverity, id: string, metric: cloudwatch.IMetric, threshold: number, description: string) => {
      const alarm = new cloudwatch.Alarm(this, id, {
        metric,
        threshold,
        evaluationPeriods: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `[${severity.toUpperCase()}] ${description}`,
      });
      const action = actions[severity];
      if (action) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
      this.alarms.push(alarm);
    };
    add(AlarmSeverity.CRITICAL, 'Api5xx', this.api.metricServerError({ period: Duration.minutes(5), statistic: 'Sum' }), 5, 'inference API returned more than 5 server errors in 5 minutes');
    add(AlarmSeverity.CRITICAL, 'HandlerErrors', this.handler.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }), 0, 'inference function crashed (it should answer every request)');
    add(AlarmSeverity.WARNING, 'HandlerThrottles', this.handler.metricThrottles({ period: Duration.minutes(5), statistic: 'Sum' }), 0, 'inference function hit its reserved concurrency');
  }

  private validate(props: RealTimeInferenceApiProps): void {
    const where = `${this.node.path} (RealTimeInferenceApi)`;
    const shape = checkPropType(props, 'props', 'object');
    if (shape.length > 0) throw invalidProps(where, shape);
    const checks: Array<[string, number | undefined, number, number]> = [
      ['throttlingRateLimit', props.throttlingRateLimit, 1, 10000],
      ['throttlingBurstLimit', props.throttlingBurstLimit, 1, 5000],
      ['reservedConcurrency', props.reservedConcurrency, 1, 1000],
      ['wafRateLimitPer5Minutes', props.wafRateLimitPer5Minutes, 10, 2_000_000_000],
    ];
    const problems: string[] = [];
    for (const [name, value, min, max] of checks) {
      if (value !== undefined && (typeof value !== 'number' || !(value >= min) || value > max)) {
        problems.push(`${name}: must be from ${min} to ${max}; got ${value}`);
      }
    }
    const days = props.predictionLogRetentionDays;
    if (days !== undefined && !(Number.isInteger(days) && days >= 1)) {
      problems.push(`predictionLogRetentionDays: must be a whole number >= 1; got ${days}`);
    }
    // The endpoints prop: every entry an endpoint (or { modelEndpoint, ... }), each model served once.
    problems.push(...checkPropType(props.endpoints, 'endpoints', 'array', { optional: true }));
    const servedAt = new Map<string, number>();
    (Array.isArray(props.endpoints) ? props.endpoints : []).forEach((served: ModelEndpoint | Partial<ServedEndpoint> | undefined, index) => {
      const endpoint = Construct.isConstruct(served) ? served : served?.modelEndpoint;
      const entryProblems = Construct.isConstruct(served) ? [] : checkPropType(served, `endpoints[${index}]`, 'object');
      if (entryProblems.length === 0 && !Construct.isConstruct(served)) entryProblems.push(...checkPropType(served?.modelEndpoint, `endpoints[${index}].modelEndpoint`, 'construct'));
      const at = Construct.isConstruct(served) ? `endpoints[${index}]` : `endpoints[${index}].modelEndpoint`;
      if (entryProblems.length === 0 && !(typeof (endpoint as Partial<ModelEndpoint>)?.modelName === 'string' && Array.isArray((endpoint as Partial<ModelEndpoint>)?.variants))) {
        entryProblems.push(`${at}: must be a ModelEndpoint; got ${(endpoint as Construct).node.path}`);
      }
      problems.push(...entryProblems);
      if (entryProblems.length > 0 || endpoint === undefined) return;
      const name = (endpoint as ModelEndpoint).modelName;
      const first = servedAt.get(name);
      if (first !== undefined) problems.push(`endpoints[${index}]: a model named '${name}' is already served by endpoints[${first}]`);
      else servedAt.set(name, index);
      if (!Construct.isConstruct(served) && served) problems.push(...routeOptionProblems(endpoint as ModelEndpoint, served, `endpoints[${index}].`));
    });
    const prefix = props.routeParameterPrefix;
    if (prefix !== undefined && (Token.isUnresolved(prefix) || !/^\/[a-zA-Z0-9_.\-/]{0,900}\/$/.test(prefix) || prefix.toLowerCase().startsWith('/aws') || prefix.toLowerCase().startsWith('/ssm'))) {
      problems.push(`routeParameterPrefix: must be a plain string that starts and ends with '/', holds only letters, digits and _ . - /, and does not start with /aws or /ssm; got '${prefix}'`);
    }
    const ttl = props.routeCacheTtl;
    if (ttl !== undefined && !(ttl.toSeconds() >= 0 && ttl.toSeconds() <= 86_400)) {
      problems.push(`routeCacheTtl: must be from 0 seconds to 1 day; got ${ttl.toSeconds()} seconds`);
    }
    const cache = props.predictionCache;
    if (cache !== undefined) {
      const cacheShape = checkPropType(cache, 'predictionCache', 'object');
      problems.push(...cacheShape);
      if (cacheShape.length === 0) {
        if (cache.memorySizeMiB !== undefined && !(Number.isInteger(cache.memorySizeMiB) && cache.memorySizeMiB >= 0 && cache.memorySizeMiB <= 256)) {
          problems.push(`predictionCache.memorySizeMiB: must be a whole number from 0 to 256 (half the function's memory); got ${cache.memorySizeMiB}`);
        }
        const timeout = cache.sharedReadTimeout?.toMilliseconds();
        if (timeout !== undefined && !(timeout >= 1 && timeout <= 1_000)) problems.push(`predictionCache.sharedReadTimeout: must be from 1 ms to 1 second; got ${timeout} ms`);
      }
    }
    if (props.stateTable !== undefined) problems.push(...checkPropType(props.stateTable, 'stateTable', 'construct'));
    if (props.stateTable !== undefined && props.predictionCache === undefined && props.circuitBreakers !== true && props.precomputedPredictions !== true) {
      problems.push('stateTable: is used by predictionCache, circuitBreakers and precomputedPredictions, and none is on');
    }
    if (problems.length > 0) throw invalidProps(where, problems);
  }
}
