import { RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as opensearch from 'aws-cdk-lib/aws-opensearchservice';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { PlatformConfig } from '../../config/schema';
import { SecureBucket } from '../core/secure-bucket';
import { DocumentIngestion } from '../genai/document-ingestion';
import { KnnEngine, KnnSpaceType } from '../genai/knn-index';
import { PromptTemplate } from '../genai/prompt-template';
import { RagApi } from '../genai/rag-api';
import { RagGuardrail } from '../genai/rag-guardrail';
import { VectorKnowledgeBase } from '../genai/vector-knowledge-base';
import type { FoundationStack } from './foundation-stack';

export interface RagStackProps extends StackProps {
  readonly config: PlatformConfig;
  readonly foundation: FoundationStack;
  /**
   * Whether this stack's API creates API Gateway's account-level logging role.
   * @default true
   */
  readonly apiGatewayCloudWatchRole?: boolean;
}

/** RAG: the knowledge base (OpenSearch), its ingestion, the prompt, the guardrail and the question-answering API. */
export class RagStack extends Stack {
  public readonly documentsBucket: s3.Bucket;
  public readonly knowledgeBase: VectorKnowledgeBase;
  public readonly ingestion: DocumentIngestion;
  public readonly prompt: PromptTemplate;
  public readonly guardrail: RagGuardrail;
  public readonly api: RagApi;

  constructor(scope: Construct, id: string, props: RagStackProps) {
    super(scope, id, props);
    const { config, foundation } = props;
    const rag = config.rag!;
    const retain = config.retainData;
    const removalPolicy = retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const logRetention = config.logRetentionDays as logs.RetentionDays;
    const key = foundation.dataKey;
    const alarmAction = foundation.alarmTopic.alarmAction;
    const vpc = foundation.vpc;
    if (vpc) this.addBedrockEndpoints(vpc, config.network.cidr);

    this.documentsBucket = new SecureBucket(this, 'Documents', { encryptionKey: key, serverAccessLogsBucket: foundation.accessLogsBucket, removalPolicy }).bucket;
    this.knowledgeBase = new VectorKnowledgeBase(this, 'KnowledgeBase', {
      encryptionKey: key,
      engineVersion: opensearch.EngineVersion.openSearch(rag.domain.engineVersion),
      capacity: {
        dataNodes: rag.domain.dataNodes,
        dataNodeInstanceType: rag.domain.dataNodeInstanceType,
        masterNodes: rag.domain.masterNodes,
        masterNodeInstanceType: rag.domain.masterNodeInstanceType,
        ebsVolumeSizeGiB: rag.domain.ebsVolumeSizeGiB,
        availabilityZoneCount: rag.domain.availabilityZoneCount,
      },
      index: {
        indexName: rag.index.name,
        dimension: rag.index.dimension,
        engine: rag.index.engine as KnnEngine,
        spaceType: rag.index.spaceType as KnnSpaceType,
        replicas: rag.index.replicas,
      },
      vpc,
      logRetention,
      removalPolicy,
      alarmAction,
    });
    this.ingestion = new DocumentIngestion(this, 'Ingestion', {
      knowledgeBase: this.knowledgeBase,
      bucket: this.documentsBucket,
      prefix: rag.documentsPrefix,
      embeddingModelId: rag.embeddingModelId,
      chunkSize: rag.chunking.size,
      chunkOverlap: rag.chunking.overlap,
      encryptionKey: key,
      vpc,
      logRetention,
      removalPolicy,
      alarmAction,
    });
    this.prompt = new PromptTemplate(this, 'Prompt', {
      template: rag.prompt.template,
      systemPrompt: rag.prompt.systemPrompt,
      fewShotExamples: rag.prompt.fewShotExamples,
      modelId: rag.generationModelId,
      inference: { maxTokens: rag.prompt.maxTokens, temperature: rag.prompt.temperature },
      pinnedVersion: rag.prompt.pinnedVersion,
      encryptionKey: key,
    });
    this.guardrail = new RagGuardrail(this, 'Guardrail', {
      contentFilters: rag.guardrail.contentFilters,
      deniedTopics: rag.guardrail.deniedTopics,
      piiEntities: rag.guardrail.piiEntities,
      grounding: { groundingThreshold: rag.guardrail.groundingThreshold, relevanceThreshold: rag.guardrail.relevanceThreshold },
      encryptionKey: key,
      interventionsAlarmThreshold: rag.guardrail.interventionsAlarmThreshold,
      alarmAction,
    });
    this.api = new RagApi(this, 'Api', {
      knowledgeBase: this.knowledgeBase,
      prompt: this.prompt,
      guardrail: this.guardrail,
      embeddingModelId: rag.embeddingModelId,
      generationModelId: rag.generationModelId,
      encryptionKey: key,
      topK: rag.retrieval.topK,
      scoreFloor: rag.retrieval.scoreFloor,
      hybrid: rag.retrieval.hybrid,
      maxQuestionCharacters: rag.retrieval.maxQuestionCharacters,
      throttlingRateLimit: config.api.throttlingRateLimit,
      throttlingBurstLimit: config.api.throttlingBurstLimit,
      reservedConcurrency: config.api.reservedConcurrency,
      waf: config.api.waf,
      cloudWatchRole: props.apiGatewayCloudWatchRole ?? true,
      vpc,
      logRetention,
      logRemovalPolicy: removalPolicy,
      alarmAction,
    });
  }

  /** The isolated subnets reach Bedrock (runtime for embeddings and Converse, agent for Prompt Management) through interface endpoints. */
  private addBedrockEndpoints(vpc: ec2.IVpc, cidr: string): void {
    const securityGroup = new ec2.SecurityGroup(this, 'BedrockEndpointSecurityGroup', {
      vpc,
      description: 'HTTPS from inside the VPC to the Bedrock endpoints',
      allowAllOutbound: false,
    });
    securityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(443), 'HTTPS from the VPC');
    for (const [id, service] of [
      ['BedrockRuntimeEndpoint', ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME],
      ['BedrockAgentEndpoint', ec2.InterfaceVpcEndpointAwsService.BEDROCK_AGENT],
    ] as const) {
      new ec2.InterfaceVpcEndpoint(this, id, { vpc, service, privateDnsEnabled: true, securityGroups: [securityGroup], open: false, subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED } });
    }
  }
}
