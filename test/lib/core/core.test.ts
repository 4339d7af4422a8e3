import * as cdk from 'aws-cdk-lib';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AlarmTopic, DataKey, ManagedPolicyRole, parseEcrImageUri, SageMakerExecutionRole, SecureBucket } from '../../../lib';
import { grantPublishTo } from '../../../lib/core/alarm-topic';
import { nagFindings } from '../../support/platform';

function stack() {
  const app = new App();
  return { app, stack: new Stack(app, 'Core', { env: { account: '111111111111', region: 'eu-west-1' } }) };
}

describe('DataKey', () => {
  test('rotates yearly, is retained by default and lets CloudWatch Logs of this account only use it', () => {
    const { stack: s } = stack();
    new DataKey(s, 'Key');
    const template = Template.fromStack(s);
    template.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Retain', Properties: Match.objectLike({ EnableKeyRotation: true }) });
    template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'logs.eu-west-1.amazonaws.com' },
            Condition: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': Match.anyValue() } },
          }),
        ]),
      },
    });
  });
});

describe('the wrappers are the CDK interfaces they wrap', () => {
  /** A stack that uses a key and a topic the way the constructs do, given as the wrappers or as what they wrap. */
  const build = (unwrap: boolean) => {
    const { stack: s } = stack();
    const dataKey = new DataKey(s, 'Key');
    const key: kms.IKey = unwrap ? dataKey.key : dataKey;
    const alarms = new AlarmTopic(s, 'Alarms', { encryptionKey: key });
    const topic: sns.ITopic = unwrap ? alarms.topic : alarms;
    const secure = new SecureBucket(s, 'Data', { encryptionKey: key });
    const bucket: s3.IBucket = unwrap ? secure.bucket : secure;
    new logs.LogGroup(s, 'Logs', { encryptionKey: key });
    new sns.Topic(s, 'Other', { masterKey: key });
    const role = new iam.Role(s, 'Reader', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    key.grantDecrypt(role);
    grantPublishTo(topic, role);
    bucket.grantRead(role, 'datasets/*');
    new SecureBucket(s, 'Copy', { encryptionKey: key, serverAccessLogsBucket: bucket, accessLogsPrefix: `${bucket.bucketName}-copy/` });
    new cdk.CfnOutput(s, 'Objects', { value: bucket.arnForObjects('datasets/*') });
    new cloudwatch.Alarm(s, 'Alarm', { metric: topic.metricNumberOfNotificationsFailed(), threshold: 1, evaluationPeriods: 1 }).addAlarmAction(new actions.SnsAction(topic));
    expect(Stack.of(key)).toBe(s);
    return Template.fromStack(s).toJSON();
  };

  test('a DataKey passed as a kms.IKey, an AlarmTopic as an sns.ITopic and a SecureBucket as an s3.IBucket give the template what they wrap gives', () => {
    const wrapped = build(false);
    expect(wrapped).toEqual(build(true));
    expect(JSON.stringify(wrapped)).toContain('"KmsMasterKeyId"');
  });
});

describe('SecureBucket', () => {
  test('is TLS-only, KMS-encrypted, versioned, private, logged and retained by default', () => {
    const { app, stack: s } = stack();
    const key = new DataKey(s, 'Key').key;
    new SecureBucket(s, 'Data', { encryptionKey: key });
    const template = Template.fromStack(s);
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        VersioningConfiguration: { Status: 'Enabled' },
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        BucketEncryption: { ServerSideEncryptionConfiguration: [Match.objectLike({ BucketKeyEnabled: true, ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }) })] },
        LoggingConfiguration: { DestinationBucketName: Match.anyValue(), LogFilePrefix: 'Core/Data/' },
      }),
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
    // The access-log bucket accepts log delivery by bucket policy, not ACLs.
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Principal: { Service: 'logging.s3.amazonaws.com' }, Action: 's3:PutObject' })]) },
    });
    app.synth();
    expect(nagFindings(app).map((f) => `${f.rule} ${f.resource}`)).toEqual([]);
  });

  test('can be destroyed with the stack outside production', () => {
    const { stack: s } = stack();
    new SecureBucket(s, 'Scratch', { encryptionKey: new DataKey(s, 'Key').key, retain: false });
    Template.fromStack(s).allResources('AWS::S3::Bucket', { DeletionPolicy: 'Delete' });
  });

  test('logs to one access-log bucket per stack, each bucket under its own prefix', () => {
    const { app, stack: s } = stack();
    const key = new DataKey(s, 'Key').key;
    const buckets = ['Raw', 'Curated', 'Models', 'Reports'].map((id) => new SecureBucket(s, id, { encryptionKey: key, retain: id === 'Models' }));
    const template = Template.fromStack(s);
    // Four secure buckets and one shared log bucket (it used to be one log bucket each: eight).
    template.resourceCountIs('AWS::S3::Bucket', 5);
    const shared = buckets[0].accessLogsBucket!;
    expect(buckets.every((bucket) => bucket.accessLogsBucket === shared)).toBe(true);
    expect(shared.node.path).toBe('Core/SharedAccessLogs/Resource');
    const logged = Object.values(template.findResources('AWS::S3::Bucket')).flatMap((bucket: any) => (bucket.Properties.LoggingConfiguration ? [bucket.Properties.LoggingConfiguration] : []));
    expect(logged.map((config: any) => config.LogFilePrefix).sort()).toEqual(['Core/Curated/', 'Core/Models/', 'Core/Raw/', 'Core/Reports/']);
    expect(new Set(logged.map((config: any) => JSON.stringify(config.DestinationBucketName))).size).toBe(1);
    // One bucket asks for retention, so the shared logs are retained although the first did not.
    template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain', Properties: Match.objectLike({ BucketEncryption: Match.objectLike({ ServerSideEncryptionConfiguration: [Match.objectLike({ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } })] }) }) });
    app.synth();
    expect(nagFindings(app).map((f) => `${f.rule} ${f.resource}`)).toEqual([]);
  });

  test('a stack of buckets that are all destroyable gets destroyable shared logs; another stack gets its own', () => {
    const app = new App();
    const first = new Stack(app, 'First');
    const second = new Stack(app, 'Second');
    for (const scope of [first, second]) {
      const key = new DataKey(scope, 'Key').key;
      new SecureBucket(scope, 'A', { encryptionKey: key, retain: false });
      new SecureBucket(scope, 'B', { encryptionKey: key, retain: false });
    }
    for (const scope of [first, second]) {
      const template = Template.fromStack(scope);
      template.resourceCountIs('AWS::S3::Bucket', 3);
      template.allResources('AWS::S3::Bucket', { DeletionPolicy: 'Delete' });
    }
  });

  test('works in an app without the recommended feature flags', () => {
    const { stack: s } = stack();
    expect(() => new SecureBucket(s, 'Data', { encryptionKey: new DataKey(s, 'Key').key, serverAccessLogsBucket: new s3.Bucket(s, 'Logs') })).not.toThrow();
  });
});

describe('AlarmTopic', () => {
  test('encrypts with the key, refuses plain HTTP and subscribes the given emails', () => {
    const { stack: s } = stack();
    new AlarmTopic(s, 'Alarms', { encryptionKey: new DataKey(s, 'Key').key, emails: ['oncall@example.com'] });
    const template = Template.fromStack(s);
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com' });
  });
});

describe('ManagedPolicyRole', () => {
  test('puts every grant into one customer-managed policy instead of an inline one', () => {
    const { stack: s } = stack();
    const role = new ManagedPolicyRole(s, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    new s3.Bucket(s, 'Bucket').grantRead(role);
    const template = Template.fromStack(s);
    template.resourceCountIs('AWS::IAM::Policy', 0);
    template.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: Match.arrayWith(['s3:GetObject*']) })]) },
    });
    template.hasResourceProperties('AWS::IAM::Role', { ManagedPolicyArns: [{ Ref: Match.stringLikeRegexp('^RoleGrants') }] });
  });
});

describe('SageMakerExecutionRole', () => {
  test('trusts SageMaker from this account only and grants image pulls per repository', () => {
    const { stack: s } = stack();
    const role = new SageMakerExecutionRole(s, 'Exec');
    role.grantPullImage('111111111111.dkr.ecr.eu-west-1.amazonaws.com/team/churn:1.2.3');
    role.grantPullImage('111111111111.dkr.ecr.eu-west-1.amazonaws.com/team/churn@sha256:' + 'a'.repeat(64));
    const template = Template.fromStack(s);
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [Match.objectLike({ Principal: { Service: 'sagemaker.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': '111111111111' } } })],
      },
    });
    const statements = Object.values(template.findResources('AWS::IAM::ManagedPolicy'))[0].Properties.PolicyDocument.Statement;
    // One statement for the repository, however many images of it are pulled.
    expect(statements.filter((st: any) => JSON.stringify(st.Resource).includes('repository/team/churn'))).toHaveLength(1);
    expect(JSON.stringify(template.toJSON())).not.toMatch(/AmazonSageMakerFullAccess|"sagemaker:\*"|"s3:\*"/);
  });

  test('rejects an image that is not in ECR, naming the construct', () => {
    const { stack: s } = stack();
    const role = new SageMakerExecutionRole(s, 'Exec');
    expect(() => role.grantPullImage('docker.io/library/python:3')).toThrow("Core/Exec: grantPullImage: 'docker.io/library/python:3' is not an ECR image URI");
  });

  test('parses ECR image URIs by tag and by digest', () => {
    expect(parseEcrImageUri('683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1')).toEqual({ account: '683313688378', region: 'us-east-1', repository: 'sagemaker-xgboost' });
    expect(parseEcrImageUri('111111111111.dkr.ecr.cn-north-1.amazonaws.com.cn/a/b@sha256:' + 'f'.repeat(64))).toEqual({ account: '111111111111', region: 'cn-north-1', repository: 'a/b' });
    expect(parseEcrImageUri('111111111111.dkr.ecr.us-east-1.amazonaws.com/no-tag')).toBeUndefined();
  });
});
