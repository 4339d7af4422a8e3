import type { PlatformConfigInput } from './schema';

type ModelCardInput = NonNullable<NonNullable<PlatformConfigInput['models'][number]['modelMonitor']>['modelCard']>;

/** The churn model's card: what it is for and how it was trained, the same in every environment that publishes it. */
export const churnModelCard: ModelCardInput = {
  owner: 'customer-analytics',
  problemType: 'Binary classification',
  algorithmType: 'XGBoost',
  intendedUse: {
    purpose: 'Rank customers by their propensity to cancel within 90 days.',
    intendedUses: 'Prioritises retention offers by the customer-care team; never used alone to change a price or end a contract.',
    riskRating: 'Medium',
    riskRatingExplanation: 'A wrong score misdirects a retention offer; a person reviews every action taken on it.',
    factorsAffectingEfficiency: 'Customers with under three months of tenure and new contract types are rare in the training data.',
  },
  trainingDetails: { objective: 'binary:logistic (log loss)', observations: 'Trained on 24 months of account, billing and support history; classes rebalanced by weighting.' },
  ethicalConsiderations: 'Contract type stands in for customer segment: bias drift on it is monitored by Clarify.',
};
