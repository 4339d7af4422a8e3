// FederatedClient (a silo's side: the access role, the training role, the exchange bucket, the settings) and
// FederatedCoordinator (the round function and the rounds workflow) by structure: grants, trust, bucket
// policies, the workflow's states and the request it sends SageMaker, cdk-nag and cfn-lint. The workflow runs
// in moto in federated-execution.test.ts; the round function against moto in test/lambda/federated-round.test.ts.
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { DataKey } from '../../../lib/core/data-key';
import type { MlFunction } from '../../../lib/core/ml-function';
import { SecureBucket } from '../../../lib/core/secure-bucket';
import { FEDERATION_TAG, FederatedClient, type FederatedClientProps } from '../../../lib/lifecycle/federated-client';
import { FEDERATED_METRICS_NAMESPACE, FederatedAggregator } from '../../../lib/lifecycle/federated-coordinator';
import { expectValidStateMachines } from '../../support/asl';
import { botocoreShapeMembers, cfnLintTemplate, unknownParameters } from '../../support/cli';
import { nagFindings } from '../../support/platform';
import { EU_IMAGE, FEDERATED_IMAGE as IMAGE, federatedCoordinator as coordinator } from './fixtures';
import { thrownLines } from '../../support/assertions';

const COORDINATOR = '111122223333';

const statementsOf = (template: Record<string, any>, logicalId: string): any[] => template.Resources[logicalId].Properties.PolicyDocument.Statement;
const bySid = (statements: any[], sid: string): any => {
  const found = statements.find((statement) => statement.Sid === sid);
  if (found === undefined) throw new Error(`no statement ${sid} in ${JSON.stringify(statements.map((statement) => statement.Sid))}`);
  return found;
};

/** A silo's stack (its own account and region) with a data bucket it owns, unless `importedData`. */
function silo(overrides: Partial<FederatedClientProps> = {}, importedData = false) {
  const app = new App();
  const stack = new Stack(app, 'Silo', { env: { account: '444455556666', region: 'eu-west-1' } });
  const key = new DataKey(stack, 'Key').key;
  const bucket = importedData ? s3.Bucket.fromBucketName(stack, 'Data', 'europe-customer-churn-data') : new SecureBucket(stack, 'Data', { encryptionKey: key, retain: false }).bucket;
  const client = new FederatedClient(stack, 'Client', {
    federationName: 'churn',
    coordinatorAccount: COORDINATOR,
    accessRoleName: 'churn-federated-coordinator',
    data: { bucket, prefix: 'churn/train/' },
    trainingImage: EU_IMAGE,
    encryptionKey: key,
    ...overrides,
  });
  return { app, stack, key, bucket, client };
}

describe('FederatedClient', () => {
  const world = silo();
  const template = Template.fromStack(world.stack).toJSON();
  const id = (construct: any) => world.stack.getLogicalId(construct.node.defaultChild ?? construct);
  const accessRoleId = id(world.client.accessRole);
  const accessPolicyId = Object.keys(template.Resources).find((logicalId) => template.Resources[logicalId].Type === 'AWS::IAM::ManagedPolicy' && logicalId.startsWith('ClientAccessPolicy'))!;
  const access = statementsOf(template, accessPolicyId);
  const exchangeId = id(world.client.exchangeBucket);
  const dataId = id(world.bucket);
  const keyId = id(world.key);

  test('the access role has the fixed name, trusts only the tagged principals of the coordinator account, for an hour at most', () => {
    const role = template.Resources[accessRoleId].Properties;
    expect(role.RoleName).toBe('churn-federated-coordinator');
    expect(role.MaxSessionDuration).toBe(3600);
    expect(role.AssumeRolePolicyDocument.Statement).toEqual([
      {
        Action: 'sts:AssumeRole',
        Effect: 'Allow',
        Principal: { AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:iam::${COORDINATOR}:root`]] } },
        Condition: { StringEquals: { [`aws:PrincipalTag/${FEDERATION_TAG}`]: 'churn' } },
      },
    ]);
    expect(template.Resources[accessPolicyId].Properties.Roles).toEqual([{ Ref: accessRoleId }]);
  });

  test("the access role starts only tagged, isolated, encrypted fl-* training jobs in this silo's account and region, and passes only the training role", () => {
    const resolvedJobs = (statement: any) => JSON.stringify(statement.Resource).replace(/\{"Ref":"AWS::Partition"\}/g, '"${AWS::Partition}"');
    const start = bySid(access, 'StartFederatedTrainingJobs');
    expect(start.Action).toBe('sagemaker:CreateTrainingJob');
    expect(resolvedJobs(start)).toContain('sagemaker:eu-west-1:444455556666:training-job/fl-*');
    expect(start.Condition).toEqual({
      StringEquals: { 'aws:RequestTag/ml-federation': 'churn', 'sagemaker:VolumeKmsKey': { 'Fn::GetAtt': [keyId, 'Arn'] }, 'sagemaker:OutputKmsKey': { 'Fn::GetAtt': [keyId, 'Arn'] } },
      Bool: { 'sagemaker:NetworkIsolation': 'true', 'sagemaker:InterContainerTrafficEncryption': 'true' },
    });
    expect(bySid(access, 'ReadAndStopFederatedTrainingJobs').Action).toEqual(['sagemaker:DescribeTrainingJob', 'sagemaker:StopTrainingJob']);
    const pass = bySid(access, 'PassTheTrainingRole');
    expect(pass.Resource).toEqual({ 'Fn::GetAtt': [id(world.client.trainingRole.role), 'Arn'] });
    expect(pass.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'sagemaker.amazonaws.com' } });
  });

  test('the access role writes global models and reads updates of the exchange only, and is denied every S3 action on the raw data', () => {
    expect(bySid(access, 'WriteGlobalModels')).toMatchObject({ Action: 's3:PutObject', Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [exchangeId, 'Arn'] }, '/global/*']] } });
    expect(bySid(access, 'ReadModelUpdates')).toMatchObject({ Action: 's3:GetObject', Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [exchangeId, 'Arn'] }, '/updates/*']] } });
    expect(bySid(access, 'UseTheExchangeKeyThroughS3').Condition).toEqual({ StringEquals: { 'kms:ViaService': 's3.eu-west-1.amazonaws.com' } });
    const deny = bySid(access, 'NeverTheRawData');
    expect(deny.Effect).toBe('Deny');
    expect(deny.Action).toEqual(expect.arrayContaining(['s3:Get*', 's3:List*', 's3:Put*', 's3:Delete*']));
    expect(deny.Resource).toEqual([{ 'Fn::GetAtt': [dataId, 'Arn'] }, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [dataId, 'Arn'] }, '/*']] }]);
    // Nothing it is allowed touches the data bucket.
    const allowed = access.filter((statement) => statement.Effect === 'Allow');
    expect(JSON.stringify(allowed)).not.toContain(dataId);
    // It reads its settings, and nothing else of SSM.
    expect(bySid(access, 'ReadTheSettings').Action).toBe('ssm:GetParameter');
  });

  test("the exchange bucket's policy denies the access role any read but updates and any write but global models", () => {
    const policy = Object.values(template.Resources).find((resource: any) => resource.Type === 'AWS::S3::BucketPolicy' && JSON.stringify(resource.Properties.Bucket) === JSON.stringify({ Ref: exchangeId })) as any;
    const statements = policy.Properties.PolicyDocument.Statement;
    expect(bySid(statements, 'CoordinatorReadsOnlyUpdates')).toMatchObject({
      Effect: 'Deny',
      Principal: { AWS: { 'Fn::GetAtt': [accessRoleId, 'Arn'] } },
      Action: ['s3:GetObject', 's3:GetObjectVersion'],
      NotResource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [exchangeId, 'Arn'] }, '/updates/*']] },
    });
    expect(bySid(statements, 'CoordinatorWritesOnlyGlobalModels')).toMatchObject({ Effect: 'Deny', Action: 's3:PutObject', NotResource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [exchangeId, 'Arn'] }, '/global/*']] } });
    expect(template.Resources[exchangeId].Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault).toEqual({ SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [keyId, 'Arn'] } });
    expect(template.Resources[exchangeId].Properties.LifecycleConfiguration.Rules).toEqual(expect.arrayContaining([expect.objectContaining({ Id: 'expire-exchange', ExpirationInDays: 90, Status: 'Enabled' })]));
  });

  test("the data bucket it owns denies every principal of the coordinator's account", () => {
    const policy = Object.values(template.Resources).find((resource: any) => resource.Type === 'AWS::S3::BucketPolicy' && JSON.stringify(resource.Properties.Bucket) === JSON.stringify({ Ref: dataId })) as any;
    expect(bySid(policy.Properties.PolicyDocument.Statement, 'NoAccessFromTheFederationCoordinator')).toEqual({
      Sid: 'NoAccessFromTheFederationCoordinator',
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: 's3:*',
      Resource: [{ 'Fn::GetAtt': [dataId, 'Arn'] }, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [dataId, 'Arn'] }, '/*']] }],
      Condition: { StringEquals: { 'aws:PrincipalAccount': COORDINATOR } },
    });
  });

  test('an imported data bucket gets the same denial in the access role, and a note with the statement to add to its policy', () => {
    const imported = silo({}, true);
    const messages = imported.client.node.metadata.filter((entry) => entry.type === 'aws:cdk:info').map((entry) => String(entry.data));
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain('"aws:PrincipalAccount":"111122223333"');
    expect(messages[0]).toContain('arn:aws:s3:::europe-customer-churn-data/*');
    const importedTemplate = Template.fromStack(imported.stack).toJSON();
    const policyId = Object.keys(importedTemplate.Resources).find((logicalId) => logicalId.startsWith('ClientAccessPolicy'))!;
    expect(bySid(statementsOf(importedTemplate, policyId), 'NeverTheRawData').Resource).toEqual([
      { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::europe-customer-churn-data']] },
      { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::europe-customer-churn-data/*']] },
    ]);
  });

  test('the training role reads the data prefix and the global models, writes updates, pulls its image and uses the key for volumes', () => {
    const policyId = world.stack.getLogicalId(world.client.trainingRole.role.grantsPolicy.node.defaultChild as any);
    const statements = statementsOf(template, policyId);
    const text = JSON.stringify(statements);
    expect(text).toContain('/churn/train/*');
    expect(text).toContain('/global/*');
    expect(text).toContain('/updates/*');
    expect(text).toContain('repository/churn-federated-train');
    const createGrant = statements.find((statement) => [statement.Action].flat().includes('kms:CreateGrant'));
    expect(createGrant.Condition).toEqual({ Bool: { 'kms:GrantIsForAWSResource': 'true' } });
    const puts = statements.filter((statement) => [statement.Action].flat().includes('s3:PutObject'));
    expect(JSON.stringify(puts)).not.toContain('/churn/train/');
  });

  test('the settings parameter, named after the role, tells the coordinator the exchange, key, training role and data', () => {
    const parameter = Object.values(template.Resources).find((resource: any) => resource.Type === 'AWS::SSM::Parameter') as any;
    expect(parameter.Properties.Name).toBe('/churn-federated-coordinator/exchange');
    const value = JSON.stringify(parameter.Properties.Value);
    for (const expected of ['exchangeBucket', exchangeId, 'keyArn', keyId, 'trainingRoleArn', 'dataUri', '/churn/train/']) expect(value).toContain(expected);
  });

  test('passes cdk-nag and cfn-lint', () => {
    expect(nagFindings(world.stack)).toEqual([]);
    const lint = cfnLintTemplate('silo', template);
    expect(lint.stdout + lint.stderr).toBe('');
    expect(lint.status).toBe(0);
  });

  test('names every bad prop at once', () => {
    const stack = new Stack(new App(), 'Bad');
    const problems = thrownLines(
      () =>
        new FederatedClient(stack, 'Client', {
          federationName: 'Churn Federation',
          coordinatorAccount: '1234',
          accessRoleName: 'a role with spaces',
          data: { bucket: s3.Bucket.fromBucketName(stack, 'B', 'b-bucket'), prefix: 'no-slash' },
          trainingImage: IMAGE,
          exchangeExpiration: Duration.hours(36),
        }),
    );
    expect(problems[0]).toContain('Bad/Client (FederatedClient)');
    const text = problems.join('\n');
    for (const field of ['federationName:', 'coordinatorAccount:', 'accessRoleName:', 'data.prefix:', 'exchangeExpiration:']) expect(text).toContain(field);
  });
});

describe('FederatedCoordinator', () => {
  const world = coordinator();
  const template = Template.fromStack(world.stack).toJSON();
  const [machine] = expectValidStateMachines(template);
  const definition = machine.definition as any;
  const states: Record<string, any> = definition.States;
  const rounds = world.construct.node.findChild('Rounds') as MlFunction;
  const roleId = world.stack.getLogicalId(rounds.role.node.defaultChild as any);
  const grants = statementsOf(template, world.stack.getLogicalId(rounds.role.grantsPolicy.node.defaultChild as any));

  test("the round function may assume exactly the silos' access roles, and carries the federation's tag they require", () => {
    const assume = grants.find((statement) => statement.Action === 'sts:AssumeRole');
    expect(assume.Resource).toEqual([
      { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::444455556666:role/churn-federated-coordinator']] },
      { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::777788889999:role/churn-federated-coordinator']] },
    ]);
    expect(template.Resources[roleId].Properties.Tags).toEqual(expect.arrayContaining([{ Key: FEDERATION_TAG, Value: 'churn' }]));
    const s3 = grants.find((statement) => JSON.stringify(statement.Action) === JSON.stringify(['s3:GetObject', 's3:PutObject']));
    expect(JSON.stringify(s3.Resource)).toContain('/churn/federated/*');
    const env = template.Resources[world.stack.getLogicalId(rounds.function.node.defaultChild as any)].Properties.Environment.Variables;
    expect(env).toMatchObject({ STATE_PREFIX: 'churn/federated/', POWERTOOLS_METRICS_NAMESPACE: FEDERATED_METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME: 'federated-churn' });
  });

  test('the workflow checks the input, starts, then loops start round → wait → check until no client is pending, aggregates, and loops until converged', () => {
    expect(definition.StartAt).toBe('Input names the initial model?');
    expect(states['Input names the initial model?'].Default).toBe('Initial model missing');
    expect(states['Initial model missing']).toMatchObject({ Type: 'Fail', Error: 'FederatedInputError' });
    expect(states['Start federation'].Next).toBe('First round');
    expect(states['First round']).toMatchObject({ Result: { number: 1 }, ResultPath: '$.round', Next: 'Start round' });
    expect(states['Start round'].Next).toBe('Wait for training');
    expect(states['Wait for training']).toMatchObject({ Type: 'Wait', Seconds: 300, Next: 'Check round' });
    expect(states['Round finished?'].Choices).toEqual([{ Variable: '$.progress.pending', NumericGreaterThan: 0, Next: 'Wait for training' }]);
    expect(states['Round finished?'].Default).toBe('Aggregate round');
    expect(states['Converged?'].Choices).toEqual([{ Variable: '$.aggregate.converged', BooleanEquals: true, Next: 'Package global model' }]);
    expect(states['Converged?'].Default).toBe('Next round');
    expect(states['Next round']).toMatchObject({ Parameters: { 'number.$': '$.aggregate.nextRound' }, ResultPath: '$.round', Next: 'Start round' });
    expect(states['Package global model'].Next).toBe('Register global model');
  });

  test('the round function gets the federation spec once, the run id and round after; its own errors are not retried', () => {
    const spec = states['Start federation'].Parameters.Payload.federation;
    expect(spec.clients.map((client: any) => [client.name, client.roleArn, client.settingsParameter, client.trainingImage])).toEqual([
      ['north-america', 'arn:aws:iam::444455556666:role/churn-federated-coordinator', '/churn-federated-coordinator/exchange', undefined],
      ['europe', 'arn:aws:iam::777788889999:role/churn-federated-coordinator', '/churn-federated-coordinator/exchange', EU_IMAGE],
    ]);
    expect(spec).toMatchObject({ minClients: 2, roundTimeoutSeconds: 10800, aggregation: { aggregator: 'fedavg', serverLearningRate: 1 }, convergence: { maxRounds: 10, patience: 3 } });
    expect(states['Start federation'].Parameters.Payload['initialModelUri.$']).toMatch(/^States\.Format\('s3:\/\/.+\/\{\}', \$\.initialModelKey\)$/);
    for (const [state, action] of [['Start round', 'startRound'], ['Check round', 'checkRound'], ['Aggregate round', 'aggregate']]) {
      expect(states[state].Resource).toBe('arn:aws:states:::lambda:invoke');
      expect(states[state].Parameters.Payload).toEqual({ action, 'runId.$': '$.run.runId', 'round.$': '$.round.number' });
      expect(states[state].Retry[0]).toEqual({ ErrorEquals: ['FederatedInputError', 'RoundFailedError', 'ConfigError'], MaxAttempts: 0 });
      expect(states[state].Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Describe failure' }]);
    }
    expect(states['Federated run failed']).toMatchObject({ Type: 'Fail', ErrorPath: '$.error.Error', CausePath: '$.error.Cause' });
  });

  test("registers the global model with members of CreateModelPackage's request only, as botocore's SageMaker model defines it", () => {
    const request = botocoreShapeMembers('sagemaker', '2017-07-24', 'CreateModelPackageInput');
    const register = states['Register global model'];
    expect(register.Resource).toBe('arn:aws:states:::aws-sdk:sagemaker:createModelPackage');
    expect(Object.keys(request)).toEqual(expect.arrayContaining(['InferenceSpecification', 'CustomerMetadataProperties']));
    expect(unknownParameters(register.Parameters, request)).toEqual([]);
    expect(register.Parameters).toMatchObject({ ModelApprovalStatus: 'PendingManualApproval', InferenceSpecification: { Containers: [{ Image: IMAGE, 'ModelDataUrl.$': '$.model.modelDataUrl' }] } });
    expect(register.Parameters.CustomerMetadataProperties).toMatchObject({ Federation: 'churn', Metric: 'auc', Clients: 'north-america,europe', 'Aggregator.$': '$.model.aggregator' });
  });

  test('alarms on failed runs and on a client failing a round; passes cdk-nag and cfn-lint', () => {
    const alarm = template.Resources[world.stack.getLogicalId(world.construct.clientFailuresAlarm!.node.defaultChild as any)].Properties;
    expect(alarm).toMatchObject({ MetricName: 'ClientsFailed', Namespace: FEDERATED_METRICS_NAMESPACE, Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', Dimensions: [{ Name: 'service', Value: 'federated-churn' }] });
    expect(world.construct.workflow.failureAlarm).toBeDefined();
    // Every round may run its whole timeout: the execution's own timeout covers maxRounds of them and a margin.
    expect(definition.TimeoutSeconds).toBe(10 * (3 * 3600 + 300) + 3600);
    expect(nagFindings(world.stack)).toEqual([]);
    const lint = cfnLintTemplate('coordinator', template);
    expect(lint.stdout + lint.stderr).toBe('');
    expect(lint.status).toBe(0);
  });

  test("names the silos on the registered version within a metadata value's 256 characters", () => {
    const clients = Array.from({ length: 40 }, (_, index) => ({ name: `silo-${String(index).padStart(2, '0')}-a`, account: String(100000000000 + index), region: 'us-east-1' }));
    const fleet = coordinator({ clients, minClients: 20 });
    const [fleetMachine] = expectValidStateMachines(Template.fromStack(fleet.stack).toJSON());
    const text: string = (fleetMachine!.definition as any).States['Register global model'].Parameters.CustomerMetadataProperties.Clients;
    expect(text.length).toBeLessThanOrEqual(256);
    expect(text).toMatch(/^silo-00-a,silo-01-a,.*,… \(\+\d+\)$/);
    const shown = text.split(',').length - 1;
    expect(text.endsWith(`(+${clients.length - shown})`)).toBe(true);
    expect(states['Register global model'].Parameters.CustomerMetadataProperties.Clients).toBe('north-america,europe');
  });

  test('the robust aggregators and privacy reach the spec as configured', () => {
    const trimmed = coordinator({ aggregation: { aggregator: FederatedAggregator.TRIMMED_MEAN, trimFraction: 0.2 }, minClients: 1 });
    const [trimmedMachine] = expectValidStateMachines(Template.fromStack(trimmed.stack).toJSON());
    expect((trimmedMachine.definition as any).States['Start federation'].Parameters.Payload.federation).toMatchObject({ aggregation: { aggregator: 'trimmed-mean', trimFraction: 0.2 }, minClients: 1 });
    const private_ = coordinator({ aggregation: { privacy: { clipNorm: 1, noiseMultiplier: 1.1 }, serverLearningRate: 0.5 } });
    const [privateMachine] = expectValidStateMachines(Template.fromStack(private_.stack).toJSON());
    expect((privateMachine.definition as any).States['Start federation'].Parameters.Payload.federation.aggregation).toEqual({ aggregator: 'fedavg', privacy: { clipNorm: 1, noiseMultiplier: 1.1 }, serverLearningRate: 0.5 });
  });

  test('names every bad prop at once', () => {
    const problems = thrownLines(() =>
      coordinator({
        name: 'Churn!',
        clients: [
          { name: 'eu', account: '12', region: 'europe' },
          { name: 'eu', account: '777788889999', region: 'eu-west-1' },
        ],
        training: { image: IMAGE, instanceType: 'm5.large' },
        minClients: 3,
        maxRounds: 0,
        aggregation: { aggregator: FederatedAggregator.MEDIAN, privacy: { clipNorm: 0, noiseMultiplier: 1 }, trimFraction: 0.1 },
        metric: { name: 'auc', direction: 'up' as never },
        statePrefix: 'no-slash',
      }),
    );
    const text = problems.join('\n');
    for (const field of [
      'name:',
      'clients[0].account:',
      'clients[0].region:',
      'clients[1].name: repeats clients[0].name',
      'clients[1].trainingImage: the image is in us-east-1, the silo in eu-west-1',
      'training.instanceType:',
      'minClients:',
      'maxRounds:',
      'aggregation.privacy: is only available with FedAvg',
      'aggregation.privacy.clipNorm:',
      'aggregation.trimFraction:',
      'metric.direction:',
      'statePrefix:',
    ]) {
      expect(text).toContain(field);
    }
  });

  test('refuses rounds and polls that would outgrow an execution history', () => {
    const problems = thrownLines(() => coordinator({ maxRounds: 200, roundTimeout: Duration.hours(6), pollInterval: Duration.minutes(1) }));
    expect(problems.join('\n')).toMatch(/maxRounds, roundTimeout, pollInterval: 200 rounds of up to 361 polls would write up to \d+ events, more than the 25000/);
  });
});
