import { ModelCardStatus } from '../core/private/aws-enums';
import { Names, Token } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sagemaker from 'aws-cdk-lib/aws-sagemaker';
import { Construct } from 'constructs';
import type { ModelEndpoint } from '../serving/model-endpoint';
import { assertRequiredProps } from '../core/private/props';

/**
 * Risk ratings a SageMaker model card accepts. The AWS SDK has no enum for them; these are the values
 * of the model card JSON schema (`intended_uses.risk_rating`) and of CloudFormation's
 * `AWS::SageMaker::ModelCard IntendedUses.RiskRating`.
 */
export const MODEL_CARD_RISK_RATINGS = ['High', 'Medium', 'Low', 'Unknown'] as const;
export type ModelCardRiskRating = (typeof MODEL_CARD_RISK_RATINGS)[number];
const STATUSES: readonly string[] = Object.values(ModelCardStatus);

/** How the model is meant to be used, and how risky a wrong answer is. */
export interface ModelCardIntendedUse {
  /** Why the model exists. */
  readonly purpose: string;
  /** Who uses its predictions, and for what. */
  readonly intendedUses: string;
  /** High, Medium, Low or Unknown. */
  readonly riskRating: string;
  /**
   * Why the rating.
   * @default - none
   */
  readonly riskRatingExplanation?: string;
  /**
   * What makes the model less accurate (data it was not trained on, seasons, segments).
   * @default - none
   */
  readonly factorsAffectingEfficiency?: string;
}

/** How the model was trained. */
export interface ModelCardTrainingDetails {
  /**
   * What training optimised, in words.
   * @default - none
   */
  readonly objective?: string;
  /**
   * Observations from training (data, balance, caveats).
   * @default - none
   */
  readonly observations?: string;
  /**
   * S3 URIs of the training datasets.
   * @default - none
   */
  readonly datasets?: string[];
  /**
   * Hyperparameters, by name.
   * @default - none
   */
  readonly hyperParameters?: Record<string, string>;
  /**
   * Training metrics, by name.
   * @default - none
   */
  readonly metrics?: Record<string, number>;
}

export interface ModelCardProps {
  /** The deployed model the card documents (its name, versions and containers are read from it). */
  readonly endpoint: ModelEndpoint;
  readonly intendedUse: ModelCardIntendedUse;
  /**
   * @default - none
   */
  readonly trainingDetails?: ModelCardTrainingDetails;
  /**
   * Who owns the model.
   * @default - none
   */
  readonly owner?: string;
  /**
   * @default - none
   */
  readonly description?: string;
  /**
   * Problem type, e.g. `Binary classification`.
   * @default - none
   */
  readonly problemType?: string;
  /**
   * Algorithm, e.g. `XGBoost`.
   * @default - none
   */
  readonly algorithmType?: string;
  /**
   * Ethical considerations (fairness, sensitive features and how they are monitored).
   * @default - none
   */
  readonly ethicalConsiderations?: string;
  /**
   * @default - none
   */
  readonly caveatsAndRecommendations?: string;
  /**
   * Draft, PendingReview, Approved or Archived (AWS SDK ModelCardStatus).
   * @default 'Draft'
   */
  readonly status?: string;
  /**
   * Key that encrypts the card.
   * @default - the endpoint's key
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Model card name. Leave unset to generate one from the construct path.
   * @default - generated
   */
  readonly modelCardName?: string;
}

/**
 * A SageMaker model card for a deployed model (responsible AI): intended use and risk rating, the
 * versions and containers actually serving, training details, ethical considerations, encrypted
 * with the customer-managed key. Each deploy that changes the content records a new card version.
 */
export class ModelCard extends Construct {
  public readonly modelCard: sagemaker.CfnModelCard;
  public readonly modelCardName: string;

  constructor(scope: Construct, id: string, props: ModelCardProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'ModelCard', props, { endpoint: 'construct', intendedUse: 'object' });
    const where = `${this.node.path} (ModelCard)`;
    const problems: string[] = [];
    const use = props.intendedUse;
    if (!Token.isUnresolved(use.riskRating) && !(MODEL_CARD_RISK_RATINGS as readonly string[]).includes(use.riskRating)) {
      problems.push(`intendedUse.riskRating: must be one of ${MODEL_CARD_RISK_RATINGS.join(', ')}; got '${use.riskRating}'`);
    }
    if (!use.purpose.trim()) problems.push('intendedUse.purpose: must not be empty');
    if (!use.intendedUses.trim()) problems.push('intendedUse.intendedUses: must not be empty');
    const status = props.status ?? ModelCardStatus.DRAFT;
    if (!STATUSES.includes(status)) problems.push(`status: must be one of ${STATUSES.join(', ')} (AWS SDK ModelCardStatus); got '${status}'`);
    if (props.modelCardName !== undefined && !/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/.test(props.modelCardName)) {
      problems.push(`modelCardName: must be 1-63 letters, digits or hyphens; got '${props.modelCardName}'`);
    }
    for (const [name, value] of Object.entries(props.trainingDetails?.metrics ?? {})) {
      if (!Number.isFinite(value)) problems.push(`trainingDetails.metrics.${name}: must be a finite number; got ${value}`);
    }
    if (problems.length > 0) throw new Error(`${where}: invalid props:\n  - ${problems.join('\n  - ')}`);

    const endpoint = props.endpoint;
    const training = props.trainingDetails;
    const versions = endpoint.variants.map((variant) => `${variant.name} (${variant.kind}) v${variant.modelVersion}`).join(', ');
    this.modelCardName = props.modelCardName ?? Names.uniqueResourceName(this, { maxLength: 63, separator: '-' });
    this.modelCard = new sagemaker.CfnModelCard(this, 'Resource', {
      modelCardName: this.modelCardName,
      modelCardStatus: status,
      securityConfig: { kmsKeyId: (props.encryptionKey ?? endpoint.encryptionKey).keyArn },
      content: {
        modelOverview: {
          modelName: endpoint.modelName,
          modelDescription: [props.description, `Serving: ${versions}.`].filter(Boolean).join(' '),
          modelOwner: props.owner,
          problemType: props.problemType,
          algorithmType: props.algorithmType,
        },
        intendedUses: {
          purposeOfModel: use.purpose,
          intendedUses: use.intendedUses,
          riskRating: use.riskRating,
          explanationsForRiskRating: use.riskRatingExplanation,
          factorsAffectingModelEfficiency: use.factorsAffectingEfficiency,
        },
        trainingDetails: training && {
          objectiveFunction: training.objective ? { notes: training.objective } : undefined,
          trainingObservations: training.observations,
          trainingJobDetails: {
            trainingDatasets: training.datasets,
            userProvidedHyperParameters: training.hyperParameters && Object.entries(training.hyperParameters).map(([name, value]) => ({ name, value })),
            userProvidedTrainingMetrics: training.metrics && Object.entries(training.metrics).map(([name, value]) => ({ name, value })),
          },
        },
        additionalInformation:
          props.ethicalConsiderations || props.caveatsAndRecommendations
            ? { ethicalConsiderations: props.ethicalConsiderations, caveatsAndRecommendations: props.caveatsAndRecommendations }
            : undefined,
      },
    });
  }
}
