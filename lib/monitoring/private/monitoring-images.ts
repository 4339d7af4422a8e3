import { Stack, Token } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * The AWS-owned container images that SageMaker Model Monitor and SageMaker Clarify run, per region.
 *
 * Source: the SageMaker Python SDK's image URI configuration (`image_uris.retrieve`),
 * `src/sagemaker/image_uri_config/model-monitor.json` (repository `sagemaker-model-monitor-analyzer`,
 * version "1") and `src/sagemaker/image_uri_config/clarify.json` (repository
 * `sagemaker-clarify-processing`, version "1.0"). These are AWS's registries, not accounts of ours;
 * they are kept here, in one place, so that a new region is one line. Pass an image URI to the
 * constructs to override them (for a region missing here, or a pinned digest).
 */
const MODEL_MONITOR_REGISTRIES: Readonly<Record<string, string>> = {
  'ap-east-1': '001633400207',
  'ap-northeast-1': '574779866223',
  'ap-northeast-2': '709848358524',
  'ap-south-1': '126357580389',
  'ap-southeast-1': '245545462676',
  'ap-southeast-2': '563025443158',
  'ca-central-1': '536280801234',
  'cn-north-1': '453000072557',
  'cn-northwest-1': '453252182341',
  'eu-central-1': '048819808253',
  'eu-north-1': '895015795356',
  'eu-west-1': '468650794304',
  'eu-west-2': '749857270468',
  'eu-west-3': '680080141114',
  'me-south-1': '607024016150',
  'sa-east-1': '539772159869',
  'us-east-1': '156813124566',
  'us-east-2': '777275614652',
  'us-west-1': '890145073186',
  'us-west-2': '159807026194',
};

const CLARIFY_REGISTRIES: Readonly<Record<string, string>> = {
  'af-south-1': '811711786498',
  'ap-east-1': '098760798382',
  'ap-northeast-1': '377024640650',
  'ap-northeast-2': '263625296855',
  'ap-northeast-3': '364406365360',
  'ap-south-1': '452307495513',
  'ap-southeast-1': '834264404009',
  'ap-southeast-2': '007051062584',
  'ca-central-1': '675030665977',
  'cn-north-1': '122526803553',
  'cn-northwest-1': '122578899357',
  'eu-central-1': '017069133835',
  'eu-north-1': '763603941244',
  'eu-south-1': '638885417683',
  'eu-west-1': '131013547314',
  'eu-west-2': '440796970383',
  'eu-west-3': '341593696636',
  'me-south-1': '835444307964',
  'sa-east-1': '520018980103',
  'us-east-1': '205585389593',
  'us-east-2': '211330385671',
  'us-west-1': '740489534195',
  'us-west-2': '306415355426',
};

export type MonitoringImageKind = 'model-monitor' | 'clarify';

const IMAGES: Record<MonitoringImageKind, { registries: Readonly<Record<string, string>>; repository: string; tag: string; prop: string }> = {
  'model-monitor': { registries: MODEL_MONITOR_REGISTRIES, repository: 'sagemaker-model-monitor-analyzer', tag: 'latest', prop: 'modelMonitorImage' },
  clarify: { registries: CLARIFY_REGISTRIES, repository: 'sagemaker-clarify-processing', tag: '1.0', prop: 'clarifyImage' },
};

/** Regions the built-in map knows, per image. */
export function knownRegions(kind: MonitoringImageKind): string[] {
  return Object.keys(IMAGES[kind].registries);
}

/**
 * The image URI of Model Monitor's analyzer or of Clarify in the scope's region. The region must be
 * concrete (set `env` on the stack) so that the execution role's ECR grant can name the repository;
 * otherwise, or for a region the map lacks, the error names the prop that overrides the image.
 */
export function monitoringImage(scope: IConstruct, kind: MonitoringImageKind, where: string): string {
  const image = IMAGES[kind];
  const stack = Stack.of(scope);
  if (Token.isUnresolved(stack.region)) {
    throw new Error(`${where}: ${image.prop}: the stack's region is not known at synth (set env.region on the stack) and no image was given`);
  }
  const account = image.registries[stack.region];
  if (!account) {
    throw new Error(`${where}: ${image.prop}: no ${image.repository} image is known for region ${stack.region}; pass the image URI for that region`);
  }
  const domain = stack.region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `${account}.dkr.ecr.${stack.region}.${domain}/${image.repository}:${image.tag}`;
}
