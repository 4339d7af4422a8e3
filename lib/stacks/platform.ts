import { Tags } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { PlatformConfig } from '../../config/schema';
import { ExperimentsStack } from './experiments-stack';
import { FeaturesStack } from './features-stack';
import { FoundationStack } from './foundation-stack';
import { LifecycleStack } from './lifecycle-stack';
import { MonitoringStack } from './monitoring-stack';
import { ObservabilityStack } from './observability-stack';
import { RagStack } from './rag-stack';
import { ServingStack } from './serving-stack';

export interface MlPlatformStacks {
  readonly foundation: FoundationStack;
  readonly serving: ServingStack;
  /** Only when a model has an experiment workflow. */
  readonly experiments?: ExperimentsStack;
  /** Only when the config has a feature store. */
  readonly features?: FeaturesStack;
  /** Only when a model has a lifecycle config. */
  readonly lifecycle?: LifecycleStack;
  /** Only when a model has `modelMonitor`. */
  readonly monitoring?: MonitoringStack;
  readonly observability: ObservabilityStack;
  /** Only when the config has a rag section. */
  readonly rag?: RagStack;
}

/** Builds every stack of one environment of the blueprint from its validated config. */
export function buildPlatform(scope: Construct, config: PlatformConfig): MlPlatformStacks {
  const env = { account: config.account, region: config.region };
  const prefix = `MlPlatform-${config.envName}`;
  const foundation = new FoundationStack(scope, `${prefix}-Foundation`, { env, config, description: `cdk-ml-patterns ${config.envName}: keys, buckets, alarms, network` });
  const features = config.featureStore
    ? new FeaturesStack(scope, `${prefix}-Features`, { env, config, foundation, description: `cdk-ml-patterns ${config.envName}: feature store and ingestion` })
    : undefined;
  const serving = new ServingStack(scope, `${prefix}-Serving`, { env, config, foundation, features, description: `cdk-ml-patterns ${config.envName}: model endpoints and inference API` });
  const hasWorkflows = config.models.some(({ experiments: e }) => e.promotion || e.shadowComparison || e.abTest);
  const experiments = hasWorkflows
    ? new ExperimentsStack(scope, `${prefix}-Experiments`, {
        env,
        config,
        foundation,
        serving,
        description: `cdk-ml-patterns ${config.envName}: champion-challenger, shadow and A/B workflows`,
      })
    : undefined;
  const lifecycle = config.models.some((model) => model.lifecycle)
    ? new LifecycleStack(scope, `${prefix}-Lifecycle`, {
        env,
        config,
        foundation,
        serving,
        description: `cdk-ml-patterns ${config.envName}: training pipeline, model registry, deployment, retirement and batch inference`,
      })
    : undefined;
  // Model Monitor violations start the family's training pipeline.
  const retrainingWorkflows = Object.fromEntries((lifecycle?.lifecycles ?? []).map((model) => [model.modelName, model.training.workflow.stateMachine]));
  const monitoring = config.models.some((model) => model.modelMonitor)
    ? new MonitoringStack(scope, `${prefix}-Monitoring`, { env, config, foundation, serving, retrainingWorkflows, description: `cdk-ml-patterns ${config.envName}: Model Monitor, retraining trigger, model cards` })
    : undefined;
  // The inference API of the serving stack sets API Gateway's account-level logging role; the RAG API's
  // stage logs need it in place first.
  const rag = config.rag
    ? new RagStack(scope, `${prefix}-Rag`, { env, config, foundation, apiGatewayCloudWatchRole: false, description: `cdk-ml-patterns ${config.envName}: RAG knowledge base, ingestion and question answering` })
    : undefined;
  rag?.addStackDependency(serving, 'API Gateway account logging role');
  const observability = new ObservabilityStack(scope, `${prefix}-Observability`, { env, serving, experiments, features, monitoring, rag, description: `cdk-ml-patterns ${config.envName}: dashboard` });
  // cfn-lint's resource schemas do not accept Tags on these types yet; tagging them fails E3002.
  const excludeResourceTypes = ['AWS::CloudWatch::Dashboard', 'AWS::ApplicationAutoScaling::ScalableTarget'];
  for (const stack of [foundation, serving, experiments, features, lifecycle, monitoring, rag, observability].filter((stack) => stack !== undefined)) {
    Tags.of(stack).add('project', 'cdk-ml-patterns', { excludeResourceTypes });
    Tags.of(stack).add('environment', config.envName, { excludeResourceTypes });
  }
  return { foundation, serving, experiments, features, lifecycle, monitoring, rag, observability };
}
