import { createHash } from 'node:crypto';
import { Names, Token } from 'aws-cdk-lib';
import * as bedrock from 'aws-cdk-lib/aws-bedrock';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { assertRequiredProps } from '../core/private/props';

/** The variables the RAG API fills in: the retrieved passages and the caller's question. */
export const RAG_PROMPT_VARIABLES: readonly string[] = ['context', 'question'];

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** Names of a template's `{{variable}}` placeholders, each once, in order of first use. */
export function promptTemplateVariables(template: string): string[] {
  return [...new Set([...template.matchAll(PLACEHOLDER)].map((match) => match[1]))];
}

/**
 * Checks a template against the variables it will be given: `unknown` are placeholders nobody fills in,
 * `missing` are variables the template never uses (the retrieved context or the question would be lost).
 */
export function checkPromptTemplate(template: string, variables: readonly string[] = RAG_PROMPT_VARIABLES): { unknown: string[]; missing: string[] } {
  const used = promptTemplateVariables(template);
  return { unknown: used.filter((name) => !variables.includes(name)), missing: variables.filter((name) => !used.includes(name)) };
}

export interface FewShotExample {
  readonly question: string;
  readonly answer: string;
}

export interface PromptInference {
  /**
   * @default 1024
   */
  readonly maxTokens?: number;
  /**
   * @default 0
   */
  readonly temperature?: number;
  /**
   * @default - the model's default
   */
  readonly topP?: number;
}

export interface PromptTemplateProps {
  /** The user turn, with `{{context}}` and `{{question}}`; any other placeholder, or a missing one, fails synth. */
  readonly template: string;
  /** The system prompt: role, rules (answer only from the context, cite passages as [n]). */
  readonly systemPrompt: string;
  /**
   * Earlier user/assistant turns that show the model the expected answers.
   * @default - none
   */
  readonly fewShotExamples?: FewShotExample[];
  /** The generation model the prompt is written for (Bedrock model id). */
  readonly modelId: string;
  /**
   * @default - 1024 tokens at temperature 0
   */
  readonly inference?: PromptInference;
  /**
   * The version this environment pins, e.g. `'3'`: a new label snapshots the current template as a new
   * Prompt Management version, which the RAG API then serves. Changing the template without changing
   * the label changes only the draft; the pinned version keeps serving.
   */
  readonly pinnedVersion: string;
  /**
   * Key that encrypts the prompt in Prompt Management.
   * @default - an AWS owned key
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * @default - a generated name
   */
  readonly promptName?: string;
}

/**
 * A RAG prompt in Bedrock Prompt Management: a CHAT template (system prompt, few-shot turns, the user
 * template) checked at synth for unknown and missing variables, and a version pinned by label.
 */
export class PromptTemplate extends Construct {
  public readonly prompt: bedrock.CfnPrompt;
  public readonly version: bedrock.CfnPromptVersion;
  /** ARN of the prompt (without version). */
  public readonly promptArn: string;
  /** Number Prompt Management gave the pinned version. */
  public readonly versionNumber: string;
  public readonly pinnedVersion: string;
  private readonly encryptionKey?: kms.IKey;

  constructor(scope: Construct, id: string, props: PromptTemplateProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'PromptTemplate', props, { template: 'string', systemPrompt: 'string', modelId: 'string', pinnedVersion: 'string' });
    this.validate(props);
    this.encryptionKey = props.encryptionKey;
    this.pinnedVersion = props.pinnedVersion;
    const examples = props.fewShotExamples ?? [];
    const messages = [
      ...examples.flatMap((example) => [
        { role: 'user', content: [{ text: example.question }] },
        { role: 'assistant', content: [{ text: example.answer }] },
      ]),
      { role: 'user', content: [{ text: props.template }] },
    ];
    const inference = props.inference ?? {};
    this.prompt = new bedrock.CfnPrompt(this, 'Resource', {
      name: props.promptName ?? Names.uniqueResourceName(this, { maxLength: 100 }),
      description: 'Retrieval-augmented generation prompt (cdk-ml-patterns)',
      customerEncryptionKeyArn: props.encryptionKey?.keyArn,
      defaultVariant: 'default',
      variants: [
        {
          name: 'default',
          templateType: 'CHAT',
          modelId: props.modelId,
          inferenceConfiguration: { text: { maxTokens: inference.maxTokens ?? 1024, temperature: inference.temperature ?? 0, ...(inference.topP !== undefined ? { topP: inference.topP } : {}) } },
          templateConfiguration: {
            chat: {
              system: [{ text: props.systemPrompt }],
              messages,
              inputVariables: RAG_PROMPT_VARIABLES.map((name) => ({ name })),
            },
          },
        },
      ],
    });
    const fingerprint = createHash('sha256').update(JSON.stringify([props.template, props.systemPrompt, examples, props.modelId, inference])).digest('hex').slice(0, 12);
    this.version = new bedrock.CfnPromptVersion(this, 'Version', {
      promptArn: this.prompt.attrArn,
      // The label pins the version: only a new label replaces this resource, and with it the served version.
      description: `pinned version ${props.pinnedVersion}`,
    });
    this.version.addMetadata('templateFingerprint', fingerprint);
    this.promptArn = this.prompt.attrArn;
    this.versionNumber = this.version.attrVersion;
  }

  /** Lets a function read the pinned version (bedrock:GetPrompt). */
  public grantRead(grantee: iam.IGrantable): iam.Grant {
    const grant = iam.Grant.addToPrincipal({ grantee, actions: ['bedrock:GetPrompt'], resourceArns: [this.prompt.attrArn, `${this.prompt.attrArn}:${this.version.attrVersion}`] });
    this.encryptionKey?.grantDecrypt(grantee);
    return grant;
  }

  private validate(props: PromptTemplateProps): void {
    const fail = (message: string): never => {
      throw new Error(`${this.node.path} (PromptTemplate): ${message}`);
    };
    if (!Token.isUnresolved(props.template)) {
      const { unknown, missing } = checkPromptTemplate(props.template);
      if (unknown.length > 0) fail(`template: unknown variable${unknown.length > 1 ? 's' : ''} ${unknown.map((name) => `{{${name}}}`).join(', ')}; the RAG API fills in only ${RAG_PROMPT_VARIABLES.map((name) => `{{${name}}}`).join(' and ')}`);
      if (missing.length > 0) fail(`template: missing variable${missing.length > 1 ? 's' : ''} ${missing.map((name) => `{{${name}}}`).join(', ')}; without it the ${missing.includes('context') ? 'retrieved passages' : 'question'} never reach the model`);
    }
    if (props.systemPrompt.trim() === '') fail('systemPrompt: must not be blank');
    (props.fewShotExamples ?? []).forEach((example, index) => {
      if (example.question.trim() === '' || example.answer.trim() === '') fail(`fewShotExamples[${index}]: question and answer must not be blank`);
      const { unknown } = checkPromptTemplate(`${example.question}${example.answer}`, []);
      if (unknown.length > 0) fail(`fewShotExamples[${index}]: holds placeholder ${unknown.map((name) => `{{${name}}}`).join(', ')}; examples are sent as written`);
    });
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(props.pinnedVersion)) fail(`pinnedVersion: must be a label of letters, digits, '.', '_' or '-'; got '${props.pinnedVersion}'`);
    const inference = props.inference ?? {};
    if (inference.maxTokens !== undefined && !(Number.isInteger(inference.maxTokens) && inference.maxTokens >= 1)) fail(`inference.maxTokens: must be a whole number >= 1; got ${inference.maxTokens}`);
    if (inference.temperature !== undefined && !(inference.temperature >= 0 && inference.temperature <= 1)) fail(`inference.temperature: must be from 0 to 1; got ${inference.temperature}`);
  }
}
