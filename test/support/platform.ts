import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { ENVIRONMENT_NAMES, loadConfig, type EnvironmentName, type PlatformConfig } from '../../config';
import { buildPlatform, platformStacks, type MlPlatformStacks } from '../../lib/stacks/platform';

export { ENVIRONMENT_NAMES };

export interface SynthesizedPlatform {
  readonly app: App;
  readonly config: PlatformConfig;
  readonly stacks: MlPlatformStacks;
  readonly templates: Record<string, Template>;
  /** Directory of the cloud assembly (templates and assets). */
  readonly outdir: string;
}

/** Synthesizes every stack of one environment, exactly as bin/app.ts builds it. */
export function synthesizePlatform(envName: EnvironmentName, config: PlatformConfig = loadConfig(envName)): SynthesizedPlatform {
  const app = new App({ context: require('../../cdk.json').context });
  const stacks = buildPlatform(app, config);
  const assembly = app.synth();
  const templates: Record<string, Template> = {};
  for (const stack of platformStacks(stacks)) {
    templates[stack.stackName] = Template.fromJSON(assembly.getStackByName(stack.stackName).template);
  }
  return { app, config, stacks, templates, outdir: assembly.directory };
}

export interface NagFinding {
  readonly pack: string;
  readonly rule: string;
  readonly resource: string;
  readonly description: string;
}

/** Runs the three cdk-nag packs the blueprint enforces over a synthesized scope; returns unacknowledged findings. */
export function nagFindings(scope: IConstruct): NagFinding[] {
  const findings: NagFinding[] = [];
  for (const pack of [new AwsSolutionsChecks(), new HIPAASecurityChecks(), new NIST80053R5Checks()]) {
    const report = pack.validateScope(scope);
    for (const violation of report.violations) {
      for (const resource of violation.violatingResources) {
        findings.push({ pack: pack.name, rule: violation.ruleName, resource: resource.constructPath ?? resource.resourceLogicalId ?? '(unknown)', description: violation.description });
      }
    }
  }
  return findings;
}
