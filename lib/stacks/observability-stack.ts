import { Stack, StackProps } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct, type IConstruct } from 'constructs';
import { PlatformDashboard } from '../monitoring/platform-dashboard';
import type { FeaturesStack } from './features-stack';
import type { ModelFamilyStack } from './model-family-stack';
import type { RagStack } from './rag-stack';
import type { ServingStack } from './serving-stack';

export interface ObservabilityStackProps extends StackProps {
  readonly serving: ServingStack;
  /** Every model family of the environment; each has its own dashboard, this one ranks them. */
  readonly families: readonly ModelFamilyStack[];
  readonly features?: FeaturesStack;
  readonly rag?: RagStack;
  /** How many families the top-N graphs show. @default 10 */
  readonly topN?: number;
}

/**
 * The environment overview: the fleet's top families by traffic, failures and latency, the families
 * and shared services in ALARM, then the inference API, Feature Store and RAG. Each model family's
 * endpoint, drift, Model Monitor and experiment widgets are on the family's own dashboard, so this
 * one stays the same size for any number of families (bar one alarm each in the status widgets).
 */
export class ObservabilityStack extends Stack {
  public readonly dashboard: PlatformDashboard;

  constructor(scope: Construct, id: string, props: ObservabilityStackProps) {
    super(scope, id, props);
    this.dashboard = new PlatformDashboard(this, 'Dashboard');
    const shared = [props.serving, props.features, props.rag].filter((stack): stack is NonNullable<typeof stack> => stack !== undefined);
    this.dashboard.addFleetOverview(props.serving.inferenceApi, {
      topN: props.topN,
      familyAlarms: props.families.map((family) => family.healthAlarm),
      sharedAlarms: shared.flatMap(alarmsOf),
    });
    this.dashboard.addInferenceApi(props.serving.inferenceApi, []);
    this.dashboard.addComposites(props.serving.inferenceApi);
    if (props.features) {
      this.dashboard.addFeatureStore(props.features.featureGroups, props.features.ingestion);
    }
    if (props.rag) {
      this.dashboard.addRag(props.rag.ingestion, props.rag.api, props.rag.guardrail);
    }
  }
}

function alarmsOf(scope: IConstruct): cloudwatch.Alarm[] {
  return scope.node.findAll().filter((construct): construct is cloudwatch.Alarm => construct instanceof cloudwatch.Alarm);
}
