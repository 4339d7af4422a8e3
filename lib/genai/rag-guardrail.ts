import { createHash } from 'node:crypto';
import {
  GuardrailContentFilterType,
  GuardrailFilterStrength,
  GuardrailPiiEntityType,
  GuardrailSensitiveInformationAction,
} from '../core/private/aws-enums';
import { Duration, Names } from 'aws-cdk-lib';
import * as bedrock from 'aws-cdk-lib/aws-bedrock';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';

/** Namespace of the metrics Bedrock Guardrails publishes. */
export const GUARDRAILS_METRICS_NAMESPACE = 'AWS/Bedrock/Guardrails';

export interface GuardrailContentFilter {
  /** HATE, INSULTS, SEXUAL, VIOLENCE, MISCONDUCT or PROMPT_ATTACK (`@aws-sdk/client-bedrock`'s GuardrailContentFilterType). */
  readonly type: string;
  /** NONE, LOW, MEDIUM or HIGH. */
  readonly inputStrength: string;
  /** NONE, LOW, MEDIUM or HIGH; PROMPT_ATTACK only applies to input and must be NONE here. */
  readonly outputStrength: string;
}

export interface GuardrailDeniedTopic {
  readonly name: string;
  /** What the topic covers, in up to 200 characters. */
  readonly definition: string;
  /**
   * @default - none
   */
  readonly examples?: string[];
}

export interface GuardrailPiiEntity {
  /** A `@aws-sdk/client-bedrock` GuardrailPiiEntityType, e.g. EMAIL, PHONE, US_SOCIAL_SECURITY_NUMBER. */
  readonly type: string;
  /** ANONYMIZE (mask) or BLOCK. */
  readonly action: string;
}

export interface RagGuardrailProps {
  /**
   * @default - every category at HIGH on input and output (PROMPT_ATTACK on input only)
   */
  readonly contentFilters?: GuardrailContentFilter[];
  /**
   * @default - none
   */
  readonly deniedTopics?: GuardrailDeniedTopic[];
  /**
   * @default - EMAIL, PHONE and NAME masked; US_SOCIAL_SECURITY_NUMBER and CREDIT_DEBIT_CARD_NUMBER blocked
   */
  readonly piiEntities?: GuardrailPiiEntity[];
  /**
   * Contextual grounding: answers scoring below these thresholds (0-0.99) for grounding in the retrieved
   * passages or relevance to the question are blocked.
   * @default - 0.75 for both
   */
  readonly grounding?: { readonly groundingThreshold?: number; readonly relevanceThreshold?: number };
  /**
   * @default 'Sorry, I cannot answer that question.'
   */
  readonly blockedInputMessage?: string;
  /**
   * @default 'Sorry, I cannot give an answer to that from the knowledge base.'
   */
  readonly blockedOutputMessage?: string;
  /**
   * @default - an AWS owned key
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Alarm when the guardrail intervenes at least this many times in 5 minutes.
   * @default 10
   */
  readonly interventionsAlarmThreshold?: number;
  /**
   * @default - no alarms
   */
  readonly alarmAction?: cloudwatch.IAlarmAction;
}

const DEFAULT_FILTERS: GuardrailContentFilter[] = ['HATE', 'INSULTS', 'SEXUAL', 'VIOLENCE', 'MISCONDUCT', 'PROMPT_ATTACK'].map((type) => ({
  type,
  inputStrength: 'HIGH',
  outputStrength: type === 'PROMPT_ATTACK' ? 'NONE' : 'HIGH',
}));

const DEFAULT_PII: GuardrailPiiEntity[] = [
  { type: 'EMAIL', action: 'ANONYMIZE' },
  { type: 'PHONE', action: 'ANONYMIZE' },
  { type: 'NAME', action: 'ANONYMIZE' },
  { type: 'US_SOCIAL_SECURITY_NUMBER', action: 'BLOCK' },
  { type: 'CREDIT_DEBIT_CARD_NUMBER', action: 'BLOCK' },
];

/**
 * The responsible-AI guardrail of the RAG API: content filters, denied topics, PII masking and contextual
 * grounding (Bedrock Guardrails), a version that follows the policy (a changed policy publishes a new
 * version), and the service's intervention metrics with an opt-in alarm.
 */
export class RagGuardrail extends Construct {
  public readonly guardrail: bedrock.CfnGuardrail;
  public readonly version: bedrock.CfnGuardrailVersion;
  public readonly guardrailArn: string;
  public readonly guardrailId: string;
  public readonly versionNumber: string;
  public readonly alarms: cloudwatch.Alarm[] = [];
  private readonly encryptionKey?: kms.IKey;

  constructor(scope: Construct, id: string, props: RagGuardrailProps = {}) {
    super(scope, id);
    const filters = props.contentFilters ?? DEFAULT_FILTERS;
    const topics = props.deniedTopics ?? [];
    const pii = props.piiEntities ?? DEFAULT_PII;
    const grounding = { groundingThreshold: props.grounding?.groundingThreshold ?? 0.75, relevanceThreshold: props.grounding?.relevanceThreshold ?? 0.75 };
    this.validate(filters, topics, pii, grounding, props);
    this.encryptionKey = props.encryptionKey;

    this.guardrail = new bedrock.CfnGuardrail(this, 'Resource', {
      name: Names.uniqueResourceName(this, { maxLength: 50 }),
      description: 'Guards the questions and answers of the RAG API (cdk-ml-patterns)',
      blockedInputMessaging: props.blockedInputMessage ?? 'Sorry, I cannot answer that question.',
      blockedOutputsMessaging: props.blockedOutputMessage ?? 'Sorry, I cannot give an answer to that from the knowledge base.',
      kmsKeyArn: props.encryptionKey?.keyArn,
      contentPolicyConfig: { filtersConfig: filters.map((filter) => ({ ...filter })) },
      ...(topics.length > 0
        ? { topicPolicyConfig: { topicsConfig: topics.map((topic) => ({ name: topic.name, definition: topic.definition, examples: topic.examples, type: 'DENY' })) } }
        : {}),
      ...(pii.length > 0 ? { sensitiveInformationPolicyConfig: { piiEntitiesConfig: pii.map((entity) => ({ ...entity })) } } : {}),
      contextualGroundingPolicyConfig: {
        filtersConfig: [
          { type: 'GROUNDING', threshold: grounding.groundingThreshold },
          { type: 'RELEVANCE', threshold: grounding.relevanceThreshold },
        ],
      },
    });
    const policyHash = createHash('sha256').update(JSON.stringify([filters, topics, pii, grounding, props.blockedInputMessage, props.blockedOutputMessage])).digest('hex').slice(0, 16);
    this.version = new bedrock.CfnGuardrailVersion(this, 'Version', {
      guardrailIdentifier: this.guardrail.attrGuardrailId,
      // A changed policy changes the description, which replaces this resource: a new version of the new policy.
      description: `policy ${policyHash}`,
    });
    this.guardrailArn = this.guardrail.attrGuardrailArn;
    this.guardrailId = this.guardrail.attrGuardrailId;
    this.versionNumber = this.version.attrVersion;
    if (props.alarmAction) this.createAlarms(props.alarmAction, props.interventionsAlarmThreshold ?? 10);
  }

  /** Lets a function apply the guardrail (Converse with guardrailConfig, or ApplyGuardrail). */
  public grantApply(grantee: iam.IGrantable): iam.Grant {
    const grant = iam.Grant.addToPrincipal({ grantee, actions: ['bedrock:ApplyGuardrail'], resourceArns: [this.guardrailArn] });
    this.encryptionKey?.grantDecrypt(grantee);
    return grant;
  }

  /**
   * Invocations where the guardrail intervened, on input or output (Sum over 5 minutes by default).
   * Bedrock publishes it per GuardrailArn and GuardrailVersion.
   */
  public metricInvocationsIntervened(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('InvocationsIntervened', props);
  }

  /** Invocations of the guardrail (Sum over 5 minutes by default). */
  public metricInvocations(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('Invocations', props);
  }

  private metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: GUARDRAILS_METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { GuardrailArn: this.guardrailArn, GuardrailVersion: this.versionNumber },
      statistic: 'Sum',
      period: Duration.minutes(5),
      ...props,
    });
  }

  private createAlarms(action: cloudwatch.IAlarmAction, threshold: number): void {
    const alarm = this.metricInvocationsIntervened().createAlarm(this, 'InterventionsAlarm', {
      alarmDescription: `The RAG guardrail intervened ${threshold} or more times in 5 minutes: misuse (prompt attacks, denied topics, PII) or answers not grounded in the knowledge base.`,
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(action);
    this.alarms.push(alarm);
  }

  private validate(
    filters: GuardrailContentFilter[],
    topics: GuardrailDeniedTopic[],
    pii: GuardrailPiiEntity[],
    grounding: { groundingThreshold: number; relevanceThreshold: number },
    props: RagGuardrailProps,
  ): void {
    const fail = (message: string): never => {
      throw new Error(`${this.node.path} (RagGuardrail): ${message}`);
    };
    const oneOf = (values: Record<string, string>, value: string, field: string) => {
      if (!Object.values(values).includes(value)) fail(`${field}: '${value}' is not one of ${Object.values(values).join(', ')}`);
    };
    const seen = new Set<string>();
    filters.forEach((filter, index) => {
      oneOf(GuardrailContentFilterType, filter.type, `contentFilters[${index}].type`);
      oneOf(GuardrailFilterStrength, filter.inputStrength, `contentFilters[${index}].inputStrength`);
      oneOf(GuardrailFilterStrength, filter.outputStrength, `contentFilters[${index}].outputStrength`);
      if (filter.type === 'PROMPT_ATTACK' && filter.outputStrength !== 'NONE') fail(`contentFilters[${index}].outputStrength: PROMPT_ATTACK only applies to input; set NONE`);
      if (seen.has(filter.type)) fail(`contentFilters[${index}].type: ${filter.type} is listed twice`);
      seen.add(filter.type);
    });
    topics.forEach((topic, index) => {
      if (!/^[0-9a-zA-Z\-_ !?.]{1,100}$/.test(topic.name)) fail(`deniedTopics[${index}].name: 1-100 letters, digits, spaces and - _ ! ? .; got '${topic.name}'`);
      if (topic.definition.length < 1 || topic.definition.length > 200) fail(`deniedTopics[${index}].definition: must be 1-200 characters; got ${topic.definition.length}`);
      if ((topic.examples ?? []).length > 5) fail(`deniedTopics[${index}].examples: at most 5`);
    });
    pii.forEach((entity, index) => {
      oneOf(GuardrailPiiEntityType, entity.type, `piiEntities[${index}].type`);
      oneOf(GuardrailSensitiveInformationAction, entity.action, `piiEntities[${index}].action`);
    });
    for (const [field, value] of Object.entries(grounding)) {
      if (!(value >= 0 && value <= 0.99)) fail(`grounding.${field}: must be from 0 to 0.99; got ${value}`);
    }
    for (const field of ['blockedInputMessage', 'blockedOutputMessage'] as const) {
      const message = props[field];
      if (message !== undefined && (message.length < 1 || message.length > 500)) fail(`${field}: must be 1-500 characters`);
    }
    if (props.interventionsAlarmThreshold !== undefined && !(Number.isInteger(props.interventionsAlarmThreshold) && props.interventionsAlarmThreshold >= 1)) {
      fail(`interventionsAlarmThreshold: must be a whole number >= 1; got ${props.interventionsAlarmThreshold}`);
    }
  }
}
