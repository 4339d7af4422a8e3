import { ProductionVariantInstanceType } from '../../core/private/aws-enums';

/**
 * The rules a SageMaker endpoint's variants must satisfy, written once and applied twice: by the
 * environment config schema (which reports config paths such as `models[0].variants[1].weight`) and
 * by the `ModelEndpoint` construct (which reports prop paths and its construct path). Each rule in
 * `checkEndpointSpec` mirrors a documented SageMaker limit (the CreateEndpointConfig API reference and the
 * Serverless Inference and shadow-variant guides), so a bad value fails at synth, not half-way through a
 * deploy. MODEL_NAME_PATTERN and MODEL_VERSION_PATTERN are ours: a family name is also a construct id, an
 * API route and a tag, and a version label is returned to every caller.
 */

/** Instance types that SageMaker hosting accepts, taken from the AWS SDK's own enum. */
export const PRODUCTION_VARIANT_INSTANCE_TYPES: ReadonlySet<string> = new Set(Object.values(ProductionVariantInstanceType));

/** SageMaker variant names: 1–63 characters, alphanumerics and hyphens, no leading or trailing hyphen. */
export const VARIANT_NAME_PATTERN = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;

/**
 * Model version labels: returned with every prediction, written to the prediction log and the
 * `ml:model-version` tag (SageMaker tag values allow these characters and more).
 */
export const MODEL_VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
export const MODEL_VERSION_RULE = 'must be 1-128 letters, digits, dots, underscores, plus or hyphens, starting with a letter or digit';

/** Model family names: used in construct ids, API routes and tags. */
export const MODEL_NAME_PATTERN = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$/;
export const MODEL_NAME_RULE = 'must be 2-32 lowercase letters, digits or hyphens, starting with a letter';

/** SageMaker limits on one endpoint configuration. */
export const MAX_PRODUCTION_VARIANTS = 10;
export const MAX_SHADOW_VARIANTS = 1;
export const SERVERLESS_MEMORY_SIZES_MB = [1024, 2048, 3072, 4096, 5120, 6144] as const;
export const SERVERLESS_MAX_CONCURRENCY = 200;

export interface InstanceCapacitySpec {
  readonly kind: 'instance';
  readonly instanceType: string;
  readonly initialInstanceCount: number;
  readonly autoscaling?: {
    readonly minCapacity: number;
    readonly maxCapacity: number;
    readonly targetInvocationsPerInstance: number;
    readonly scaleInCooldownSeconds?: number;
    readonly scaleOutCooldownSeconds?: number;
  };
}

export interface ServerlessCapacitySpec {
  readonly kind: 'serverless';
  readonly memorySizeInMb: number;
  readonly maxConcurrency: number;
  readonly provisionedConcurrency?: number;
}

export type CapacitySpec = InstanceCapacitySpec | ServerlessCapacitySpec;

export interface VariantSpec {
  readonly name: string;
  /** Production variants only. */
  readonly weight?: number;
  /** Shadow variants only. */
  readonly samplingPercentage?: number;
  readonly capacity: CapacitySpec;
}

export interface EndpointSpec {
  readonly variants: readonly VariantSpec[];
  readonly shadowVariants: readonly VariantSpec[];
  readonly dataCaptureEnabled: boolean;
  readonly inVpc: boolean;
  readonly networkIsolation: boolean;
}

export interface RuleIssue {
  readonly path: ReadonlyArray<string | number>;
  readonly message: string;
}

/** Formats a path the way zod and our error messages print it: `variants[1].weight`. */
export function formatPath(path: ReadonlyArray<string | number>): string {
  return path.reduce<string>((out, part) => (typeof part === 'number' ? `${out}[${part}]` : out ? `${out}.${part}` : part), '');
}

const isInt = (value: number) => Number.isInteger(value);

function checkCapacity(capacity: CapacitySpec, at: ReadonlyArray<string | number>): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const field = (...rest: string[]) => [...at, 'capacity', ...rest];
  if (capacity.kind === 'instance') {
    if (!PRODUCTION_VARIANT_INSTANCE_TYPES.has(capacity.instanceType)) {
      issues.push({
        path: field('instanceType'),
        message: `must be a SageMaker hosting instance type such as ml.m5.large (AWS SDK ProductionVariantInstanceType); got '${capacity.instanceType}'`,
      });
    }
    if (!isInt(capacity.initialInstanceCount) || capacity.initialInstanceCount < 1) {
      issues.push({ path: field('initialInstanceCount'), message: `must be a whole number >= 1; got ${capacity.initialInstanceCount}` });
    }
    const scaling = capacity.autoscaling;
    if (scaling) {
      if (!isInt(scaling.minCapacity) || scaling.minCapacity < 1) {
        issues.push({ path: field('autoscaling', 'minCapacity'), message: `must be a whole number >= 1; got ${scaling.minCapacity}` });
      }
      if (!isInt(scaling.maxCapacity) || scaling.maxCapacity < scaling.minCapacity) {
        issues.push({
          path: field('autoscaling', 'maxCapacity'),
          message: `must be a whole number >= minCapacity (${scaling.minCapacity}); got ${scaling.maxCapacity}`,
        });
      }
      if (capacity.initialInstanceCount < scaling.minCapacity || capacity.initialInstanceCount > scaling.maxCapacity) {
        issues.push({
          path: field('initialInstanceCount'),
          message: `must lie between autoscaling.minCapacity (${scaling.minCapacity}) and maxCapacity (${scaling.maxCapacity}); got ${capacity.initialInstanceCount}`,
        });
      }
      if (!(scaling.targetInvocationsPerInstance > 0)) {
        issues.push({
          path: field('autoscaling', 'targetInvocationsPerInstance'),
          message: `must be > 0; got ${scaling.targetInvocationsPerInstance}`,
        });
      }
      for (const key of ['scaleInCooldownSeconds', 'scaleOutCooldownSeconds'] as const) {
        const value = scaling[key];
        if (value !== undefined && (!isInt(value) || value < 0)) {
          issues.push({ path: field('autoscaling', key), message: `must be a whole number of seconds >= 0; got ${value}` });
        }
      }
    }
  } else {
    if (!(SERVERLESS_MEMORY_SIZES_MB as readonly number[]).includes(capacity.memorySizeInMb)) {
      issues.push({
        path: field('memorySizeInMb'),
        message: `must be one of ${SERVERLESS_MEMORY_SIZES_MB.join(', ')}; got ${capacity.memorySizeInMb}`,
      });
    }
    if (!isInt(capacity.maxConcurrency) || capacity.maxConcurrency < 1 || capacity.maxConcurrency > SERVERLESS_MAX_CONCURRENCY) {
      issues.push({
        path: field('maxConcurrency'),
        message: `must be a whole number from 1 to ${SERVERLESS_MAX_CONCURRENCY}; got ${capacity.maxConcurrency}`,
      });
    }
    const provisioned = capacity.provisionedConcurrency;
    if (provisioned !== undefined && (!isInt(provisioned) || provisioned < 1 || provisioned > capacity.maxConcurrency)) {
      issues.push({
        path: field('provisionedConcurrency'),
        message: `must be a whole number from 1 to maxConcurrency (${capacity.maxConcurrency}); got ${provisioned}`,
      });
    }
  }
  return issues;
}

/** Returns every rule the endpoint breaks; an empty list means SageMaker will accept it. */
export function checkEndpointSpec(spec: EndpointSpec): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const { variants, shadowVariants } = spec;

  if (variants.length < 1 || variants.length > MAX_PRODUCTION_VARIANTS) {
    issues.push({ path: ['variants'], message: `must hold 1 to ${MAX_PRODUCTION_VARIANTS} production variants; got ${variants.length}` });
  }
  if (shadowVariants.length > MAX_SHADOW_VARIANTS) {
    issues.push({ path: ['shadowVariants'], message: `SageMaker supports at most ${MAX_SHADOW_VARIANTS} shadow variant per endpoint; got ${shadowVariants.length}` });
  }
  if (shadowVariants.length > 0 && variants.length !== 1) {
    issues.push({
      path: ['shadowVariants'],
      message: `an endpoint with a shadow variant must have exactly one production variant to copy traffic from; got ${variants.length}`,
    });
  }

  const weights = variants.map((variant) => variant.weight ?? 1);
  if (variants.length > 0 && weights.every((weight) => Number.isFinite(weight) && weight >= 0) && weights.reduce((sum, weight) => sum + weight, 0) <= 0) {
    issues.push({
      path: ['variants'],
      message: 'the production variants\' weights must not all be 0: at least one variant must take a share of the traffic that names no variant',
    });
  }

  const seen = new Map<string, string>();
  const visit = (list: readonly VariantSpec[], key: 'variants' | 'shadowVariants') => {
    list.forEach((variant, index) => {
      const at = [key, index];
      if (!VARIANT_NAME_PATTERN.test(variant.name)) {
        issues.push({
          path: [...at, 'name'],
          message: `must be 1-63 letters, digits or hyphens, starting and ending with a letter or digit; got '${variant.name}'`,
        });
      }
      const previous = seen.get(variant.name);
      if (previous !== undefined) {
        issues.push({ path: [...at, 'name'], message: `'${variant.name}' is already used by ${previous}; variant names must be unique` });
      } else {
        seen.set(variant.name, formatPath(at));
      }
      if (key === 'variants') {
        // SageMaker's VariantWeight is a float >= 0: a weight of 0 takes no share of the traffic, and the
        // variant is reached only by requests that name it (TargetVariant), as after a rollback.
        const weight = variant.weight ?? 1;
        if (!Number.isFinite(weight) || weight < 0) {
          issues.push({ path: [...at, 'weight'], message: `must be a finite number >= 0; got ${weight}` });
        }
      } else {
        const pct = variant.samplingPercentage ?? 100;
        if (!isInt(pct) || pct < 1 || pct > 100) {
          issues.push({ path: [...at, 'samplingPercentage'], message: `must be a whole number from 1 to 100; got ${pct}` });
        }
      }
      issues.push(...checkCapacity(variant.capacity, at));
      if (variant.capacity.kind === 'serverless') {
        // Documented exclusions of SageMaker Serverless Inference.
        if (key === 'shadowVariants') {
          issues.push({ path: [...at, 'capacity'], message: 'a shadow variant must be instance-based; serverless inference does not support shadow variants' });
        }
        if (variants.length > 1 && key === 'variants') {
          issues.push({
            path: [...at, 'capacity'],
            message: 'serverless inference supports a single production variant per endpoint; use instance-based variants for A/B or champion-challenger splits',
          });
        }
        if (spec.dataCaptureEnabled) {
          issues.push({ path: ['dataCapture'], message: `serverless inference does not support data capture (variant '${variant.name}' is serverless)` });
        }
        if (spec.inVpc) {
          issues.push({ path: ['vpc'], message: `serverless inference cannot run in a VPC (variant '${variant.name}' is serverless)` });
        }
        if (spec.networkIsolation) {
          issues.push({ path: ['networkIsolation'], message: `serverless inference does not support network isolation (variant '${variant.name}' is serverless)` });
        }
      }
    });
  };
  visit(variants, 'variants');
  visit(shadowVariants, 'shadowVariants');
  return dedupe(issues);
}

function dedupe(issues: RuleIssue[]): RuleIssue[] {
  const keys = new Set<string>();
  return issues.filter((issue) => {
    const key = `${formatPath(issue.path)}|${issue.message}`;
    if (keys.has(key)) return false;
    keys.add(key);
    return true;
  });
}
