import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { DataKey } from '../../../lib/core/data-key';
import { DocumentIngestion } from '../../../lib/genai/document-ingestion';
import { KnnEngine, KnnSpaceType } from '../../../lib/genai/knn-index';
import { PromptTemplate } from '../../../lib/genai/prompt-template';
import { RagApi } from '../../../lib/genai/rag-api';
import { RagGuardrail } from '../../../lib/genai/rag-guardrail';
import { VectorKnowledgeBase, type VectorKnowledgeBaseProps } from '../../../lib/genai/vector-knowledge-base';
import { nagFindings } from '../../support/platform';

const TEMPLATE = 'Passages:\n{{context}}\nQuestion: {{question}}';
const GENERATION = 'anthropic.claude-3-haiku-20240307-v1:0';
const EMBEDDING = 'amazon.titan-embed-text-v2:0';

function build(options: { vpc?: boolean; knowledgeBase?: Partial<VectorKnowledgeBaseProps> } = {}) {
  const app = new App();
  const stack = new Stack(app, 'Rag', { env: { account: '123456789012', region: 'us-east-1' } });
  const key = new DataKey(stack, 'Key').key;
  const vpc = options.vpc ? new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 0, subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] }) : undefined;
  const topic = new sns.Topic(stack, 'Topic', { masterKey: key, enforceSSL: true });
  const action = new actions.SnsAction(topic);
  const knowledgeBase = new VectorKnowledgeBase(stack, 'KnowledgeBase', {
    encryptionKey: key,
    alarmAction: action,
    index: { indexName: 'docs', dimension: 1024 },
    vpc,
    removalPolicy: RemovalPolicy.DESTROY,
    ...options.knowledgeBase,
  });
  return { app, stack, key, vpc, action, knowledgeBase };
}

function buildAll(options: { vpc?: boolean; waf?: boolean } = {}) {
  const world = build(options);
  const { stack, key, vpc, action, knowledgeBase } = world;
  const bucket = new s3.Bucket(stack, 'Docs', { encryptionKey: key, enforceSSL: true, blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL, versioned: true, serverAccessLogsPrefix: 'logs/' });
  const ingestion = new DocumentIngestion(stack, 'Ingestion', { knowledgeBase, bucket, embeddingModelId: EMBEDDING, chunkSize: 1000, chunkOverlap: 100, encryptionKey: key, vpc, alarmAction: action, removalPolicy: RemovalPolicy.DESTROY });
  const prompt = new PromptTemplate(stack, 'Prompt', { template: TEMPLATE, systemPrompt: 'Answer from the passages.', modelId: GENERATION, pinnedVersion: '2', fewShotExamples: [{ question: 'Q', answer: 'A [1].' }], encryptionKey: key });
  const guardrail = new RagGuardrail(stack, 'Guardrail', { alarmAction: action, encryptionKey: key });
  const api = new RagApi(stack, 'Api', { knowledgeBase, prompt, guardrail, embeddingModelId: EMBEDDING, generationModelId: GENERATION, encryptionKey: key, topK: 4, scoreFloor: 0.3, hybrid: true, vpc, waf: options.waf, alarmAction: action });
  return { ...world, bucket, ingestion, prompt, guardrail, api };
}

describe('VectorKnowledgeBase', () => {
  test('creates an encrypted, HTTPS-only domain with fine-grained access control, logs, and the k-NN index resource', () => {
    const { stack, knowledgeBase } = build();
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::OpenSearchService::Domain', {
      EngineVersion: 'OpenSearch_2.19',
      ClusterConfig: { InstanceCount: 1, InstanceType: 't3.medium.search', DedicatedMasterEnabled: false, ZoneAwarenessEnabled: false, MultiAZWithStandbyEnabled: false },
      EncryptionAtRestOptions: { Enabled: true, KmsKeyId: Match.anyValue() },
      NodeToNodeEncryptionOptions: { Enabled: true },
      DomainEndpointOptions: { EnforceHTTPS: true, TLSSecurityPolicy: 'Policy-Min-TLS-1-2-2019-07' },
      AdvancedSecurityOptions: { Enabled: true, InternalUserDatabaseEnabled: false, MasterUserOptions: { MasterUserARN: Match.anyValue() } },
      LogPublishingOptions: { SEARCH_SLOW_LOGS: { Enabled: true }, INDEX_SLOW_LOGS: { Enabled: true }, ES_APPLICATION_LOGS: { Enabled: true }, AUDIT_LOGS: { Enabled: true } },
      AccessPolicies: { Statement: [Match.objectLike({ Principal: { AWS: Match.anyValue() }, Action: 'es:ESHttp*' })] },
    });
    template.resourceCountIs('AWS::Logs::LogGroup', 5);
    template.allResourcesProperties('AWS::Logs::LogGroup', { KmsKeyId: Match.anyValue() });
    template.hasResourceProperties('Custom::KnnIndex', {
      ServiceToken: { 'Fn::GetAtt': [Match.stringLikeRegexp('KnowledgeBaseIndexManager'), 'Arn'] },
      IndexName: 'docs',
      Dimension: 1024,
      Engine: 'faiss',
      SpaceType: 'l2',
      WriterRoleArns: [],
      ReaderRoleArns: [],
    });
    // No aws-cdk-lib custom resource (and so no function of its own) writes the log or access policies.
    template.resourceCountIs('Custom::AWS', 0);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'AWS/ES', MetricName: 'ClusterStatus.red', Threshold: 1 });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'AWS/ES', MetricName: 'FreeStorageSpace', Threshold: 2560, ComparisonOperator: 'LessThanThreshold' });
    template.resourceCountIs('AWS::Lambda::Function', 1);
    expect(knowledgeBase.endpoint).toMatch(/^https:\/\//);
  });

  test('sizes a production domain: zone awareness, dedicated masters, gp3 volumes, retained', () => {
    const { stack } = build({
      vpc: true,
      knowledgeBase: {
        capacity: { dataNodes: 2, dataNodeInstanceType: 'r6g.large.search', masterNodes: 3, masterNodeInstanceType: 'm6g.large.search', ebsVolumeSizeGiB: 50, availabilityZoneCount: 2 },
        index: { indexName: 'docs', dimension: 1024, replicas: 1 },
        removalPolicy: RemovalPolicy.RETAIN,
      },
    });
    const template = Template.fromStack(stack);
    template.hasResource('AWS::OpenSearchService::Domain', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        ClusterConfig: Match.objectLike({ InstanceCount: 2, DedicatedMasterCount: 3, DedicatedMasterType: 'm6g.large.search', ZoneAwarenessEnabled: true, ZoneAwarenessConfig: { AvailabilityZoneCount: 2 } }),
        EBSOptions: { EBSEnabled: true, VolumeSize: 50, VolumeType: 'gp3' },
        VPCOptions: { SubnetIds: [Match.anyValue(), Match.anyValue()], SecurityGroupIds: Match.anyValue() },
      }),
    });
    template.hasResource('Custom::KnnIndex', { DeletionPolicy: 'Retain' });
  });

  test.each([
    [{ capacity: { dataNodeInstanceType: 'huge.search' } }, /capacity\.dataNodeInstanceType: 'huge\.search' is not an OpenSearch Service instance type/],
    [{ capacity: { masterNodes: 2 } }, /capacity\.masterNodes: must be 3 or 5/],
    [{ capacity: { dataNodes: 3, availabilityZoneCount: 2 } }, /capacity\.dataNodes: must be a multiple of availabilityZoneCount \(2\)/],
    [{ index: { indexName: 'docs', dimension: 8, replicas: 1 } }, /index\.replicas: 1 replicas need at least 2 data nodes/],
    [{ index: { indexName: 'Docs', dimension: 8 } }, /Rag\/KnowledgeBase\/Index \(KnnIndex\): indexName: must be lowercase/],
    [{ index: { indexName: 'docs', dimension: 8, engine: KnnEngine.FAISS, spaceType: KnnSpaceType.COSINE } }, /spaceType: the faiss engine supports l2, innerproduct; got 'cosinesimil'/],
  ] as Array<[Partial<VectorKnowledgeBaseProps>, RegExp]>)('rejects bad props with the prop and path: %j', (props, message) => {
    expect(() => build({ knowledgeBase: props })).toThrow(message);
  });
});

describe('DocumentIngestion, PromptTemplate, RagGuardrail and RagApi', () => {
  test('queues S3 events of the prefix through EventBridge to an encrypted queue with a dead-letter queue', () => {
    const { stack } = buildAll();
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::S3::Bucket', { NotificationConfiguration: { EventBridgeConfiguration: { EventBridgeEnabled: true } } });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['aws.s3'], 'detail-type': ['Object Created', 'Object Deleted'], detail: { object: { key: [{ prefix: 'documents/' }] } } },
    });
    template.hasResourceProperties('AWS::SQS::Queue', { RedrivePolicy: { maxReceiveCount: 5, deadLetterTargetArn: Match.anyValue() }, KmsMasterKeyId: Match.anyValue(), VisibilityTimeout: 1800 });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { FunctionResponseTypes: ['ReportBatchItemFailures'], BatchSize: 5 });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ INDEX_NAME: 'docs', EMBEDDING_MODEL_ID: EMBEDDING, EMBEDDING_DIMENSION: '1024', CHUNK_SIZE: '1000', CHUNK_OVERLAP: '100' }) },
    });
    // No BucketNotificationsHandler custom resource.
    template.resourceCountIs('Custom::S3BucketNotifications', 0);
  });

  test('maps the ingestion role as writer and the API role as reader of the index, with IAM on the exact paths', () => {
    const { stack } = buildAll();
    const template = Template.fromStack(stack);
    const index = Object.values(template.findResources('Custom::KnnIndex'))[0].Properties;
    expect(index.WriterRoleArns).toEqual([{ 'Fn::GetAtt': [expect.stringMatching(/^IngestionHandlerRole/), 'Arn'] }]);
    expect(index.ReaderRoleArns).toEqual([{ 'Fn::GetAtt': [expect.stringMatching(/^ApiHandlerRole/), 'Arn'] }]);
    const policies = JSON.stringify(template.findResources('AWS::IAM::ManagedPolicy'));
    expect(policies).toContain('/_bulk');
    expect(policies).toContain('/docs/_delete_by_query');
    expect(policies).toContain('/docs/_search');
    expect(policies).toContain('foundation-model/amazon.titan-embed-text-v2:0');
    expect(policies).toContain(`foundation-model/${GENERATION}`);
    expect(policies).toContain('bedrock:ApplyGuardrail');
    expect(policies).toContain('bedrock:GetPrompt');
    expect(policies).not.toMatch(/"bedrock:\*"|"es:\*"/);
  });

  test('stores the prompt as a CHAT template with the few-shot turns, and pins a version', () => {
    const { stack } = buildAll();
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Bedrock::Prompt', {
      DefaultVariant: 'default',
      Variants: [
        Match.objectLike({
          TemplateType: 'CHAT',
          ModelId: GENERATION,
          TemplateConfiguration: {
            Chat: {
              System: [{ Text: 'Answer from the passages.' }],
              Messages: [
                { Role: 'user', Content: [{ Text: 'Q' }] },
                { Role: 'assistant', Content: [{ Text: 'A [1].' }] },
                { Role: 'user', Content: [{ Text: TEMPLATE }] },
              ],
              InputVariables: [{ Name: 'context' }, { Name: 'question' }],
            },
          },
        }),
      ],
    });
    template.hasResourceProperties('AWS::Bedrock::PromptVersion', { Description: 'pinned version 2' });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ PROMPT_VERSION: { 'Fn::GetAtt': [Match.stringLikeRegexp('PromptVersion'), 'Version'] }, TOP_K: '4', SCORE_FLOOR: '0.3', HYBRID: 'true' }) },
    });
  });

  test.each([
    ['Question: {{question}}', /template: missing variable \{\{context\}\}; without it the retrieved passages never reach the model/],
    ['{{context}} {{question}} {{tone}}', /template: unknown variable \{\{tone\}\}; the RAG API fills in only \{\{context\}\} and \{\{question\}\}/],
  ])('fails synth for a template with a missing or unknown variable: %s', (template, message) => {
    const stack = new Stack();
    expect(() => new PromptTemplate(stack, 'Prompt', { template, systemPrompt: 's', modelId: GENERATION, pinnedVersion: '1' })).toThrow(message);
  });

  test('guards input and output with content filters, PII masking and contextual grounding, and alarms on interventions', () => {
    const { stack } = buildAll();
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Bedrock::Guardrail', {
      ContentPolicyConfig: { FiltersConfig: Match.arrayWith([{ Type: 'PROMPT_ATTACK', InputStrength: 'HIGH', OutputStrength: 'NONE' }]) },
      SensitiveInformationPolicyConfig: { PiiEntitiesConfig: Match.arrayWith([{ Type: 'EMAIL', Action: 'ANONYMIZE' }]) },
      ContextualGroundingPolicyConfig: { FiltersConfig: [{ Type: 'GROUNDING', Threshold: 0.75 }, { Type: 'RELEVANCE', Threshold: 0.75 }] },
    });
    template.hasResourceProperties('AWS::Bedrock::GuardrailVersion', { Description: Match.stringLikeRegexp('^policy [0-9a-f]{16}$') });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Bedrock/Guardrails',
      MetricName: 'InvocationsIntervened',
      Threshold: 10,
      Dimensions: Match.arrayWith([Match.objectLike({ Name: 'GuardrailArn' }), Match.objectLike({ Name: 'GuardrailVersion' })]),
    });
  });

  test.each([
    [{ contentFilters: [{ type: 'RUDENESS', inputStrength: 'HIGH', outputStrength: 'HIGH' }] }, /contentFilters\[0\]\.type: 'RUDENESS' is not one of HATE/],
    [{ piiEntities: [{ type: 'EMAIL', action: 'HIDE' }] }, /piiEntities\[0\]\.action: 'HIDE' is not one of/],
    [{ grounding: { groundingThreshold: 1 } }, /grounding\.groundingThreshold: must be from 0 to 0\.99/],
  ])('rejects a bad guardrail policy naming the field: %j', (props, message) => {
    expect(() => new RagGuardrail(new Stack(), 'Guardrail', props)).toThrow(message);
  });

  test('serves POST /query with IAM auth, a validated body, throttling, access logs and WAF', () => {
    const { stack } = buildAll({ waf: true });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::ApiGateway::Method', { HttpMethod: 'POST', AuthorizationType: 'AWS_IAM', RequestValidatorId: Match.anyValue() });
    template.hasResourceProperties('AWS::ApiGateway::Model', { Schema: Match.objectLike({ required: ['question'], properties: { question: { type: 'string', minLength: 1, maxLength: 2000 } } }) });
    template.hasResourceProperties('AWS::ApiGateway::Stage', { TracingEnabled: true, AccessLogSetting: Match.anyValue(), MethodSettings: [Match.objectLike({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100, DataTraceEnabled: false })] });
    template.resourceCountIs('AWS::WAFv2::WebACLAssociation', 1);
  });

  test('runs every function in the VPC and opens the domain only to them', () => {
    const { stack } = buildAll({ vpc: true });
    const template = Template.fromStack(stack);
    template.allResourcesProperties('AWS::Lambda::Function', { VpcConfig: Match.objectLike({ SubnetIds: Match.anyValue() }) });
    const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress')).filter((resource) => resource.Properties.FromPort === 443);
    expect(ingress).toHaveLength(3);
  });

  test('rejects an embedding model that does not fit the index', () => {
    const { stack, key, knowledgeBase } = build();
    const bucket = new s3.Bucket(stack, 'Docs');
    expect(() => new DocumentIngestion(stack, 'Ingestion', { knowledgeBase, bucket, embeddingModelId: 'amazon.titan-embed-text-v1', chunkSize: 1000, chunkOverlap: 100, encryptionKey: key })).toThrow(
      /Rag\/Ingestion \(DocumentIngestion\): embeddingModelId: amazon\.titan-embed-text-v1 returns vectors of 1536 dimensions; the index has 1024/,
    );
    expect(() => new DocumentIngestion(stack, 'Ingestion2', { knowledgeBase, bucket, embeddingModelId: EMBEDDING, chunkSize: 500, chunkOverlap: 500, encryptionKey: key })).toThrow(/chunkOverlap: must be a whole number from 0 to below chunkSize \(500\)/);
  });

  test.each([false, true])('is clean under cdk-nag (VPC: %s)', (vpc) => {
    const { app } = buildAll({ vpc });
    app.synth();
    const ours = nagFindings(app).filter((finding) => /\/(KnowledgeBase|Ingestion|Prompt|Guardrail|Api)\//.test(finding.resource));
    expect(ours.map((finding) => `${finding.rule} ${finding.resource}`)).toEqual([]);
  });
});
