import { Tags } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { PlatformConfig } from '../../config/schema';
import { ExperimentsStack } from './experiments-stack';
import { FeaturesStack } from './features-stack';
import { FoundationStack } from './foundation-stack';
import { MonitoringStack } from './monitoring-stack';
import { ObservabilityStack } from './observability-stack';
import { ServingStack } from './serving-stack';

export interface MlPlatformStacks {
  readonly foundation: FoundationStack;
  readonly serving: ServingStack;
  /** Only when a model has an experiment workflow. */
  readonly experiments?: ExperimentsStack;
  /** Only when the config has a feature store. */
  readonly features?: FeaturesStack;
  /** Only when a model has `modelMonitor`. */
  readonly monitoring?: MonitoringStack;
  readonly observability: ObservabilityStack;
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
  const monitoring = config.models.some((model) => model.modelMonitor)
    ? new MonitoringStack(scope, `${prefix}-Monitoring`, { env, config, foundation, serving, description: `cdk-ml-patterns ${config.envName}: Model Monitor, retraining trigger, model cards` })
    : undefined;
  const observability = new ObservabilityStack(scope, `${prefix}-Observability`, { env, serving, experiments, features, monitoring, description: `cdk-ml-patterns ${config.envName}: dashboard` });
  // cfn-lint's resource schemas do not accept Tags on these types yet; tagging them fails E3002.
  const excludeResourceTypes = ['AWS::CloudWatch::Dashboard', 'AWS::ApplicationAutoScaling::ScalableTarget'];
  for (const stack of [foundation, serving, experiments, features, monitoring, observability].filter((stack) => stack !== undefined)) {
    Tags.of(stack).add('project', 'cdk-ml-patterns', { excludeResourceTypes });
    Tags.of(stack).add('environment', config.envName, { excludeResourceTypes });
  }
  return { foundation, serving, experiments, features, monitoring, observability };
}
