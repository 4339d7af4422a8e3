import { Token } from 'aws-cdk-lib';
import { parseEcrImageUri } from '../../core/sagemaker-execution-role';
import type { ContainerDefinition, ModelVersionProps } from '../model-endpoint';

/*
 * SageMaker's rules for a model version given as a serial inference pipeline (`containers`), checked at
 * synth so that a bad pipeline fails with the prop's path instead of half-way through a deploy.
 *
 * From botocore's SageMaker model (data/sagemaker/2017-07-24/service-2.json), the CreateModel request:
 * - CreateModelInput takes `PrimaryContainer` (one ContainerDefinition) or `Containers`
 *   (ContainerDefinitionList, max 15) with `InferenceExecutionConfig.Mode` `Serial` | `Direct`.
 * - ContainerHostname: string, max 63, pattern `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`. Its documentation: in an
 *   inference pipeline the hostname "uniquely identifies the container" in logs and metrics, and "if you
 *   specify a value for the ContainerHostName for any ContainerDefinition that is part of an inference
 *   pipeline, you must specify a value for the ContainerHostName parameter of every ContainerDefinition".
 * - Environment (EnvironmentMap): keys match `[a-zA-Z_][a-zA-Z0-9_]*`, keys and values at most 1024 each;
 *   "if you pass multiple containers to a CreateModel request, then the maximum length of all of their
 *   maps, combined, is also 32 KB".
 * From the SageMaker Developer Guide:
 * - inference-pipelines.html: a pipeline is a linear sequence of two to fifteen containers (one container
 *   is the PrimaryContainer form: `image` on the model version).
 * - serverless-endpoints.html, "Feature exclusions": Serverless Inference does not support inference
 *   pipelines (nor multi-model endpoints, data capture, VPCs... which variant-rules.ts enforces).
 * - shadow-tests-exclusions.html: endpoints with multiple-container models cannot run shadow variants
 *   ("your request to setup shadow tests will lead to validation errors"); the same page's exclusion of
 *   serverless inference is the one variant-rules.ts enforces for shadow variants.
 * Chosen not to check, because nothing documented forbids it or the construct cannot produce it:
 * - multi-model mode (ContainerDefinition.Mode `MultiModel`), which SageMaker rejects in a pipeline: the
 *   construct never sets Mode, so every container is SingleModel;
 * - data capture, VPC placement, network isolation and deployment guardrails, which apply to the endpoint
 *   or to the model as a whole (data capture records the pipeline's request and its last container's
 *   response). Model Monitor and Clarify work on the endpoint and on the SageMaker model by name.
 */

export const MIN_PIPELINE_CONTAINERS = 2;
export const MAX_PIPELINE_CONTAINERS = 15;
export const CONTAINER_HOSTNAME_PATTERN = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;
export const MAX_CONTAINER_HOSTNAME_LENGTH = 63;
export const ENVIRONMENT_KEY_PATTERN = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
export const MAX_ENVIRONMENT_ENTRY_BYTES = 1024;
export const MAX_PIPELINE_ENVIRONMENT_BYTES = 32 * 1024;

export const ECR_IMAGE_RULE = 'must be an Amazon ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> or @sha256:<digest>)';

/** Where the model version sits and what its variant is, for the rules that depend on the endpoint. */
export interface ModelVersionContext {
  /** Path of the model version in the props, e.g. `variants[0].model`. */
  readonly at: string;
  readonly variantName: string;
  readonly serverless: boolean;
  /** Whether the endpoint has shadow variants. */
  readonly endpointHasShadow: boolean;
}

const resolved = (value: unknown) => !Token.isUnresolved(value);
const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

/** The containers a model version runs, in order: its `containers`, or the one its `image` describes. */
export function containersOf(model: ModelVersionProps): ContainerDefinition[] {
  return model.containers ?? [{ image: model.image!, modelData: model.modelData, environment: model.environment }];
}

/** Whether a model version is a serial inference pipeline (given by `containers`). */
export function isSerialPipeline(model: ModelVersionProps): boolean {
  return model.containers !== undefined;
}

/**
 * The problems of a model version's container form: exactly one of `image` (with `modelData` and
 * `environment`) or `containers`, each image in Amazon ECR, and for a pipeline SageMaker's rules above.
 * Each problem names its prop by path.
 */
export function checkModelContainers(model: Partial<ModelVersionProps>, context: ModelVersionContext): string[] {
  const { at } = context;
  const problems: string[] = [];
  const checkImage = (image: unknown, path: string) => {
    if (resolved(image) && !(typeof image === 'string' && parseEcrImageUri(image))) problems.push(`${path}: ${ECR_IMAGE_RULE}; got ${JSON.stringify(image)}`);
  };
  const containers = model.containers;
  if (containers === undefined) {
    if (model.image === undefined) {
      problems.push(`${at}.image: is required unless containers is given (a serial inference pipeline of ${MIN_PIPELINE_CONTAINERS}-${MAX_PIPELINE_CONTAINERS} containers)`);
    } else {
      checkImage(model.image, `${at}.image`);
    }
    return problems;
  }

  for (const field of ['image', 'modelData', 'environment'] as const) {
    if (model[field] !== undefined) {
      problems.push(`${at}.${field}: give either image, modelData and environment (one container) or containers (a serial inference pipeline), not both; a pipeline sets ${field} on each of its containers`);
    }
  }
  if (containers.length < MIN_PIPELINE_CONTAINERS || containers.length > MAX_PIPELINE_CONTAINERS) {
    const hint = containers.length < MIN_PIPELINE_CONTAINERS ? '; for one container give image, modelData and environment on the model version instead' : " (SageMaker's limit for a serial inference pipeline)";
    problems.push(`${at}.containers: must hold ${MIN_PIPELINE_CONTAINERS} to ${MAX_PIPELINE_CONTAINERS} containers; got ${containers.length}${hint}`);
  }
  if (context.serverless) {
    problems.push(`${at}.containers: serverless inference does not support inference pipelines (variant '${context.variantName}' is serverless); use instance-based capacity or a single container`);
  }
  if (context.endpointHasShadow) {
    problems.push(`${at}.containers: SageMaker does not run shadow variants on an endpoint that serves a multi-container model (variant '${context.variantName}'); remove the shadow variant or serve a single container`);
  }

  const hostnames = new Map<string, number>();
  const unnamed: number[] = [];
  let environmentBytes = 0;
  containers.forEach((container, index) => {
    const path = `${at}.containers[${index}]`;
    checkImage(container.image, `${path}.image`);
    const hostname = container.containerHostname;
    if (hostname === undefined) {
      unnamed.push(index);
    } else if (resolved(hostname)) {
      if (!CONTAINER_HOSTNAME_PATTERN.test(hostname) || hostname.length > MAX_CONTAINER_HOSTNAME_LENGTH) {
        problems.push(`${path}.containerHostname: must be 1-63 letters, digits or hyphens, starting and ending with a letter or digit; got ${JSON.stringify(hostname)}`);
      }
      const first = hostnames.get(hostname);
      if (first !== undefined) {
        problems.push(`${path}.containerHostname: '${hostname}' is already the hostname of containers[${first}]; the hostnames of a pipeline's containers must be unique`);
      } else {
        hostnames.set(hostname, index);
      }
    }
    for (const [key, value] of Object.entries(container.environment ?? {})) {
      if (!resolved(key) || !resolved(value)) continue;
      if (!ENVIRONMENT_KEY_PATTERN.test(key) || bytes(key) > MAX_ENVIRONMENT_ENTRY_BYTES) {
        problems.push(`${path}.environment: variable names must be at most ${MAX_ENVIRONMENT_ENTRY_BYTES} letters, digits or underscores, not starting with a digit; got ${JSON.stringify(key.slice(0, 80))}`);
      }
      if (bytes(value) > MAX_ENVIRONMENT_ENTRY_BYTES) {
        problems.push(`${path}.environment.${key}: must be at most ${MAX_ENVIRONMENT_ENTRY_BYTES} bytes; got ${bytes(value)}`);
      }
      environmentBytes += bytes(key) + bytes(value);
    }
  });
  if (unnamed.length > 0 && unnamed.length < containers.length) {
    problems.push(`${at}.containers: give containerHostname on every container or on none (SageMaker names them by position only when none is named); ${unnamed.map((index) => `containers[${index}]`).join(', ')} ${unnamed.length === 1 ? 'has' : 'have'} none`);
  }
  if (environmentBytes > MAX_PIPELINE_ENVIRONMENT_BYTES) {
    problems.push(`${at}.containers: the environment variables of all containers take ${environmentBytes} bytes together; SageMaker allows 32 KB (${MAX_PIPELINE_ENVIRONMENT_BYTES} bytes) for all the containers of a model combined`);
  }
  return problems;
}
