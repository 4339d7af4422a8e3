import { Tags, type Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { compositeDefinition } from '../../config/composites-schema';
import type { PlatformConfig } from '../../config/schema';
import { ExperimentsStack, hasExperimentWorkflows } from './experiments-stack';
import { FeaturesStack } from './features-stack';
import { FederatedClientStack, federatedClientStackName } from './federated-client-stack';
import { FoundationStack } from './foundation-stack';
import { LifecycleStack } from './lifecycle-stack';
import { ModelFamilyStack } from './model-family-stack';
import { ObservabilityStack } from './observability-stack';
import { RagStack } from './rag-stack';
import { ServingStack } from './serving-stack';

/** Suffixes of the shared stacks (`MlPlatform-<env>-<suffix>`); no model family may take one as its name. */
export const SHARED_STACK_SUFFIXES = ['Foundation', 'Features', 'Serving', 'Lifecycle', 'Experiments', 'Monitoring', 'Rag', 'Observability'] as const;

export interface MlPlatformStacks {
  readonly foundation: FoundationStack;
  /** The inference API and the prediction log. */
  readonly serving: ServingStack;
  /** The reports bucket the families' shadow comparisons write; only when a family has an experiment workflow. */
  readonly experiments?: ExperimentsStack;
  /** Only when the config has a feature store. */
  readonly features?: FeaturesStack;
  /** The training-data and run-artifacts buckets; only when a family has a lifecycle config. */
  readonly lifecycle?: LifecycleStack;
  /** One stack per model family, in config order. */
  readonly families: readonly ModelFamilyStack[];
  readonly observability: ObservabilityStack;
  /** Only when the config has a rag section. */
  readonly rag?: RagStack;
  /** The client silos of the families' federations, each in its own account and region (`lifecycle.federated`). */
  readonly silos: readonly FederatedClientStack[];
}

/** Name of the stack of one model family: `MlPlatform-<env>-<family>`. */
export function familyStackName(envName: string, family: string): string {
  return `MlPlatform-${envName}-${family}`;
}

/**
 * Builds every stack of one environment of the blueprint from its validated config: shared stacks
 * for what the families share (foundation, feature store, inference API, lifecycle and experiment
 * buckets, RAG, the overview dashboard) and one stack per model family, so that no stack grows with
 * the fleet and each family deploys on its own.
 */
export function buildPlatform(scope: Construct, config: PlatformConfig): MlPlatformStacks {
  const env = { account: config.account, region: config.region };
  const prefix = `MlPlatform-${config.envName}`;
  const what = `cdk-ml-patterns ${config.envName}`;
  const foundation = new FoundationStack(scope, `${prefix}-Foundation`, { env, config, description: `${what}: keys, buckets, alarms, network` });
  const features = config.featureStore
    ? new FeaturesStack(scope, `${prefix}-Features`, { env, config, foundation, description: `${what}: feature store and ingestion` })
    : undefined;
  const serving = new ServingStack(scope, `${prefix}-Serving`, { env, config, foundation, features, description: `${what}: real-time inference API and prediction log` });
  const experiments = config.models.some(hasExperimentWorkflows)
    ? new ExperimentsStack(scope, `${prefix}-Experiments`, { env, config, foundation, description: `${what}: experiment reports shared by the model families` })
    : undefined;
  const lifecycle = config.models.some((model) => model.lifecycle)
    ? new LifecycleStack(scope, `${prefix}-Lifecycle`, { env, config, foundation, description: `${what}: training data and run artifacts shared by the model families` })
    : undefined;
  const families = config.models.map(
    (model) =>
      new ModelFamilyStack(scope, familyStackName(config.envName, model.name), {
        env,
        config,
        model,
        foundation,
        serving,
        lifecycleBuckets: lifecycle,
        experimentReports: experiments,
        description: `${what}: model family ${model.name} (endpoint, alarms, drift, lifecycle, monitoring, experiments, dashboard)`,
      }),
  );
  const silos = config.models.flatMap((model) => {
    const federated = model.lifecycle?.federated;
    return (federated?.clients ?? []).map(
      (client) =>
        new FederatedClientStack(scope, federatedClientStackName(config.envName, model.name, client.name), {
          env: { account: client.account, region: client.region },
          config,
          family: model.name,
          federated: federated!,
          client,
          description: `${what}: federated learning silo ${client.name} of ${model.name} (its account and region)`,
        }),
    );
  });
  // Composites call the families' routes by name at run time; their own routes live in the serving stack.
  for (const composite of config.composites) {
    serving.inferenceApi.addComposite(composite.name, compositeDefinition(composite));
  }
  // The inference API of the serving stack sets API Gateway's account-level logging role; the RAG API's
  // stage logs need it in place first.
  const rag = config.rag
    ? new RagStack(scope, `${prefix}-Rag`, { env, config, foundation, apiGatewayCloudWatchRole: false, description: `${what}: RAG knowledge base, ingestion and question answering` })
    : undefined;
  rag?.addStackDependency(serving, 'API Gateway account logging role');
  const observability = new ObservabilityStack(scope, `${prefix}-Observability`, { env, serving, families, features, rag, description: `${what}: environment overview dashboard` });
  // cfn-lint's resource schemas do not accept Tags on these types yet; tagging them fails E3002.
  const excludeResourceTypes = ['AWS::CloudWatch::Dashboard', 'AWS::ApplicationAutoScaling::ScalableTarget'];
  const platform = { foundation, serving, experiments, features, lifecycle, families, rag, observability, silos };
  for (const stack of platformStacks(platform)) {
    Tags.of(stack).add('project', 'cdk-ml-patterns', { excludeResourceTypes });
    Tags.of(stack).add('environment', config.envName, { excludeResourceTypes });
  }
  for (const family of families) {
    Tags.of(family).add('model-family', family.modelName, { excludeResourceTypes });
  }
  for (const silo of silos) {
    Tags.of(silo).add('model-family', silo.family, { excludeResourceTypes });
  }
  return platform;
}

/** Every stack of the platform, shared and per family. */
export function platformStacks(stacks: MlPlatformStacks): Stack[] {
  const { foundation, serving, experiments, features, lifecycle, families, rag, observability, silos } = stacks;
  const all: Array<Stack | undefined> = [foundation, serving, experiments, features, lifecycle, ...families, rag, observability, ...silos];
  return all.filter((stack): stack is Stack => stack !== undefined);
}
