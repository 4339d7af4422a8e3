import { Duration, Names, RemovalPolicy, Validations } from 'aws-cdk-lib';
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
import { MlFunction } from '../core/ml-function';
import { RAG_METRICS_NAMESPACE } from './document-ingestion';
import { embeddingModelArn, foundationModelArn, generationModelProblem, validateEmbeddingModel } from './private/bedrock-models';
import type { PromptTemplate } from './prompt-template';
import type { RagGuardrail } from './rag-guardrail';
import type { VectorKnowledgeBase } from './vector-knowledge-base';
import { assertRequiredProps } from '../core/private/props';

export interface RagApiProps {
  readonly knowledgeBase: VectorKnowledgeBase;
  readonly prompt: PromptTemplate;
  readonly guardrail: RagGuardrail;
  /** Embeds the question; must be the model that embedded the documents. */
  readonly embeddingModelId: string;
  /** Bedrock model that answers (Converse). */
  readonly generationModelId: string;
  /** Key that encrypts the function's and the API's log groups. */
  readonly encryptionKey: kms.IKey;
  /**
   * Passages given to the model.
   * @default 5
   */
  readonly topK?: number;
  /**
   * Minimum k-NN score of a passage, on OpenSearch's scale for the space type: for `l2`, 1 / (1 + d²), which
   * for normalized embeddings (Titan v2 normalizes) runs from 0.2 (opposite) to 1 (identical), 0.5 at a cosine
   * similarity of 0.5; for `cosinesimil`, (1 + cosine) / 2.
   * @default 0
   */
  readonly scoreFloor?: number;
  /**
   * Fuse a BM25 full-text search with the k-NN search (reciprocal-rank fusion).
   * @default false
   */
  readonly hybrid?: boolean;
  /**
   * Longest question accepted, in characters.
   * @default 2000
   */
  readonly maxQuestionCharacters?: number;
  /**
   * @default 50
   */
  readonly throttlingRateLimit?: number;
  /**
   * @default 100
   */
  readonly throttlingBurstLimit?: number;
  /**
   * @default 10
   */
  readonly reservedConcurrency?: number;
  /**
   * Run the function in this VPC (Bedrock Runtime, Bedrock Agent and the domain must be reachable there).
   * @default - outside any VPC
   */
  readonly vpc?: ec2.IVpc;
  /**
   * Protect the API with AWS WAF (AWS managed common and known-bad-input rules, per-IP rate limit).
   * @default false
   */
  readonly waf?: boolean;
  /**
   * Create API Gateway's account-level CloudWatch Logs role. Leave it off when another API of the
   * account (the inference API of the platform) already sets it.
   * @default true
   */
  readonly cloudWatchRole?: boolean;
  /**
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * Notified of server errors and throttling of the API.
   * @default - no alarms
   */
  readonly alarmAction?: cloudwatch.IAlarmAction;
}

const STAGE_NAME = 'v1';

/**
 * The retrieval and generation API of the RAG pattern: `POST /query` with `{ "question": "..." }`, API
 * Gateway (IAM auth, request validation, throttling, access logs, tracing, optional WAF) in front of a
 * TypeScript function that embeds the question, searches the knowledge base (k-NN with a score floor,
 * optionally fused with BM25), renders the pinned prompt version and answers with Bedrock Converse under
 * the guardrail, returning the answer with its citations (document and chunk).
 */
export class RagApi extends Construct {
  public readonly api: apigateway.RestApi;
  public readonly handler: lambda.Function;
  public readonly webAcl?: wafv2.CfnWebACL;
  public readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: RagApiProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'RagApi', props, { knowledgeBase: 'construct', prompt: 'construct', guardrail: 'construct', embeddingModelId: 'string', generationModelId: 'string', encryptionKey: 'object' });
    const maxQuestion = props.maxQuestionCharacters ?? 2000;
    this.validate(props, maxQuestion);
    const retention = props.logRetention ?? logs.RetentionDays.ONE_YEAR;
    const removalPolicy = props.logRemovalPolicy ?? RemovalPolicy.RETAIN;
    const kb = props.knowledgeBase;

    const fn = new MlFunction(this, 'Handler', {
      handler: 'rag-query',
      description: 'Answers questions from the knowledge base with Bedrock (RAG)',
      encryptionKey: props.encryptionKey,
      invokedSynchronouslyBy: 'API Gateway',
      calls: 'Bedrock Runtime, Bedrock Prompt Management and the OpenSearch domain',
      // API Gateway gives up after 29 s: stop just before, so the caller gets our error.
      timeout: Duration.seconds(28),
      memorySize: 1024,
      reservedConcurrency: props.reservedConcurrency ?? 10,
      logRetention: retention,
      logRemovalPolicy: removalPolicy,
      vpc: props.vpc,
      environment: {
        POWERTOOLS_SERVICE_NAME: 'rag-query',
        POWERTOOLS_METRICS_NAMESPACE: RAG_METRICS_NAMESPACE,
        OPENSEARCH_ENDPOINT: kb.endpoint,
        INDEX_NAME: kb.index.indexName,
        EMBEDDING_MODEL_ID: props.embeddingModelId,
        EMBEDDING_DIMENSION: String(kb.index.dimension),
        GENERATION_MODEL_ID: props.generationModelId,
        TOP_K: String(props.topK ?? 5),
        SCORE_FLOOR: String(props.scoreFloor ?? 0),
        HYBRID: String(props.hybrid ?? false),
        MAX_QUESTION_CHARACTERS: String(maxQuestion),
        PROMPT_ARN: props.prompt.promptArn,
        PROMPT_VERSION: props.prompt.versionNumber,
        GUARDRAIL_ID: props.guardrail.guardrailId,
        GUARDRAIL_VERSION: props.guardrail.versionNumber,
        AWS_MAX_ATTEMPTS: '2',
      },
    });
    this.handler = fn.function;
    kb.grantRead(this.handler);
    props.prompt.grantRead(this.handler);
    props.guardrail.grantApply(this.handler);
    iam.Grant.addToPrincipal({
      grantee: this.handler,
      actions: ['bedrock:InvokeModel'],
      resourceArns: [embeddingModelArn(this, props.embeddingModelId), foundationModelArn(this, props.generationModelId)],
    });

    const accessLogs = new logs.LogGroup(this, 'AccessLogs', { encryptionKey: props.encryptionKey, retention, removalPolicy });
    const cloudWatchRole = props.cloudWatchRole ?? true;
    this.api = iamLambdaRestApi(this, {
      description: 'Retrieval-augmented generation: questions answered from the knowledge base',
      stageName: STAGE_NAME,
      accessLogs,
      throttlingRateLimit: props.throttlingRateLimit ?? 50,
      throttlingBurstLimit: props.throttlingBurstLimit ?? 100,
      cloudWatchRole,
      notes: {
        grantedWith: 'RagApi.grantQuery',
        whyNoCache: "Answers are generated for the caller's own question under a guardrail; an API Gateway cache would serve one caller's answer to another.",
      },
    });

    const requestModel = this.api.addModel('QueryRequest', {
      contentType: 'application/json',
      schema: {
        schema: apigateway.JsonSchemaVersion.DRAFT4,
        type: apigateway.JsonSchemaType.OBJECT,
        required: ['question'],
        properties: { question: { type: apigateway.JsonSchemaType.STRING, minLength: 1, maxLength: maxQuestion } },
        additionalProperties: false,
      },
    });
    const validator = this.api.addRequestValidator('BodyValidator', { validateRequestBody: true, validateRequestParameters: true });
    this.api.addGatewayResponse('BadRequestBody', {
      type: apigateway.ResponseType.BAD_REQUEST_BODY,
      statusCode: '400',
      templates: { 'application/json': '{"error":"BadRequest","message":$context.error.validationErrorString}' },
    });
    this.api.root.addResource('query').addMethod('POST', new apigateway.LambdaIntegration(this.handler), {
      requestValidator: validator,
      requestModels: { 'application/json': requestModel },
    });

    if (props.waf) {
      this.webAcl = managedRulesWebAcl(this, 'RagApi', 1000);
      const wafLogs = new logs.LogGroup(this, 'WebAclLogs', {
        logGroupName: `aws-waf-logs-${Names.uniqueResourceName(this, { maxLength: 100 })}`,
        encryptionKey: props.encryptionKey,
        retention,
        removalPolicy,
      });
      new wafv2.CfnLoggingConfiguration(this, 'WebAclLogging', {
        resourceArn: this.webAcl.attrArn,
        logDestinationConfigs: [wafLogs.logGroupArn],
        redactedFields: [{ singleHeader: { Name: 'authorization' } }],
      });
      new wafv2.CfnWebACLAssociation(this, 'WebAclAssociation', { resourceArn: this.api.deploymentStage.stageArn, webAclArn: this.webAcl.attrArn });
    } else {
      const reason = 'WAF is switched off in this environment to save cost (config api.waf); the API still requires SigV4 IAM auth and is throttled per stage.';
      Validations.of(this.api.deploymentStage).acknowledge(
        { id: 'AwsSolutions-APIG3', reason },
        { id: 'HIPAA.Security-APIGWAssociatedWithWAF', reason },
        { id: 'NIST.800.53.R5-APIGWAssociatedWithWAF', reason },
      );
    }
    if (props.alarmAction) this.createAlarms(props.alarmAction);
  }

  /** Lets a principal call `POST /query` (execute-api:Invoke on the method). */
  public grantQuery(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['execute-api:Invoke'], resourceArns: [this.api.arnForExecuteApi('POST', '/query', STAGE_NAME)] });
  }

  /** Questions the guardrail stopped, as the function counts them (Sum over 5 minutes by default). */
  public metricGuardrailInterventions(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('GuardrailInterventions', props);
  }

  /** Questions with no passage above the score floor (Sum over 5 minutes by default). */
  public metricEmptyRetrievals(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('EmptyRetrievals', props);
  }

  /** Questions answered (Sum over 5 minutes by default). */
  public metricAnswers(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('Answers', props);
  }

  private metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({ namespace: RAG_METRICS_NAMESPACE, metricName, dimensionsMap: { service: 'rag-query' }, statistic: 'Sum', period: Duration.minutes(5), ...props });
  }

  private createAlarms(action: cloudwatch.IAlarmAction): void {
    const serverErrors = this.api.metricServerError({ period: Duration.minutes(5), statistic: 'Sum' }).createAlarm(this, 'ServerErrorsAlarm', {
      alarmDescription: 'The RAG API answered with 5xx errors: Bedrock or OpenSearch failing, or a broken configuration (see the function logs).',
      threshold: 5,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const throttled = this.metric('Throttled').createAlarm(this, 'ThrottledAlarm', {
      alarmDescription: 'Bedrock or OpenSearch throttled RAG questions (429s): raise the Bedrock quota or the domain size.',
      threshold: 10,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    for (const alarm of [serverErrors, throttled]) {
      alarm.addAlarmAction(action);
      this.alarms.push(alarm);
    }
  }

  private validate(props: RagApiProps, maxQuestion: number): void {
    const fail = (message: string): never => {
      throw new Error(`${this.node.path} (RagApi): ${message}`);
    };
    const problem = validateEmbeddingModel(props.embeddingModelId, props.knowledgeBase.index.dimension);
    if (problem) fail(problem);
    if (props.topK !== undefined && !(Number.isInteger(props.topK) && props.topK >= 1 && props.topK <= 100)) fail(`topK: must be a whole number from 1 to 100; got ${props.topK}`);
    if (props.scoreFloor !== undefined && !(props.scoreFloor >= 0)) fail(`scoreFloor: must be >= 0; got ${props.scoreFloor}`);
    if (!(Number.isInteger(maxQuestion) && maxQuestion >= 1 && maxQuestion <= 20000)) fail(`maxQuestionCharacters: must be a whole number from 1 to 20000; got ${maxQuestion}`);
    const generationProblem = generationModelProblem(props.generationModelId);
    if (generationProblem) fail(generationProblem);
  }
}
