import { Duration, RemovalPolicy, Stack, Tags, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { MlFunction } from '../core/ml-function';
import { MlWorkflow } from '../core/ml-workflow';
import { TrainingInstanceType } from '../core/private/aws-enums';
import { executionConsoleUrlExpression, FailureNotice } from '../core/private/failure-notice';
import { workflowLambdaTask } from '../core/private/lambda-task';
import { acknowledgeWildcardResource } from '../core/private/nag';
import { checkPropType, invalidProps } from '../core/private/props';
import { parseEcrImageUri } from '../core/sagemaker-execution-role';
import { FEDERATION_TAG } from './federated-client';
import type { ModelPackageGroup } from './model-package-group';

// The coordinator side of federated learning (seed pattern 12): a workflow that runs rounds over client
// silos (FederatedClient, each in its own account and/or region) and registers the final global model.
//
// How a round reaches a silo: the round function (lambda/federated-round) assumes the silo's access role
// with STS and calls SageMaker and S3 in the silo's region with those credentials. A Step Functions task's
// `Credentials` field would assume the role too, but a task calls the service in the state machine's own
// region, so a silo in another region would need a state machine of its own there; one function that can
// reach any account and region keeps one workflow, one place for retries and one role to trust.

/** The namespace of the round function's EMF metrics (RoundsAggregated, ClientsContributing, ClientsFailed, GlobalMetric). */
export const FEDERATED_METRICS_NAMESPACE = 'MlPlatform/Federated';

/** How the client updates of a round are combined. */
export enum FederatedAggregator {
  /** FedAvg: the mean of the updates weighted by each client's sample count (McMahan et al. 2017). */
  FED_AVG = 'fedavg',
  /** Coordinate-wise median: robust to a minority of bad or malicious clients. */
  MEDIAN = 'median',
  /** Coordinate-wise trimmed mean: drops the `trimFraction` smallest and largest values of each coordinate. */
  TRIMMED_MEAN = 'trimmed-mean',
}

/** One client silo, as the coordinator reaches it. */
export interface FederatedSilo {
  /** A short name for the silo (lowercase letters, digits, hyphens; at most 16), unique in the federation. */
  readonly name: string;
  /** The silo's account. */
  readonly account: string;
  /** The silo's region, where its data and training jobs are. */
  readonly region: string;
  /**
   * The training image in the silo's region (SageMaker pulls a job's image from the job's region).
   * @default - `training.image`
   */
  readonly trainingImage?: string;
}

export interface FederatedTraining {
  /** The training image each silo runs: it reads the `train` and `global` channels and writes `update.json` to `/opt/ml/model/`. */
  readonly image: string;
  /** A SageMaker training instance type, e.g. `ml.m5.xlarge`. */
  readonly instanceType: string;
  /** @default 1 */
  readonly instanceCount?: number;
  /** @default 30 */
  readonly volumeSizeGb?: number;
  /** @default Duration.hours(2) */
  readonly maxRuntime?: Duration;
  /** @default {} */
  readonly hyperparameters?: Record<string, string>;
}

export interface FederatedAggregation {
  /** @default FederatedAggregator.FED_AVG */
  readonly aggregator?: FederatedAggregator;
  /** β in [0, 0.5): the fraction trimmed at each end; with TRIMMED_MEAN only. */
  readonly trimFraction?: number;
  /** DP-FedAvg (clipping of each update to `clipNorm`, Gaussian noise of σ·C/k); with FED_AVG only. */
  readonly privacy?: { readonly clipNorm: number; readonly noiseMultiplier: number };
  /** Scales the aggregated update before it is applied to the global model. @default 1 */
  readonly serverLearningRate?: number;
}

export interface FederatedCoordinatorProps {
  /** The federation's name (lowercase letters, digits, hyphens; at most 32): the tag the silos' trust policies require. */
  readonly name: string;
  /** The silos; each has deployed a FederatedClient with `accessRoleName`. */
  readonly clients: readonly FederatedSilo[];
  /** The physical name of the access role in every silo. */
  readonly accessRoleName: string;
  readonly training: FederatedTraining;
  /** @default FedAvg without privacy */
  readonly aggregation?: FederatedAggregation;
  /** The fewest clients whose updates a round may be aggregated from. @default all clients */
  readonly minClients?: number;
  /** The global metric: the sample-weighted mean of what the clients report under this name in `update.json`'s `metrics`. */
  readonly metric: { readonly name: string; readonly direction: 'higher-is-better' | 'lower-is-better' };
  /** Stop after this many rounds. */
  readonly maxRounds: number;
  /** Stop once this many rounds in a row have not improved the global metric by `minDelta`. @default - only maxRounds stops */
  readonly patience?: number;
  /** @default 0 */
  readonly minDelta?: number;
  /** How long a round waits for its clients; a job still running then is stopped and its client fails the round. @default Duration.hours(3) */
  readonly roundTimeout?: Duration;
  /** How often the workflow checks the clients' jobs. @default Duration.minutes(5) */
  readonly pollInterval?: Duration;
  /** Where the final global model is registered. */
  readonly modelPackageGroup: ModelPackageGroup;
  /** The image that serves the global model (it reads `model.json` from the model artifact). */
  readonly inferenceImage: string;
  /** The coordinator's bucket: the runs' state, the global models, the clients' updates as received. */
  readonly stateBucket: s3.IBucket;
  /** The key prefix (ending in `/`) of the federation's objects, e.g. `churn/federated/`. */
  readonly statePrefix: string;
  /** Encrypts what the function writes, its logs and the workflow's state. */
  readonly encryptionKey: kms.IKey;
  /** Notified when a run registers its model or fails. */
  readonly notificationTopic: sns.ITopic;
  /** Run the function in this VPC; it needs a route to STS, SageMaker and S3 of the silos' regions. */
  readonly vpc?: ec2.IVpc;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /** @default RemovalPolicy.RETAIN */
  readonly logRemovalPolicy?: RemovalPolicy;
  /** Notified when a run fails, and when a client fails a round. @default - no alarms */
  readonly failureAlarmAction?: cloudwatch.IAlarmAction;
}

const NAME = /^[a-z][a-z0-9-]{0,31}$/;
const SILO_NAME = /^[a-z0-9][a-z0-9-]{0,15}$/;
const ACCOUNT = /^\d{12}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;
const ROLE_NAME = /^[\w+=,.@-]{1,64}$/;
const KEY_PREFIX = /^([A-Za-z0-9!_.*'()-]+\/)+$/;
const TRAINING_INSTANCE_TYPES: readonly string[] = Object.values(TrainingInstanceType);
/** Step Functions keeps at most 25,000 events of an execution's history. */
const MAX_HISTORY_EVENTS = 25_000;
/** Events of one poll of a round: the Wait (2), the Lambda task (5) and the Choice (2). */
const EVENTS_PER_POLL = 9;

/**
 * The coordinator of a federation: the round function and the workflow that runs a federated training —
 * start (the initial global model), then per round: start every silo's training job from the global model,
 * poll until each has finished, failed or timed out, check the quorum, aggregate the updates (FedAvg, the
 * median or a trimmed mean, optionally with differential privacy) into the next global model, and decide
 * whether to stop (N rounds, or no improvement of the global metric) — and finally package the global model
 * and register it in the model package group, where the existing approval and deployment take over.
 */
export class FederatedCoordinator extends Construct {
  public readonly function: lambda.Function;
  public readonly workflow: MlWorkflow;
  /** The `service` dimension of the function's metrics. */
  public readonly serviceName: string;
  /** [WARNING] a client failed a round (its reason is in the round's record and the function's log); with `failureAlarmAction`. */
  public readonly clientFailuresAlarm?: cloudwatch.Alarm;
  /** The access roles' ARNs, one per client, in order. */
  public readonly clientRoleArns: readonly string[];

  constructor(scope: Construct, id: string, props: FederatedCoordinatorProps) {
    super(scope, id);
    validateProps(this.node.path, props);
    const stack = Stack.of(this);
    const roundTimeout = props.roundTimeout ?? Duration.hours(3);
    const pollInterval = props.pollInterval ?? Duration.minutes(5);
    this.serviceName = `federated-${props.name}`;

    const round = new MlFunction(this, 'Rounds', {
      handler: 'federated-round',
      description: `Runs the rounds of federation ${props.name} in its client silos`,
      encryptionKey: props.encryptionKey,
      invokedSynchronouslyBy: 'a workflow, which retries and catches its errors',
      calls: 'STS, S3 and SageMaker in the client silos, S3 of the coordinator',
      timeout: Duration.minutes(5),
      memorySize: 1024,
      // One run at a time per federation; a second lets an operator's run overlap a finishing one.
      reservedConcurrency: 2,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      vpc: props.vpc,
      environment: {
        STATE_BUCKET: props.stateBucket.bucketName,
        STATE_PREFIX: props.statePrefix,
        KMS_KEY_ID: props.encryptionKey.keyArn,
        POWERTOOLS_SERVICE_NAME: this.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: FEDERATED_METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: 'INFO',
      },
    });
    this.function = round.function;
    // The silos' access roles trust only a principal of this account that carries the federation's tag.
    Tags.of(round.role).add(FEDERATION_TAG, props.name);
    this.clientRoleArns = props.clients.map((client) => `arn:${stack.partition}:iam::${client.account}:role/${props.accessRoleName}`);
    iam.Grant.addToPrincipal({ grantee: round.role, actions: ['sts:AssumeRole'], resourceArns: [...new Set(this.clientRoleArns)] });
    const state = props.stateBucket.arnForObjects(`${props.statePrefix}*`);
    iam.Grant.addToPrincipal({ grantee: round.role, actions: ['s3:GetObject', 's3:PutObject'], resourceArns: [state] });
    props.encryptionKey.grant(round.role, 'kms:Decrypt', 'kms:GenerateDataKey');
    if (props.stateBucket.encryptionKey !== undefined && props.stateBucket.encryptionKey !== props.encryptionKey) props.stateBucket.encryptionKey.grant(round.role, 'kms:Decrypt', 'kms:GenerateDataKey');
    acknowledgeWildcardResource(round.role.grantsPolicy, state, `Reads and writes each run's state, global models and received updates under ${props.statePrefix}<run>/, named at run time.`);

    const federation = {
      name: props.name,
      clients: props.clients.map((client, index) => ({
        name: client.name,
        account: client.account,
        region: client.region,
        roleArn: this.clientRoleArns[index],
        ...(client.trainingImage === undefined ? {} : { trainingImage: client.trainingImage }),
        settingsParameter: `/${props.accessRoleName}/exchange`,
      })),
      training: {
        image: props.training.image,
        instanceType: props.training.instanceType,
        instanceCount: props.training.instanceCount ?? 1,
        volumeSizeGb: props.training.volumeSizeGb ?? 30,
        maxRuntimeSeconds: (props.training.maxRuntime ?? Duration.hours(2)).toSeconds(),
        hyperparameters: props.training.hyperparameters ?? {},
      },
      aggregation: {
        aggregator: props.aggregation?.aggregator ?? FederatedAggregator.FED_AVG,
        ...(props.aggregation?.trimFraction === undefined ? {} : { trimFraction: props.aggregation.trimFraction }),
        ...(props.aggregation?.privacy === undefined ? {} : { privacy: { clipNorm: props.aggregation.privacy.clipNorm, noiseMultiplier: props.aggregation.privacy.noiseMultiplier } }),
        serverLearningRate: props.aggregation?.serverLearningRate ?? 1,
      },
      minClients: props.minClients ?? props.clients.length,
      roundTimeoutSeconds: roundTimeout.toSeconds(),
      metric: { name: props.metric.name, direction: props.metric.direction },
      convergence: {
        maxRounds: props.maxRounds,
        ...(props.patience === undefined ? {} : { patience: props.patience }),
        ...(props.minDelta === undefined ? {} : { minDelta: props.minDelta }),
      },
    };

    // --- The workflow ---------------------------------------------------------------------------------
    const family = props.modelPackageGroup;
    const errors = new FailureNotice(this, props.notificationTopic, `Federation ${props.name}: run failed`, 'Federated run failed');
    // Every action of the round function is safe to repeat with the same input; bad input, an unknown run, a round
    // without its quorum and a broken environment would fail again.
    const invoke = (stateId: string, comment: string, payload: Record<string, unknown>, resultPath: string, fields: readonly string[]): tasks.LambdaInvoke =>
      workflowLambdaTask(this, stateId, { comment, lambdaFunction: this.function, payload, resultPath, fields, permanentErrors: ['FederatedInputError', 'RoundFailedError', 'ConfigError'], catchTo: errors.entry });
    const runRound = { action: 'startRound', 'runId.$': '$.run.runId', 'round.$': '$.round.number' };
    const start = invoke(
      'Start federation',
      'Validates the run, and writes the initial global model as the model of round 1.',
      { action: 'start', 'runId.$': '$$.Execution.Name', federation, 'initialModelUri.$': `States.Format('s3://${props.stateBucket.bucketName}/{}', $.initialModelKey)` },
      '$.run',
      ['runId', 'parameters', 'clients'],
    );
    const firstRound = new sfn.Pass(this, 'First round', { result: sfn.Result.fromObject({ number: 1 }), resultPath: '$.round' });
    const startRound = invoke('Start round', "Starts each silo's training job from the global model; a silo that cannot start fails the round alone.", runRound, '$.progress', ['training', 'failed', 'pending']);
    const wait = new sfn.Wait(this, 'Wait for training', { time: sfn.WaitTime.duration(pollInterval) });
    const check = invoke('Check round', "Reads each silo's job; takes in the updates of those that completed, stops those past the round's deadline.", { ...runRound, action: 'checkRound' }, '$.progress', ['pending', 'completed', 'failed']);
    const aggregate = invoke('Aggregate round', 'Checks the quorum, aggregates the updates into the next global model and decides whether to stop.', { ...runRound, action: 'aggregate' }, '$.aggregate', [
      'round',
      'nextRound',
      'converged',
      'reason',
      'metric',
      'bestRound',
      'bestValue',
      'contributing',
      'failed',
    ]);
    const nextRound = new sfn.Pass(this, 'Next round', { parameters: { 'number.$': '$.aggregate.nextRound' }, resultPath: '$.round' });
    const packageModel = invoke('Package global model', 'Writes the final global model as a model artifact (model.tar.gz with model.json).', { action: 'package', 'runId.$': '$.run.runId', 'round.$': '$.aggregate.round' }, '$.model', [
      'modelDataUrl',
      'rounds',
      'metric',
      'bestValue',
      'aggregator',
      'noiseMultiplier',
    ]);
    const register = errors.protect(
      tasks.CallAwsService.jsonPath(this, 'Register global model', {
        service: 'sagemaker',
        action: 'createModelPackage',
        iamResources: [family.modelPackageGroupArn, family.modelPackageArns],
        iamAction: 'sagemaker:CreateModelPackage',
        additionalIamStatements: [new iam.PolicyStatement({ actions: ['sagemaker:AddTags'], resources: [family.modelPackageArns] })],
        parameters: {
          ModelPackageGroupName: family.modelPackageGroupName,
          'ModelPackageDescription.$': `States.Format('Global model of federation ${props.name}, run {}, after {} rounds', $.run.runId, $.model.rounds)`,
          ModelApprovalStatus: family.approvalPolicy,
          InferenceSpecification: {
            Containers: [{ Image: props.inferenceImage, 'ModelDataUrl.$': '$.model.modelDataUrl' }],
            SupportedContentTypes: ['application/json'],
            SupportedResponseMIMETypes: ['application/json'],
          },
          MetadataProperties: { 'GeneratedBy.$': '$$.Execution.Id' },
          CustomerMetadataProperties: {
            Federation: props.name,
            'FederatedRun.$': '$.run.runId',
            'Rounds.$': "States.Format('{}', $.model.rounds)",
            'Aggregator.$': '$.model.aggregator',
            'NoiseMultiplier.$': "States.Format('{}', $.model.noiseMultiplier)",
            Metric: props.metric.name,
            'MetricValue.$': "States.Format('{}', $.model.metric)",
            'BestMetricValue.$': "States.Format('{}', $.model.bestValue)",
            Clients: clientList(props.clients.map((client) => client.name)),
            'StopReason.$': '$.aggregate.reason',
          },
          Tags: [{ Key: FEDERATION_TAG, Value: props.name }],
        },
        resultSelector: { 'arn.$': '$.ModelPackageArn' },
        resultPath: '$.modelPackage',
      }),
    );
    const registered = new sfn.Pass(this, 'Registered verdict', {
      parameters: {
        result: 'registered',
        'modelPackageArn.$': '$.modelPackage.arn',
        approvalStatus: family.approvalPolicy,
        'rounds.$': '$.model.rounds',
        'reason.$': '$.aggregate.reason',
        metric: props.metric.name,
        'value.$': '$.model.metric',
        'failedClients.$': '$.aggregate.failed',
        'console.$': executionConsoleUrlExpression(this),
      },
      resultPath: '$.verdict',
    });
    const done = new sfn.Pass(this, 'Output verdict', { inputPath: '$.verdict' });

    start.next(firstRound).next(startRound).next(wait).next(check);
    check.next(
      new sfn.Choice(this, 'Round finished?')
        .when(sfn.Condition.numberGreaterThan('$.progress.pending', 0), wait)
        .otherwise(aggregate),
    );
    aggregate.next(
      new sfn.Choice(this, 'Converged?')
        .when(sfn.Condition.booleanEquals('$.aggregate.converged', true), packageModel)
        .otherwise(nextRound.next(startRound)),
    );
    packageModel.next(register).next(registered).next(errors.notify('Notify registration', `Federation ${props.name}: global model registered`, '$.verdict')).next(done);

    const inputCheck = new sfn.Choice(this, 'Input names the initial model?')
      .when(sfn.Condition.and(sfn.Condition.isPresent('$.initialModelKey'), sfn.Condition.isString('$.initialModelKey'), sfn.Condition.stringMatches('$.initialModelKey', `${props.statePrefix}*`)), start)
      .otherwise(
        new sfn.Fail(this, 'Initial model missing', {
          error: 'FederatedInputError',
          cause: `initialModelKey: must be the key of the initial global model ({ "parameters": [...] }) under ${props.statePrefix} in the coordinator's bucket`,
        }),
      );

    const maxPollsPerRound = Math.ceil(roundTimeout.toSeconds() / pollInterval.toSeconds()) + 1;
    this.workflow = new MlWorkflow(this, 'Workflow', {
      definition: inputCheck,
      description: `Federated training of ${props.name} across ${props.clients.length} silos`,
      encryptionKey: props.encryptionKey,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      // Every round may take its whole timeout, plus a margin for the aggregation and registration.
      timeout: Duration.seconds(props.maxRounds * (roundTimeout.toSeconds() + pollInterval.toSeconds()) + 3600),
      failureAlarmAction: props.failureAlarmAction,
    });
    acknowledgeWildcardResource(this.workflow.role.grantsPolicy, family.modelPackageArns, "The global model gets its version ARN (…/<group>/<version>) when registered; the grant covers this group's versions only.");
    acknowledgeWildcardResource(this.workflow.role.grantsPolicy, `${this.function.functionArn}:*`, 'The Lambda task may invoke the round function by version or alias (<function ARN>:*); the grant names that one function only.');
    const events = props.maxRounds * maxPollsPerRound * EVENTS_PER_POLL;
    if (events > MAX_HISTORY_EVENTS) {
      throw invalidProps(`${this.node.path} (FederatedCoordinator)`, [
        `maxRounds, roundTimeout, pollInterval: ${props.maxRounds} rounds of up to ${maxPollsPerRound} polls would write up to ${events} events, more than the ${MAX_HISTORY_EVENTS} of an execution's history; poll less often or run fewer rounds`,
      ]);
    }

    if (props.failureAlarmAction) {
      this.clientFailuresAlarm = new cloudwatch.Alarm(this, 'ClientFailures', {
        metric: this.metricClientsFailed({ period: Duration.hours(1) }),
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `[WARNING] a client silo of federation ${props.name} failed a round: the round's record (aggregate.json) and the round function's log name it and why`,
      });
      this.clientFailuresAlarm.addAlarmAction(props.failureAlarmAction);
    }
  }

  /** Rounds aggregated. */
  public metricRoundsAggregated(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('RoundsAggregated', 'Sum', props);
  }

  /** Clients whose updates a round aggregated. */
  public metricClientsContributing(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('ClientsContributing', 'Sum', props);
  }

  /** Clients that failed a round (could not start, failed, timed out, sent no usable update). */
  public metricClientsFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('ClientsFailed', 'Sum', props);
  }

  /** The global metric after each round. */
  public metricGlobalMetric(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('GlobalMetric', 'Average', props);
  }

  private metric(metricName: string, statistic: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({ namespace: FEDERATED_METRICS_NAMESPACE, metricName, dimensionsMap: { service: this.serviceName }, statistic, period: Duration.hours(1), ...props });
  }
}

/** The silos' names for a model version's metadata, whose values hold at most 256 characters: as many as fit, then how many more. */
function clientList(names: readonly string[], limit = 256): string {
  const all = names.join(',');
  if (all.length <= limit) return all;
  for (let count = names.length - 1; count > 0; count--) {
    const text = `${names.slice(0, count).join(',')},… (+${names.length - count})`;
    if (text.length <= limit) return text;
  }
  return `${names.length} silos`;
}

function validateProps(path: string, props: FederatedCoordinatorProps): void {
  const problems = checkPropType(props, 'props', 'object');
  if (problems.length > 0) throw invalidProps(`${path} (FederatedCoordinator)`, problems);
  const text = (value: unknown, name: string, pattern: RegExp, what: string): void => {
    const type = checkPropType(value, name, 'string');
    if (type.length > 0) problems.push(...type);
    else if (!Token.isUnresolved(value) && !pattern.test(value as string)) problems.push(`${name}: must be ${what}; got ${JSON.stringify(value)}`);
  };
  const whole = (value: unknown, name: string, minimum: number, maximum = Number.MAX_SAFE_INTEGER, optional = false): void => {
    const type = checkPropType(value, name, 'number', { optional });
    if (type.length > 0) {
      problems.push(...type);
      return;
    }
    if (value === undefined || Token.isUnresolved(value)) return;
    if (!Number.isInteger(value) || (value as number) < minimum || (value as number) > maximum) problems.push(`${name}: must be a whole number from ${minimum}${maximum === Number.MAX_SAFE_INTEGER ? '' : ` to ${maximum}`}; got ${JSON.stringify(value)}`);
  };
  text(props.name, 'name', NAME, '1-32 lowercase letters, digits or hyphens, starting with a letter');
  text(props.accessRoleName, 'accessRoleName', ROLE_NAME, 'an IAM role name (1-64 letters, digits and +=,.@_-)');
  text(props.statePrefix, 'statePrefix', KEY_PREFIX, "a key prefix ending in '/' (letters, digits and !_.*'()-)");
  text(props.inferenceImage, 'inferenceImage', /\S/, 'an image URI');
  for (const [name, type] of [['modelPackageGroup', 'construct'], ['stateBucket', 'object'], ['encryptionKey', 'object'], ['notificationTopic', 'object'], ['training', 'object'], ['metric', 'object']] as const) {
    problems.push(...checkPropType(props[name], name, type));
  }
  const clients = checkPropType(props.clients, 'clients', 'array');
  problems.push(...clients);
  if (clients.length === 0) {
    if (props.clients.length === 0) problems.push('clients: must name at least one silo');
    const seen = new Map<string, number>();
    props.clients.forEach((client, index) => {
      const at = `clients[${index}]`;
      const type = checkPropType(client, at, 'object');
      if (type.length > 0) {
        problems.push(...type);
        return;
      }
      text(client.name, `${at}.name`, SILO_NAME, '1-16 lowercase letters, digits or hyphens');
      text(client.account, `${at}.account`, ACCOUNT, 'a 12-digit account id');
      text(client.region, `${at}.region`, REGION, 'a region such as eu-west-1');
      if (client.trainingImage !== undefined) text(client.trainingImage, `${at}.trainingImage`, /\S/, 'an image URI');
      const image = parseEcrImageUri(client.trainingImage ?? (typeof props.training === 'object' && props.training !== null ? props.training.image : ''));
      if (image !== undefined && typeof client.region === 'string' && !Token.isUnresolved(client.region) && image.region !== client.region) {
        problems.push(`${at}.trainingImage: the image is in ${image.region}, the silo in ${client.region}; SageMaker pulls a job's image from the job's region`);
      }
      const earlier = seen.get(client.name);
      if (earlier !== undefined) problems.push(`${at}.name: repeats clients[${earlier}].name (${JSON.stringify(client.name)})`);
      else seen.set(client.name, index);
    });
    whole(props.minClients, 'minClients', 1, Math.max(1, props.clients.length), true);
  }
  if (typeof props.training === 'object' && props.training !== null) {
    text(props.training.image, 'training.image', /\S/, 'an image URI');
    // A silo without an image of its own runs this one.
    const instanceType = checkPropType(props.training.instanceType, 'training.instanceType', 'string');
    if (instanceType.length > 0) problems.push(...instanceType);
    else if (!TRAINING_INSTANCE_TYPES.includes(props.training.instanceType)) problems.push(`training.instanceType: must be a SageMaker training instance type, such as ml.m5.xlarge; got ${JSON.stringify(props.training.instanceType)}`);
    whole(props.training.instanceCount, 'training.instanceCount', 1, 100, true);
    whole(props.training.volumeSizeGb, 'training.volumeSizeGb', 1, 16384, true);
    const runtime = props.training.maxRuntime?.toSeconds();
    if (runtime !== undefined && (runtime < 60 || runtime > 28 * 24 * 3600)) problems.push(`training.maxRuntime: must be from 1 minute to 28 days; got ${runtime} s`);
  }
  if (typeof props.metric === 'object' && props.metric !== null) {
    text(props.metric.name, 'metric.name', /^[A-Za-z0-9_.:/-]{1,64}$/, 'a metric name (1-64 letters, digits and _.:/-)');
    if (props.metric.direction !== 'higher-is-better' && props.metric.direction !== 'lower-is-better') problems.push(`metric.direction: must be higher-is-better or lower-is-better; got ${JSON.stringify(props.metric.direction)}`);
  }
  whole(props.maxRounds, 'maxRounds', 1, 1000);
  whole(props.patience, 'patience', 1, 1000, true);
  if (props.minDelta !== undefined && !(typeof props.minDelta === 'number' && Number.isFinite(props.minDelta) && props.minDelta >= 0)) problems.push(`minDelta: must be a finite number ≥ 0; got ${JSON.stringify(props.minDelta)}`);
  const aggregation = props.aggregation ?? {};
  const aggregator = aggregation.aggregator ?? FederatedAggregator.FED_AVG;
  if (!Object.values(FederatedAggregator).includes(aggregator)) problems.push(`aggregation.aggregator: must be one of ${Object.values(FederatedAggregator).join(', ')}; got ${JSON.stringify(aggregator)}`);
  if (aggregator === FederatedAggregator.TRIMMED_MEAN) {
    const beta = aggregation.trimFraction;
    if (typeof beta !== 'number' || !(beta >= 0 && beta < 0.5)) problems.push(`aggregation.trimFraction: must be a number in [0, 0.5) with the trimmed mean; got ${JSON.stringify(beta)}`);
  } else if (aggregation.trimFraction !== undefined) {
    problems.push('aggregation.trimFraction: is only used by the trimmed mean');
  }
  if (aggregation.privacy !== undefined) {
    if (aggregator !== FederatedAggregator.FED_AVG) problems.push('aggregation.privacy: is only available with FedAvg (the noise is calibrated to the mean of clipped updates)');
    for (const field of ['clipNorm', 'noiseMultiplier'] as const) {
      const value = aggregation.privacy[field];
      if (!(typeof value === 'number' && Number.isFinite(value) && value > 0)) problems.push(`aggregation.privacy.${field}: must be a number > 0; got ${JSON.stringify(value)}`);
    }
  }
  if (aggregation.serverLearningRate !== undefined && !(typeof aggregation.serverLearningRate === 'number' && aggregation.serverLearningRate > 0 && Number.isFinite(aggregation.serverLearningRate))) {
    problems.push(`aggregation.serverLearningRate: must be a number > 0; got ${JSON.stringify(aggregation.serverLearningRate)}`);
  }
  const timeout = props.roundTimeout?.toSeconds();
  if (timeout !== undefined && timeout < 60) problems.push(`roundTimeout: must be at least 1 minute; got ${timeout} s`);
  const poll = props.pollInterval?.toSeconds();
  if (poll !== undefined && (poll < 10 || (timeout !== undefined && poll > timeout))) problems.push(`pollInterval: must be at least 10 seconds and at most roundTimeout; got ${poll} s`);
  if (problems.length > 0) throw invalidProps(`${path} (FederatedCoordinator)`, problems);
}
