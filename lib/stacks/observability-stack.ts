import { Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { PlatformDashboard } from '../monitoring/platform-dashboard';
import type { ExperimentsStack } from './experiments-stack';
import type { FeaturesStack } from './features-stack';
import type { RagStack } from './rag-stack';
import type { MonitoringStack } from './monitoring-stack';
import type { ServingStack } from './serving-stack';

export interface ObservabilityStackProps extends StackProps {
  readonly serving: ServingStack;
  readonly experiments?: ExperimentsStack;
  readonly features?: FeaturesStack;
  readonly rag?: RagStack;
  readonly monitoring?: MonitoringStack;
}

/** The environment's dashboard: endpoints first, then the inference API; later patterns add sections. */
export class ObservabilityStack extends Stack {
  public readonly dashboard: PlatformDashboard;

  constructor(scope: Construct, id: string, props: ObservabilityStackProps) {
    super(scope, id, props);
    this.dashboard = new PlatformDashboard(this, 'Dashboard');
    for (const endpoint of props.serving.endpoints) {
      this.dashboard.addEndpoint(endpoint);
    }
    this.dashboard.addInferenceApi(
      props.serving.inferenceApi,
      props.serving.endpoints.map((endpoint) => endpoint.modelName),
    );
    for (const detector of props.serving.driftDetectors) {
      this.dashboard.addDrift(detector);
    }
    for (const monitored of props.monitoring?.models ?? []) {
      this.dashboard.addModelMonitor(monitored.monitor, { trigger: monitored.trigger, alarms: monitored.alarms });
    }
    for (const experiment of props.experiments?.experiments ?? []) {
      this.dashboard.addExperiments(experiment);
    }
    if (props.features) {
      this.dashboard.addFeatureStore(props.features.featureGroups, props.features.ingestion);
    }
    if (props.rag) {
      this.dashboard.addRag(props.rag.ingestion, props.rag.api, props.rag.guardrail);
    }
  }
}
