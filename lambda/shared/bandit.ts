// Online allocation of an endpoint's traffic between model variants as a multi-armed bandit (seed
// pattern 17, online learning). Pure: no AWS, no clock, no Math.random. A caller (a scheduled workflow,
// say) reads the prediction log's outcomes per variant, folds them into the stored state with
// recordOutcomes, calls decideAllocation with a seed, applies the returned weights with
// UpdateEndpointWeightsAndCapacities (the same VariantWeight shape lambda/shared/endpoint-weights.ts
// uses) and stores the new state and the decision record.
//
// Posteriors (one per arm, from the sufficient statistics the state keeps):
//   binary      Beta(α0 + successes, β0 + failures); prior Beta(1, 1) unless configured.
//   continuous  Normal-Inverse-Gamma, conjugate for a normal outcome with unknown mean and variance:
//                 κn = κ0 + n,  μn = (κ0 μ0 + Σx) / κn,  αn = α0 + n/2,
//                 βn = β0 + SS/2 + κ0 n (x̄ - μ0)² / (2 κn),   SS = Σx² - (Σx)²/n.
//               The mean's marginal posterior is Student t with 2αn degrees of freedom, location μn and
//               scale √(βn / (αn κn)). The default prior is the reference prior p(μ, σ²) ∝ 1/σ²
//               (κ0 = 0, α0 = -1/2, β0 = 0), the NIG family's limit, which gives the textbook
//               μ | data ~ t_{n-1}(x̄, s²/n) and needs no guess of the metric's units.
//   Why NIG and not a normal with the sample variance plugged in as if known: the plug-in posterior
//   N(x̄, s²/n) ignores that s is itself estimated, so with few outcomes it is too narrow and the
//   bandit stops exploring an arm whose early outcomes happened to be poor; the t marginal is wider
//   exactly when n is small, and the two agree closely once n is in the hundreds. The price is one Gamma draw
//   per Thompson sample.
//
// Allocation:
//   thompson  P(arm is best) by Monte Carlo: each of `draws` rounds draws one value from every arm's
//             posterior (Beta as X/(X+Y) of two Marsaglia–Tsang Gamma draws; NIG as σ² = βn/Gamma(αn),
//             μ ~ N(μn, σ²/κn) with Box–Muller normals) and credits the best (ties share the credit).
//             The target weights are these probabilities: Thompson sampling served in batches is
//             probability matching. The uniforms come from xoshiro128** seeded through SplitMix64, so a
//             seed reproduces a decision bit for bit. Monte Carlo error of each probability is at most
//             0.5/√draws (0.005 at the default 10 000 draws).
//   ucb       UCB1 indices: x̄ + c · scale · √(2 ln N / n) with N the total observations, scale 1 for binary
//             outcomes (UCB1's rewards in [0, 1]) and the arm's sample standard deviation for continuous
//             ones (so the index is in the metric's units and does not depend on them). The target is
//             greedy: the arm with the highest index gets 1 (exact ties split it). Proportional shares
//             were rejected: indices are not probabilities, and shares proportional to them change when
//             a constant is added to every outcome. Greedy under the step limit is a gradual shift.
//   higherIsBetter: false (latency, error rate) makes the lowest value best in both.
//
// Guard rails, in this order:
//   1. minimum observations: any arm with fewer outcomes than guardRails.minObservations (or an
//      improper posterior) leaves every weight unchanged;
//   2. a floor: every arm keeps at least guardRails.minShare of the traffic (so no arm stops learning);
//   3. a step limit: no arm's weight moves more than guardRails.maxStep from its previous weight;
//   4. the weights sum to exactly 1.
//   The new weights are the Euclidean projection of the target onto {w : Σw = 1, max(minShare, prev - maxStep)
//   ≤ w ≤ prev + maxStep}: the closest feasible weights, computed exactly (a piecewise-linear root, no
//   iteration). Previous weights that put an arm under the floor (an endpoint at 100/0) are first
//   repaired: the arm is raised to the floor, the others give up the difference in proportion to their
//   excess over it, and the step limit is measured from the repaired weights (the record says so).
//
// Rounding: weights are whole multiples of 1/WEIGHT_UNITS (one part per million). The projection is
// rounded down per arm and the remaining units go to the arms with the largest remainders (ties to the
// earlier arm), never past an arm's bounds, so the units sum to exactly WEIGHT_UNITS, every bound holds
// exactly in units, and each weight is units / WEIGHT_UNITS (the floating-point sum is within 1e-15 of
// 1). minShare and maxStep must therefore be whole multiples of 1e-6.
//
// Continuous statistics are kept as count, Σx and Σx² (what the log's outcomes add up to): updates are
// additions, so replaying the log in other batches gives the same state up to the rounding of the sums
// (exactly the same for whole-number outcomes, whose sums stay exact below 2^53). The price is
// cancellation in Σx² - (Σx)²/n when the mean is large against the spread (relative error ~1e-16 · x̄²/s²);
// it is clamped at 0.
import type { ArmAggregate, OutcomeType } from './experiments';
import type { VariantWeight } from './endpoint-weights';
import { formatIssues } from './errors';
import { logGamma, StatsInputError } from './stats';
import * as z from './zod';

// ---------------------------------------------------------------------------------------------
// Constants and defaults
// ---------------------------------------------------------------------------------------------

export const BANDIT_STATE_VERSION = 1;
/** Weights are whole multiples of 1 / WEIGHT_UNITS. */
export const WEIGHT_UNITS = 1_000_000;
/** SageMaker endpoints have at most 10 production variants. */
export const MAX_ARMS = 10;
export const STRATEGIES = ['thompson', 'ucb'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export const DEFAULT_BETA_PRIOR: BetaPrior = { alpha: 1, beta: 1 };
/** The reference prior p(μ, σ²) ∝ 1/σ²: μ | data ~ t_{n-1}(x̄, s²/n). */
export const DEFAULT_NORMAL_PRIOR: NormalInverseGammaPrior = { mean: 0, kappa: 0, alpha: -0.5, beta: 0 };
export const DEFAULT_GUARD_RAILS: GuardRails = { minShare: 0.05, maxStep: 0.1, minObservations: 30 };
export const DEFAULT_SETTINGS: BanditSettings = { strategy: 'thompson', higherIsBetter: true, draws: 10_000, exploration: 1, guardRails: DEFAULT_GUARD_RAILS };

// ---------------------------------------------------------------------------------------------
// Schema of the stored state
// ---------------------------------------------------------------------------------------------

/** SageMaker's rules for a variant name (ProductionVariant.VariantName), as in endpoint-weights. */
const VARIANT_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;

const VariantSchema = z.string({ error: 'must be a variant name' }).check(z.regex(VARIANT_NAME, 'must be a SageMaker variant name: 1-63 letters, digits or hyphens'));
const finite = (message = 'must be a finite number') => z.number({ error: message });
// z.int() aborts the whole parse on a fraction (later checks, the cross-field ones included, would not
// run), so whole numbers are a plain refinement.
const whole = () => z.refine<number>((value) => Number.isInteger(value), 'must be a whole number');
const CountSchema = z.number({ error: 'must be a whole number' }).check(whole(), z.minimum(0, 'must be at least 0'), z.maximum(Number.MAX_SAFE_INTEGER, 'must be a safe integer'));
const WeightSchema = finite('must be a non-negative number').check(z.minimum(0, 'must be a non-negative number'));

/** A share on the weights' grid (a whole multiple of 1e-6) within [min, max]. */
const gridShare = (min: number, max: number, minInclusive: boolean) =>
  finite().check(
    minInclusive ? z.minimum(min, `must be at least ${min}`) : z.gt(min, `must be above ${min}`),
    z.maximum(max, `must be at most ${max}`),
    z.refine((value: number) => Math.abs(value * WEIGHT_UNITS - Math.round(value * WEIGHT_UNITS)) <= 1e-6, `must be a whole multiple of ${1 / WEIGHT_UNITS} (the weights' resolution)`),
  );

export const GuardRailsSchema = z.strictObject({
  /** Least share of the traffic every arm keeps. */
  minShare: gridShare(0, 0.5, true),
  /** Largest change of an arm's weight in one decision. */
  maxStep: gridShare(0, 1, false),
  /** Fewest outcomes every arm needs before the weights move at all. */
  minObservations: CountSchema.check(z.minimum(1, 'must be at least 1')),
});

export const BanditSettingsSchema = z.strictObject({
  strategy: z.enum(STRATEGIES, { error: () => `must be one of ${STRATEGIES.map((strategy) => `'${strategy}'`).join(', ')}` }),
  /** Whether larger outcomes are better (conversion: yes; latency, error: no). */
  higherIsBetter: z.boolean({ error: 'must be a boolean' }),
  /** Thompson: Monte Carlo rounds per decision. */
  draws: z.number({ error: 'must be a whole number' }).check(whole(), z.minimum(100, 'must be at least 100'), z.maximum(1_000_000, 'must be at most 1000000')),
  /** UCB: the exploration constant c. */
  exploration: finite().check(z.minimum(0, 'must be at least 0'), z.maximum(100, 'must be at most 100')),
  guardRails: GuardRailsSchema,
});

export const BetaPriorSchema = z.strictObject({
  alpha: finite().check(z.gt(0, 'must be above 0')),
  beta: finite().check(z.gt(0, 'must be above 0')),
});

export const NormalInverseGammaPriorSchema = z.strictObject({
  /** μ0, the prior guess of the mean. */
  mean: finite(),
  /** κ0, worth of μ0 in observations; 0 for none. */
  kappa: finite().check(z.minimum(0, 'must be at least 0')),
  /** α0; -1/2 with κ0 = β0 = 0 is the reference prior. */
  alpha: finite().check(z.minimum(-0.5, 'must be at least -0.5')),
  /** β0. */
  beta: finite().check(z.minimum(0, 'must be at least 0')),
});

const BinaryArmSchema = z.strictObject({
  variant: VariantSchema,
  /** Current traffic weight (relative; normalised when read). */
  weight: WeightSchema,
  successes: CountSchema,
  failures: CountSchema,
});

const ContinuousArmSchema = z.strictObject({
  variant: VariantSchema,
  weight: WeightSchema,
  count: CountSchema,
  sum: finite(),
  sumOfSquares: finite().check(z.minimum(0, 'must be at least 0')),
});

const armsSchema = <T extends z.ZodMiniType>(arm: T) =>
  z.array(arm).check(z.minLength(2, 'must list at least 2 arms'), z.maxLength(MAX_ARMS, `must list at most ${MAX_ARMS} arms (SageMaker's variants per endpoint)`));

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Checks across fields, written against unparsed input so they run (and report) even when some fields
 * are malformed: zod skips ordinary refinements once a field has the wrong type.
 */
function crossChecks(value: unknown, ctx: z.core.$RefinementCtx<unknown>): void {
  if (!isRecord(value)) return;
  const arms = Array.isArray(value.arms) ? value.arms : [];
  const seen = new Map<string, number>();
  let total = 0;
  arms.forEach((arm: unknown, index) => {
    if (!isRecord(arm)) return;
    if (typeof arm.variant === 'string') {
      const first = seen.get(arm.variant);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['arms', index, 'variant'], message: `repeats arms[${first}].variant: each variant once`, input: arm.variant });
      else seen.set(arm.variant, index);
    }
    if (typeof arm.weight === 'number' && Number.isFinite(arm.weight) && arm.weight > 0) total += arm.weight;
    if (value.outcomeType === 'continuous') continuousArmChecks(arm, ['arms', index], ctx);
  });
  if (arms.length > 0 && total <= 0) ctx.addIssue({ code: 'custom', path: ['arms'], message: 'must give at least one arm a weight above 0', input: arms });
  const settings = isRecord(value.settings) ? value.settings : {};
  const rails = isRecord(settings.guardRails) ? settings.guardRails : {};
  // Above 0.5 the field's own check has said so already.
  if (typeof rails.minShare === 'number' && rails.minShare <= 0.5 && arms.length >= 2 && rails.minShare * arms.length > 1 + 1e-12) {
    ctx.addIssue({ code: 'custom', path: ['settings', 'guardRails', 'minShare'], message: `must be at most 1/${arms.length} with ${arms.length} arms (the floors cannot add up to more than all the traffic)`, input: rails.minShare });
  }
  if (value.outcomeType === 'continuous' && typeof rails.minObservations === 'number' && rails.minObservations < 2) {
    ctx.addIssue({ code: 'custom', path: ['settings', 'guardRails', 'minObservations'], message: 'must be at least 2 for continuous outcomes (a variance needs two)', input: rails.minObservations });
  }
}

/** count 0 means no sums; Σx² · n ≥ (Σx)² (Cauchy–Schwarz) up to rounding. */
function continuousArmChecks(arm: Record<string, unknown>, path: (string | number)[], ctx: z.core.$RefinementCtx<unknown>): void {
  const { count, sum, sumOfSquares } = arm;
  if (typeof count !== 'number' || typeof sum !== 'number' || typeof sumOfSquares !== 'number' || !Number.isFinite(sum) || !Number.isFinite(sumOfSquares)) return;
  if (count === 0 && (sum !== 0 || sumOfSquares !== 0)) {
    ctx.addIssue({ code: 'custom', path: [...path, 'count'], message: 'is 0, so sum and sumOfSquares must be 0 too', input: count });
  } else if (count > 0 && sum * sum > sumOfSquares * count * (1 + 1e-9) + Number.MIN_VALUE) {
    ctx.addIssue({ code: 'custom', path: [...path, 'sumOfSquares'], message: 'must be at least sum² / count (no real outcomes have these sums)', input: sumOfSquares });
  }
}

const ALWAYS = { when: () => true };

const stateFields = {
  version: z.literal(BANDIT_STATE_VERSION, { error: `must be ${BANDIT_STATE_VERSION}` }),
  /** Decisions taken so far. */
  step: CountSchema,
  settings: BanditSettingsSchema,
};

const BinaryStateSchema = z
  .strictObject({ ...stateFields, outcomeType: z.literal('binary'), prior: BetaPriorSchema, arms: armsSchema(BinaryArmSchema) })
  .check(z.superRefine(crossChecks, ALWAYS));

const ContinuousStateSchema = z
  .strictObject({ ...stateFields, outcomeType: z.literal('continuous'), prior: NormalInverseGammaPriorSchema, arms: armsSchema(ContinuousArmSchema) })
  .check(z.superRefine(crossChecks, ALWAYS));

/** The stored state: JSON, validated by {@link parseBanditState}. */
export const BanditStateSchema = z.discriminatedUnion('outcomeType', [BinaryStateSchema, ContinuousStateSchema], {
  error: (issue) => (issue.code === 'invalid_union' ? "must be 'binary' or 'continuous'" : undefined),
});

export type GuardRails = z.output<typeof GuardRailsSchema>;
export type BanditSettings = z.output<typeof BanditSettingsSchema>;
export type BetaPrior = z.output<typeof BetaPriorSchema>;
export type NormalInverseGammaPrior = z.output<typeof NormalInverseGammaPriorSchema>;
export type BinaryArmState = z.output<typeof BinaryArmSchema>;
export type ContinuousArmState = z.output<typeof ContinuousArmSchema>;
export type BinaryBanditState = z.output<typeof BinaryStateSchema>;
export type ContinuousBanditState = z.output<typeof ContinuousStateSchema>;
export type BanditState = z.output<typeof BanditStateSchema>;

/** Input that does not validate; the message names every problem with its path, `issues` lists them. */
export class BanditInputError extends Error {
  public override readonly name = 'BanditInputError';

  constructor(
    message: string,
    readonly issues: readonly { readonly path: string; readonly message: string }[],
  ) {
    super(message);
  }
}

function parseWith<S extends z.ZodMiniType>(schema: S, value: unknown, root: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const rooted = parsed.error.issues.map((issue) => ({ ...issue, path: [root, ...issue.path] }));
  // The message is formatIssues' (./errors), as every handler renders zod issues; `issues` has one entry per field.
  const issues = rooted.flatMap((issue) =>
    issue.code === 'unrecognized_keys' ? issue.keys.map((key) => ({ path: pathText([...issue.path, key]), message: 'unknown field' })) : [{ path: pathText(issue.path), message: issue.message }],
  );
  throw new BanditInputError(formatIssues(rooted, root), issues);
}

/** `state.arms[0].weight`: an index follows its array without a dot (as formatIssues writes paths). */
function pathText(path: readonly PropertyKey[]): string {
  return path.reduce<string>((text, segment) => (typeof segment === 'number' ? `${text}[${segment}]` : text === '' ? String(segment) : `${text}.${String(segment)}`), '');
}

/** Validates a stored state (JSON.parse of what a previous step stored). Throws {@link BanditInputError}. */
export function parseBanditState(value: unknown, root = 'state'): BanditState {
  return parseWith(BanditStateSchema, value, root);
}

// ---------------------------------------------------------------------------------------------
// Building and updating the state
// ---------------------------------------------------------------------------------------------

export interface CreateBanditStateInput {
  readonly outcomeType: OutcomeType;
  /** The endpoint's variants and their current weights (relative, as DesiredWeight: 95 and 5 are fine). */
  readonly weights: readonly VariantWeight[];
  readonly prior?: BetaPrior | NormalInverseGammaPrior;
  readonly settings?: Partial<Omit<BanditSettings, 'guardRails'>> & { readonly guardRails?: Partial<GuardRails> };
}

/** A state with no outcomes yet. Throws {@link BanditInputError} naming every problem. */
export function createBanditState(input: CreateBanditStateInput): BanditState {
  const settings = { ...DEFAULT_SETTINGS, ...input.settings, guardRails: { ...DEFAULT_GUARD_RAILS, ...input.settings?.guardRails } };
  const weights = Array.isArray(input.weights) ? input.weights : [];
  const valid = weights.every((weight) => typeof weight?.DesiredWeight === 'number' && Number.isFinite(weight.DesiredWeight) && weight.DesiredWeight >= 0);
  const total = valid ? weights.reduce((sum, weight) => sum + weight.DesiredWeight, 0) : 0;
  // Normalised onto the grid when they can be; otherwise passed through for the schema to name.
  const shares = valid && total > 0 ? toUnits(weights.map((weight) => weight.DesiredWeight)).map((units) => units / WEIGHT_UNITS) : weights.map((weight) => weight?.DesiredWeight);
  const arms = weights.map((weight, index) =>
    input.outcomeType === 'continuous'
      ? { variant: weight?.VariantName, weight: shares[index], count: 0, sum: 0, sumOfSquares: 0 }
      : { variant: weight?.VariantName, weight: shares[index], successes: 0, failures: 0 },
  );
  const prior = input.prior ?? (input.outcomeType === 'continuous' ? DEFAULT_NORMAL_PRIOR : DEFAULT_BETA_PRIOR);
  return parseBanditState({ version: BANDIT_STATE_VERSION, outcomeType: input.outcomeType, step: 0, settings, prior, arms });
}

/** New binary outcomes of one arm. */
export interface BinaryOutcomes {
  readonly variant: string;
  readonly successes: number;
  readonly failures: number;
}

/** New continuous outcomes of one arm: how many, their sum and their sum of squares. */
export interface ContinuousOutcomes {
  readonly variant: string;
  readonly count: number;
  readonly sum: number;
  readonly sumOfSquares: number;
}

const BinaryBatchSchema = z.array(z.strictObject({ variant: VariantSchema, successes: CountSchema, failures: CountSchema }));
const ContinuousBatchSchema = z.array(z.strictObject({ variant: VariantSchema, count: CountSchema, sum: finite(), sumOfSquares: finite().check(z.minimum(0, 'must be at least 0')) }));

/**
 * Folds new outcomes into the state (the state is not modified; a new one is returned). Arms without an
 * entry keep their statistics. Throws {@link BanditInputError} naming every bad entry, unknown and
 * repeated variants included.
 */
export function recordOutcomes(state: BanditState, outcomes: readonly BinaryOutcomes[] | readonly ContinuousOutcomes[]): BanditState {
  const current = parseBanditState(state);
  const known = new Map(current.arms.map((arm, index) => [arm.variant, index]));
  const batchSchema = (current.outcomeType === 'binary' ? BinaryBatchSchema : ContinuousBatchSchema).check(
    // Against the unparsed entries (ALWAYS), so these are reported alongside malformed fields.
    z.superRefine((entries: unknown, ctx) => {
      if (!Array.isArray(entries)) return;
      const seen = new Set<string>();
      entries.forEach((entry: unknown, index) => {
        if (!isRecord(entry)) return;
        if (typeof entry.variant === 'string') {
          if (!known.has(entry.variant)) ctx.addIssue({ code: 'custom', path: [index, 'variant'], message: `is not an arm of this bandit (${[...known.keys()].join(', ')})`, input: entry.variant });
          if (seen.has(entry.variant)) ctx.addIssue({ code: 'custom', path: [index, 'variant'], message: 'is listed more than once', input: entry.variant });
          seen.add(entry.variant);
        }
        if (current.outcomeType === 'continuous') continuousArmChecks(entry, [index], ctx);
      });
    }, ALWAYS),
  );
  const batch = parseWith(batchSchema, outcomes, 'outcomes') as readonly (BinaryOutcomes | ContinuousOutcomes)[];
  const byVariant = new Map(batch.map((entry) => [entry.variant, entry]));
  const next =
    current.outcomeType === 'binary'
      ? {
          ...current,
          arms: current.arms.map((arm) => {
            const add = byVariant.get(arm.variant) as BinaryOutcomes | undefined;
            return add === undefined ? arm : { ...arm, successes: arm.successes + add.successes, failures: arm.failures + add.failures };
          }),
        }
      : {
          ...current,
          arms: current.arms.map((arm) => {
            const add = byVariant.get(arm.variant) as ContinuousOutcomes | undefined;
            return add === undefined ? arm : { ...arm, count: arm.count + add.count, sum: arm.sum + add.sum, sumOfSquares: arm.sumOfSquares + add.sumOfSquares };
          }),
        };
  return parseBanditState(next);
}

/** One arm's outcomes from the experiment analysis' aggregate (lambda/shared/experiments.ts). */
export function outcomesFromAggregate(arm: ArmAggregate, outcomeType: OutcomeType): BinaryOutcomes | ContinuousOutcomes {
  if (outcomeType === 'binary') {
    const successes = arm.successes ?? Math.round(arm.mean * arm.outcomes);
    return { variant: arm.variant, successes, failures: arm.outcomes - successes };
  }
  const n = arm.outcomes;
  return { variant: arm.variant, count: n, sum: arm.mean * n, sumOfSquares: n === 0 ? 0 : arm.variance * (n - 1) + n * arm.mean * arm.mean };
}

// ---------------------------------------------------------------------------------------------
// Posteriors
// ---------------------------------------------------------------------------------------------

export interface BetaPosterior {
  readonly kind: 'beta';
  readonly alpha: number;
  readonly beta: number;
  /** α / (α + β). */
  readonly mean: number;
}

export interface NormalInverseGammaPosterior {
  readonly kind: 'normal-inverse-gamma';
  /** μn: the location (and, with more than 1 degree of freedom, the mean) of the mean's posterior. */
  readonly mean: number;
  readonly kappa: number;
  readonly alpha: number;
  readonly beta: number;
  /** The mean's marginal posterior is Student t with these degrees of freedom (2αn) ... */
  readonly degreesOfFreedom: number;
  /** ... and this scale, √(βn / (αn κn)); 0 when every outcome was the same (a point mass at μn). */
  readonly scale: number;
}

export type ArmPosterior = BetaPosterior | NormalInverseGammaPosterior;

export function betaPosterior(prior: BetaPrior, successes: number, failures: number): BetaPosterior {
  const alpha = prior.alpha + successes;
  const beta = prior.beta + failures;
  return { kind: 'beta', alpha, beta, mean: alpha / (alpha + beta) };
}

/** Centred sum of squares Σ(x - x̄)² from the sums, clamped at 0 against cancellation. */
function centredSquares(count: number, sum: number, sumOfSquares: number): number {
  return count === 0 ? 0 : Math.max(0, sumOfSquares - (sum * sum) / count);
}

/** The NIG posterior, or null when it is improper (κn = 0 or αn ≤ 0: too few outcomes for the prior). */
export function normalInverseGammaPosterior(prior: NormalInverseGammaPrior, count: number, sum: number, sumOfSquares: number): NormalInverseGammaPosterior | null {
  const kappa = prior.kappa + count;
  const alpha = prior.alpha + count / 2;
  if (!(kappa > 0) || !(alpha > 0)) return null;
  const mean = (prior.kappa * prior.mean + sum) / kappa;
  const sampleMean = count === 0 ? 0 : sum / count;
  const shrink = count === 0 ? 0 : (prior.kappa * count * (sampleMean - prior.mean) ** 2) / (2 * kappa);
  const beta = prior.beta + centredSquares(count, sum, sumOfSquares) / 2 + shrink;
  return { kind: 'normal-inverse-gamma', mean, kappa, alpha, beta, degreesOfFreedom: 2 * alpha, scale: Math.sqrt(beta / (alpha * kappa)) };
}

/** Outcomes observed by an arm. */
export function observationsOf(arm: BinaryArmState | ContinuousArmState): number {
  return 'count' in arm ? arm.count : arm.successes + arm.failures;
}

/** Every arm's posterior, in the state's order (null for an improper one). */
export function posteriors(state: BanditState): (ArmPosterior | null)[] {
  return state.outcomeType === 'binary'
    ? state.arms.map((arm) => betaPosterior(state.prior, arm.successes, arm.failures))
    : state.arms.map((arm) => normalInverseGammaPosterior(state.prior, arm.count, arm.sum, arm.sumOfSquares));
}

// ---------------------------------------------------------------------------------------------
// Random numbers
// ---------------------------------------------------------------------------------------------

// Math's functions as module constants for the hot loops below: inside a vm context (Jest's node
// environment) every global lookup goes through the context's interceptor and costs about ten times
// the arithmetic; a module binding costs nothing anywhere.
const { exp, log, sqrt, cos, sin, imul, PI } = Math;
const POSITIVE_INFINITY = Infinity;
const NEGATIVE_INFINITY = -Infinity;

function checkShape(shape: number): void {
  if (!(shape > 0 && shape < POSITIVE_INFINITY)) throw new StatsInputError('shape', 'must be a finite number above 0', shape);
}

/** A source of uniform numbers on the open interval (0, 1). */
export interface RandomSource {
  nextDouble(): number;
}

const MASK64 = (1n << 64n) - 1n;

/** SplitMix64 (Steele, Lea & Flood 2014; Vigna's splitmix64.c), used to seed xoshiro128**. */
export class SplitMix64 {
  private state: bigint;

  constructor(seed: bigint | number) {
    this.state = BigInt(seed) & MASK64;
  }

  next(): bigint {
    this.state = (this.state + 0x9e3779b97f4a7c15n) & MASK64;
    let z = this.state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    return z ^ (z >> 31n);
  }
}

const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

/** xoshiro128** 1.1 (Blackman & Vigna 2018): 32-bit words, period 2^128 - 1, no BigInt in the hot path. */
export class Xoshiro128StarStar implements RandomSource {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  private constructor(state: readonly [number, number, number, number]) {
    [this.s0, this.s1, this.s2, this.s3] = state.map((word) => word >>> 0) as [number, number, number, number];
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) throw new StatsInputError('state', 'must not be all zero', state);
  }

  /** The generator with this exact state (for reference vectors). */
  static fromState(state: readonly [number, number, number, number]): Xoshiro128StarStar {
    return new Xoshiro128StarStar(state);
  }

  /** The generator for a seed (a safe integer ≥ 0): two SplitMix64 outputs make its four words. */
  static fromSeed(seed: number): Xoshiro128StarStar {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new StatsInputError('seed', 'must be a whole number from 0 to 2^53 - 1', seed);
    const mix = new SplitMix64(seed);
    const a = mix.next();
    const b = mix.next();
    const words: [number, number, number, number] = [Number(a & 0xffffffffn), Number(a >> 32n), Number(b & 0xffffffffn), Number(b >> 32n)];
    // All four zero would need two zero SplitMix64 outputs in a row; guard regardless.
    if ((words[0] | words[1] | words[2] | words[3]) === 0) words[0] = 1;
    return new Xoshiro128StarStar(words);
  }

  nextUint32(): number {
    const result = imul(rotl(imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** (k + 1/2) / 2^52 with k the top 52 bits of two outputs: uniform on (0, 1), never 0 or 1. */
  nextDouble(): number {
    const high = this.nextUint32() >>> 6;
    const low = this.nextUint32() >>> 6;
    return (high * 67_108_864 + low + 0.5) / 4_503_599_627_370_496;
  }
}

/** Normal, Gamma and Beta variates from a uniform source. */
export class Sampler {
  private spare = 0;
  private hasSpare = false;

  constructor(private readonly random: RandomSource) {}

  uniform(): number {
    return this.random.nextDouble();
  }

  /** Standard normal by Box–Muller; the second value of each pair is kept for the next call. */
  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    const radius = sqrt(-2 * log(this.uniform()));
    const angle = 2 * PI * this.uniform();
    this.spare = radius * sin(angle);
    this.hasSpare = true;
    return radius * cos(angle);
  }

  /** Gamma(shape, 1) by Marsaglia & Tsang (2000); shape < 1 by Gamma(shape + 1) · U^(1/shape). */
  gamma(shape: number): number {
    checkShape(shape);
    return shape >= 1 ? this.marsagliaTsang(shape) : exp(this.logGamma(shape));
  }

  /** ln of a Gamma(shape, 1) variate: keeps tiny shapes (whose variates underflow) usable. */
  logGamma(shape: number): number {
    checkShape(shape);
    return shape >= 1 ? log(this.marsagliaTsang(shape)) : this.logGamma(shape + 1) + log(this.uniform()) / shape;
  }

  /** Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b); from their logarithms when a shape is below 1. */
  beta(a: number, b: number): number {
    checkShape(a);
    checkShape(b);
    if (a >= 1 && b >= 1) {
      const x = this.marsagliaTsang(a);
      return x / (x + this.marsagliaTsang(b));
    }
    const x = this.logGamma(a);
    const y = this.logGamma(b);
    return 1 / (1 + exp(y - x));
  }

  /** Marsaglia & Tsang's squeeze-and-reject method for shape ≥ 1 (about 1.02 normals per variate). */
  private marsagliaTsang(shape: number): number {
    const d = shape - 1 / 3;
    const c = 1 / sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.uniform();
      const x2 = x * x;
      if (u < 1 - 0.0331 * x2 * x2 || log(u) < 0.5 * x2 + d * (1 - v + log(v))) return d * v;
    }
  }

  /** A draw of the mean from a NIG posterior: σ² = β / Gamma(α), μ ~ N(μn, σ²/κ). */
  normalInverseGammaMean(posterior: NormalInverseGammaPosterior): number {
    if (posterior.beta === 0) return posterior.mean;
    const variance = posterior.beta / this.gamma(posterior.alpha);
    return posterior.mean + sqrt(variance / posterior.kappa) * this.normal();
  }

  /** One draw from an arm's posterior (of its success rate or its mean). */
  draw(posterior: ArmPosterior): number {
    return posterior.kind === 'beta' ? this.beta(posterior.alpha, posterior.beta) : this.normalInverseGammaMean(posterior);
  }
}

// ---------------------------------------------------------------------------------------------
// Thompson sampling and UCB
// ---------------------------------------------------------------------------------------------

export interface ThompsonOptions {
  readonly draws: number;
  /** The injected generator, e.g. Xoshiro128StarStar.fromSeed(seed). */
  readonly random: RandomSource;
  /** Default true. */
  readonly higherIsBetter?: boolean;
}

/**
 * P(arm is best) for every arm, by Monte Carlo: the share of `draws` rounds in which the arm's draw was
 * the best (a tie shares the round). Arms are drawn in order in every round, so a seed fixes the result.
 */
export function thompsonProbabilities(posteriors: readonly ArmPosterior[], options: ThompsonOptions): number[] {
  const { draws } = options;
  if (!Number.isSafeInteger(draws) || draws < 1) throw new StatsInputError('draws', 'must be a whole number of at least 1', draws);
  if (posteriors.length === 0) throw new StatsInputError('posteriors', 'must list at least one arm', posteriors);
  const sampler = new Sampler(options.random);
  const sign = options.higherIsBetter === false ? -1 : 1;
  const wins = new Array<number>(posteriors.length).fill(0);
  const tied: number[] = [];
  for (let round = 0; round < draws; round++) {
    let best = NEGATIVE_INFINITY;
    tied.length = 0;
    for (let arm = 0; arm < posteriors.length; arm++) {
      const value = sign * sampler.draw(posteriors[arm] as ArmPosterior);
      if (value > best) {
        best = value;
        tied.length = 0;
        tied.push(arm);
      } else if (value === best) {
        tied.push(arm);
      }
    }
    for (const arm of tied) wins[arm] = (wins[arm] as number) + 1 / tied.length;
  }
  return wins.map((count) => count / draws);
}

export interface UcbScore {
  /** The arm's observed mean outcome (success rate for binary outcomes). */
  readonly mean: number;
  /** c · scale · √(2 ln N / n). */
  readonly bonus: number;
  /** ±mean + bonus (the mean's sign flipped when lower is better); the highest index is chosen. */
  readonly index: number;
}

/** UCB1 indices (see the header for the scale). Every arm needs at least one outcome (two for continuous). */
export function ucbScores(state: BanditState): UcbScore[] {
  const { exploration, higherIsBetter } = state.settings;
  const stats = state.outcomeType === 'binary'
    ? state.arms.map((arm) => {
        const n = arm.successes + arm.failures;
        return { n, mean: arm.successes / n, scale: 1 };
      })
    : state.arms.map((arm) => ({ n: arm.count, mean: arm.sum / arm.count, scale: sqrt(centredSquares(arm.count, arm.sum, arm.sumOfSquares) / (arm.count - 1)) }));
  const total = stats.reduce((sum, arm) => sum + arm.n, 0);
  return stats.map(({ n, mean, scale }) => {
    const bonus = exploration * scale * sqrt((2 * log(total)) / n);
    return { mean, bonus, index: (higherIsBetter ? mean : -mean) + bonus };
  });
}

/** Greedy targets: 1 for the highest index, split equally between exact ties. */
export function greedyTargets(indices: readonly number[]): number[] {
  const best = Math.max(...indices);
  const winners = indices.filter((index) => index === best).length;
  return indices.map((index) => (index === best ? 1 / winners : 0));
}

// ---------------------------------------------------------------------------------------------
// Guard rails
// ---------------------------------------------------------------------------------------------

/** Which guard rail held an arm's weight away from its target. */
export type GuardRail = 'minShare' | 'maxStep';

export interface GuardRailResult {
  /** New weights: units / WEIGHT_UNITS. */
  readonly weights: number[];
  /** New weights in units; they sum to exactly WEIGHT_UNITS. */
  readonly units: number[];
  /** The previous weights, normalised onto the grid. */
  readonly previous: number[];
  /** The weights the step limit is measured from: `previous`, or its repair when an arm was under the floor. */
  readonly start: number[];
  readonly repaired: boolean;
  /** Per arm, the guard rail its weight sits on because of the target, or null. */
  readonly limitedBy: (GuardRail | null)[];
  /** The amount added to every target inside the bounds (the projection's multiplier), as a share. */
  readonly shift: number;
}

/**
 * Integers within [lo, hi] summing to `total` and closest to x: rounded down, then one unit at a time to
 * the largest remainders (ties to the earlier index), or taken from the smallest when over. Needs
 * Σlo ≤ total ≤ Σhi.
 */
function apportion(x: readonly number[], lo: readonly number[], hi: readonly number[], total: number): number[] {
  const units = x.map((value, index) => Math.min(hi[index] as number, Math.max(lo[index] as number, Math.floor(value + 1e-7))));
  let rest = total - units.reduce((sum, value) => sum + value, 0);
  const order = x.map((_, index) => index).sort((a, b) => (x[b] as number) - (units[b] as number) - ((x[a] as number) - (units[a] as number)) || a - b);
  while (rest > 0) {
    const before = rest;
    for (const index of order) {
      if (rest === 0) break;
      if ((units[index] as number) < (hi[index] as number)) {
        units[index] = (units[index] as number) + 1;
        rest -= 1;
      }
    }
    if (rest === before) throw new Error('apportion: the upper bounds add up to less than the total');
  }
  while (rest < 0) {
    const before = rest;
    for (const index of [...order].reverse()) {
      if (rest === 0) break;
      if ((units[index] as number) > (lo[index] as number)) {
        units[index] = (units[index] as number) - 1;
        rest += 1;
      }
    }
    if (rest === before) throw new Error('apportion: the lower bounds add up to more than the total');
  }
  return units;
}

/** Σ of relative weights; throws naming the first that is negative or not finite, or an all-zero list. */
function checkedTotal(field: string, weights: readonly number[]): number {
  weights.forEach((weight, index) => {
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) throw new StatsInputError(`${field}[${index}]`, 'must be a finite number of at least 0', weight);
  });
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  if (!(total > 0)) throw new StatsInputError(field, 'must have at least one entry above 0', weights);
  return total;
}

/** Relative weights (non-negative, not all 0) as grid units summing to exactly WEIGHT_UNITS. */
export function toUnits(weights: readonly number[]): number[] {
  const total = checkedTotal('weights', weights);
  const scaled = weights.map((weight) => {
    const value = (weight / total) * WEIGHT_UNITS;
    // Weights already on the grid (a stored state's) come back exactly.
    return Math.abs(value - Math.round(value)) < 1e-6 ? Math.round(value) : value;
  });
  return apportion(scaled, scaled.map(() => 0), scaled.map(() => WEIGHT_UNITS), WEIGHT_UNITS);
}

/**
 * Euclidean projection of T onto {x : Σx = total, lo ≤ x ≤ hi}: x = clamp(T + λ, lo, hi) with λ the root
 * of the non-decreasing piecewise-linear Σ clamp(T + λ) = total, found between breakpoints and solved
 * exactly on its segment.
 */
function projectOntoBox(target: readonly number[], lo: readonly number[], hi: readonly number[], total: number): { x: number[]; shift: number } {
  const at = (shift: number) => target.map((value, index) => Math.min(hi[index] as number, Math.max(lo[index] as number, value + shift)));
  const sum = (values: readonly number[]) => values.reduce((acc, value) => acc + value, 0);
  const breakpoints = [...new Set(target.flatMap((value, index) => [(lo[index] as number) - value, (hi[index] as number) - value]))].sort((a, b) => a - b);
  let previous = breakpoints[0] as number;
  let previousSum = sum(at(previous));
  if (previousSum >= total) return { x: at(previous), shift: previous };
  for (const point of breakpoints.slice(1)) {
    const pointSum = sum(at(point));
    if (pointSum >= total) {
      const shift = pointSum === previousSum ? point : previous + ((total - previousSum) * (point - previous)) / (pointSum - previousSum);
      return { x: at(shift), shift };
    }
    previous = point;
    previousSum = pointSum;
  }
  return { x: at(previous), shift: previous };
}

/**
 * The guard rails (floor, step limit, exact sum; see the header) applied to a target allocation.
 * `previous` is relative (normalised here), `target` too (Thompson's probabilities sum to 1 up to rounding).
 */
export function applyGuardRails(previous: readonly number[], target: readonly number[], rails: Pick<GuardRails, 'minShare' | 'maxStep'>): GuardRailResult {
  if (previous.length === 0 || previous.length !== target.length) throw new StatsInputError('target', `must have one entry per arm (${previous.length})`, target);
  const k = previous.length;
  const floor = Math.round(rails.minShare * WEIGHT_UNITS);
  const step = Math.round(rails.maxStep * WEIGHT_UNITS);
  if (!(floor >= 0) || floor * k > WEIGHT_UNITS) throw new StatsInputError('minShare', `must be from 0 to 1/${k}`, rails.minShare);
  if (!(step >= 0)) throw new StatsInputError('maxStep', 'must be at least 0', rails.maxStep);
  const targetTotal = checkedTotal('target', target);
  const targetUnits = target.map((value) => (value / targetTotal) * WEIGHT_UNITS);
  const previousUnits = toUnits(previous);

  // Repair: raise arms under the floor, taking the difference from the others in proportion to their excess.
  const deficit = previousUnits.reduce((sum, units) => sum + Math.max(0, floor - units), 0);
  let startUnits = previousUnits;
  if (deficit > 0) {
    const excess = previousUnits.map((units) => Math.max(0, units - floor));
    const totalExcess = excess.reduce((sum, value) => sum + value, 0);
    const take = apportion(
      excess.map((value) => (deficit * value) / totalExcess),
      excess.map(() => 0),
      excess,
      deficit,
    );
    startUnits = previousUnits.map((units, index) => (units < floor ? floor : units - (take[index] as number)));
  }

  const lo = startUnits.map((units) => Math.max(floor, units - step));
  const hi = startUnits.map((units) => Math.min(WEIGHT_UNITS, units + step));
  const { x, shift } = projectOntoBox(targetUnits, lo, hi, WEIGHT_UNITS);
  const units = apportion(x, lo, hi, WEIGHT_UNITS);
  const tolerance = 1e-7;
  // An arm is held by a rail when it sits on one of its bounds and either the shifted target or the
  // target itself lies beyond it (the second catches a plateau of the root, where every arm is on a bound).
  const limitedBy = targetUnits.map((value, index): GuardRail | null => {
    const wanted = value + shift;
    const at = x[index] as number;
    const low = lo[index] as number;
    const high = hi[index] as number;
    if (at <= low + tolerance && (wanted < low - tolerance || value < low - tolerance)) return low === floor ? 'minShare' : 'maxStep';
    if (at >= high - tolerance && high < WEIGHT_UNITS && (wanted > high + tolerance || value > high + tolerance)) return 'maxStep';
    return null;
  });
  return {
    weights: units.map((value) => value / WEIGHT_UNITS),
    units,
    previous: previousUnits.map((value) => value / WEIGHT_UNITS),
    start: startUnits.map((value) => value / WEIGHT_UNITS),
    repaired: deficit > 0,
    limitedBy,
    shift: shift / WEIGHT_UNITS,
  };
}

// ---------------------------------------------------------------------------------------------
// The decision
// ---------------------------------------------------------------------------------------------

export interface DecideOptions {
  /** Seeds the Monte Carlo (required with the thompson strategy): a whole number from 0 to 2^53 - 1. Store it. */
  readonly seed?: number;
}

/** One arm in the decision record. */
export interface ArmDecision {
  readonly variant: string;
  readonly observations: number;
  /** At least guardRails.minObservations outcomes and a proper posterior. */
  readonly sufficient: boolean;
  readonly statistics: { readonly successes: number; readonly failures: number } | { readonly count: number; readonly mean: number; readonly variance: number };
  /** null when improper (too few continuous outcomes for the prior). */
  readonly posterior: ArmPosterior | null;
  /** Thompson: Monte Carlo estimate of P(this arm is best). */
  readonly probabilityBest?: number;
  /** UCB: the arm's index. */
  readonly ucb?: UcbScore;
  /** The allocation the strategy asked for, before the guard rails. */
  readonly target?: number;
  readonly previousWeight: number;
  /** The weight the step limit was measured from, when the previous one was under the floor. */
  readonly repairedPreviousWeight?: number;
  readonly weight: number;
  /** weight - previousWeight. */
  readonly change: number;
  readonly limitedBy: GuardRail | null;
}

/** The audit record of one decision: JSON, with everything needed to reproduce it from the state. */
export interface AllocationDecision {
  readonly version: typeof BANDIT_STATE_VERSION;
  /** 1 for the first decision of a state. */
  readonly step: number;
  readonly outcome: 'allocated' | 'insufficient-data';
  /** Whether any weight differs from the previous one. */
  readonly changed: boolean;
  readonly reason: string;
  readonly outcomeType: OutcomeType;
  readonly strategy: Strategy;
  readonly higherIsBetter: boolean;
  readonly prior: BetaPrior | NormalInverseGammaPrior;
  readonly guardRails: GuardRails;
  readonly thompson?: { readonly seed: number; readonly draws: number; readonly generator: 'xoshiro128**/splitmix64' };
  readonly ucb?: { readonly exploration: number; readonly totalObservations: number };
  /** The guard rails that held at least one arm away from its target. */
  readonly boundBy: GuardRail[];
  readonly repairedPrevious: boolean;
  readonly arms: ArmDecision[];
}

export interface AllocationResult {
  /** The new weights for UpdateEndpointWeightsAndCapacities (fractions summing to 1). */
  readonly weights: VariantWeight[];
  /** The state to store for the next step: the new weights, the step counted. */
  readonly state: BanditState;
  readonly decision: AllocationDecision;
}

const format = (value: number) => (Math.round(value * 10_000) / 10_000).toString();

/**
 * One allocation step: posteriors, the strategy's target, the guard rails. Deterministic given the state
 * and the seed. Throws {@link BanditInputError} for a state that does not validate or a missing seed.
 */
export function decideAllocation(state: BanditState, options: DecideOptions = {}): AllocationResult {
  const current = parseBanditState(state);
  const { settings } = current;
  const rails = settings.guardRails;
  if (settings.strategy === 'thompson' && (options.seed === undefined || !Number.isSafeInteger(options.seed) || options.seed < 0)) {
    throw new BanditInputError('options.seed: must be a whole number from 0 to 2^53 - 1 with the thompson strategy', [{ path: 'options.seed', message: 'must be a whole number from 0 to 2^53 - 1 with the thompson strategy' }]);
  }
  const arms: readonly (BinaryArmState | ContinuousArmState)[] = current.arms;
  const armPosteriors = posteriors(current);
  const observations = arms.map(observationsOf);
  const sufficient = arms.map((_, index) => (observations[index] as number) >= rails.minObservations && armPosteriors[index] !== null);
  const statistics = arms.map((arm) => {
    if (!('count' in arm)) return { successes: arm.successes, failures: arm.failures };
    return { count: arm.count, mean: arm.count === 0 ? 0 : arm.sum / arm.count, variance: arm.count < 2 ? 0 : centredSquares(arm.count, arm.sum, arm.sumOfSquares) / (arm.count - 1) };
  });
  const previousUnits = toUnits(arms.map((arm) => arm.weight));
  const common = {
    version: BANDIT_STATE_VERSION,
    step: current.step + 1,
    outcomeType: current.outcomeType,
    strategy: settings.strategy,
    higherIsBetter: settings.higherIsBetter,
    prior: current.prior,
    guardRails: rails,
  } as const;

  if (!sufficient.every(Boolean)) {
    const lacking = arms.flatMap((arm, index) => (sufficient[index] ? [] : [`${arm.variant} has ${observations[index]}`]));
    const weights = previousUnits.map((units) => units / WEIGHT_UNITS);
    const decision: AllocationDecision = {
      ...common,
      outcome: 'insufficient-data',
      changed: false,
      reason: `weights unchanged: every arm needs at least ${rails.minObservations} outcomes; ${lacking.join(', ')}`,
      boundBy: [],
      repairedPrevious: false,
      arms: arms.map((arm, index) => ({
        variant: arm.variant,
        observations: observations[index] as number,
        sufficient: sufficient[index] as boolean,
        statistics: statistics[index] as ArmDecision['statistics'],
        posterior: armPosteriors[index] as ArmPosterior | null,
        previousWeight: weights[index] as number,
        weight: weights[index] as number,
        change: 0,
        limitedBy: null,
      })),
    };
    return { weights: toVariantWeights(arms, weights), state: withWeights(current, weights), decision };
  }

  const proper = armPosteriors as ArmPosterior[];
  let target: number[];
  let probabilities: number[] | undefined;
  let scores: UcbScore[] | undefined;
  if (settings.strategy === 'thompson') {
    probabilities = thompsonProbabilities(proper, { draws: settings.draws, random: Xoshiro128StarStar.fromSeed(options.seed as number), higherIsBetter: settings.higherIsBetter });
    target = probabilities;
  } else {
    scores = ucbScores(current);
    target = greedyTargets(scores.map((score) => score.index));
  }
  const guarded = applyGuardRails(previousUnits, target, rails);
  const changed = guarded.units.some((units, index) => units !== previousUnits[index]);
  const boundBy = (['minShare', 'maxStep'] as const).filter((rail) => guarded.limitedBy.includes(rail));
  const summary = arms.map((arm, index) => `${arm.variant} ${format(guarded.previous[index] as number)}→${format(guarded.weights[index] as number)}`).join(', ');
  const basis = probabilities !== undefined
    ? `P(best) ${arms.map((arm, index) => `${arm.variant} ${format(probabilities[index] as number)}`).join(', ')}`
    : `UCB indices ${arms.map((arm, index) => `${arm.variant} ${(scores as UcbScore[])[index]?.index.toPrecision(6)}`).join(', ')}`;
  const limits = guarded.limitedBy.flatMap((rail, index) => (rail === null ? [] : [`${(arms[index] as { variant: string }).variant} held by ${rail}`]));
  const decision: AllocationDecision = {
    ...common,
    outcome: 'allocated',
    changed,
    reason: `${settings.strategy}: ${basis}; weights ${summary}${limits.length > 0 ? `; ${limits.join(', ')}` : ''}${guarded.repaired ? `; previous weights raised to the ${rails.minShare} floor first` : ''}`,
    ...(settings.strategy === 'thompson' ? { thompson: { seed: options.seed as number, draws: settings.draws, generator: 'xoshiro128**/splitmix64' as const } } : {}),
    ...(settings.strategy === 'ucb' ? { ucb: { exploration: settings.exploration, totalObservations: observations.reduce((sum, value) => sum + value, 0) } } : {}),
    boundBy,
    repairedPrevious: guarded.repaired,
    arms: arms.map((arm, index) => ({
      variant: arm.variant,
      observations: observations[index] as number,
      sufficient: true,
      statistics: statistics[index] as ArmDecision['statistics'],
      posterior: proper[index] as ArmPosterior,
      ...(probabilities === undefined ? {} : { probabilityBest: probabilities[index] as number }),
      ...(scores === undefined ? {} : { ucb: scores[index] as UcbScore }),
      target: target[index] as number,
      previousWeight: guarded.previous[index] as number,
      ...(guarded.repaired ? { repairedPreviousWeight: guarded.start[index] as number } : {}),
      weight: guarded.weights[index] as number,
      change: ((guarded.units[index] as number) - (previousUnits[index] as number)) / WEIGHT_UNITS,
      limitedBy: guarded.limitedBy[index] as GuardRail | null,
    })),
  };
  return { weights: toVariantWeights(arms, guarded.weights), state: withWeights(current, guarded.weights), decision };
}

function toVariantWeights(arms: readonly { variant: string }[], weights: readonly number[]): VariantWeight[] {
  return arms.map((arm, index) => ({ VariantName: arm.variant, DesiredWeight: weights[index] as number }));
}

function withWeights(state: BanditState, weights: readonly number[]): BanditState {
  return state.outcomeType === 'binary'
    ? { ...state, step: state.step + 1, arms: state.arms.map((arm, index) => ({ ...arm, weight: weights[index] as number })) }
    : { ...state, step: state.step + 1, arms: state.arms.map((arm, index) => ({ ...arm, weight: weights[index] as number })) };
}

// ---------------------------------------------------------------------------------------------
// Closed form for two Beta arms
// ---------------------------------------------------------------------------------------------

/**
 * P(X > Y) for X ~ Beta(x.alpha, x.beta), Y ~ Beta(y.alpha, y.beta), exactly, when one of the alphas is
 * a whole number (Evan Miller's finite sum, "Formulas for Bayesian A/B testing"):
 *   P(X > Y) = Σ_{i=0}^{αx-1} B(αy + i, βy + βx) / ((βx + i) B(1 + i, βx) B(αy, βy)).
 * Successive terms differ by the factor (αy + i)(βx + i) / ((αy + βy + βx + i)(1 + i)), so the sum is
 * formed in log space from the first term (logGamma from ./stats) without underflow. With αy whole
 * instead, 1 - P(Y > X). Cost: min(αx, αy) terms.
 */
export function probabilityBetaExceeds(x: { readonly alpha: number; readonly beta: number }, y: { readonly alpha: number; readonly beta: number }): number {
  for (const [field, value] of [['x.alpha', x.alpha], ['x.beta', x.beta], ['y.alpha', y.alpha], ['y.beta', y.beta]] as const) {
    if (typeof value !== 'number' || !Number.isFinite(value) || !(value > 0)) throw new StatsInputError(field, 'must be a finite number above 0', value);
  }
  const xWhole = Number.isSafeInteger(x.alpha);
  const yWhole = Number.isSafeInteger(y.alpha);
  if (xWhole && (!yWhole || x.alpha <= y.alpha)) return exceedsBySum(x, y);
  if (yWhole) return Math.min(1, Math.max(0, 1 - exceedsBySum(y, x)));
  throw new StatsInputError('x.alpha', 'or y.alpha must be a whole number (the exact formula sums over it)', x.alpha);
}

const logBeta = (a: number, b: number): number => logGamma(a) + logGamma(b) - logGamma(a + b);

function exceedsBySum(x: { readonly alpha: number; readonly beta: number }, y: { readonly alpha: number; readonly beta: number }): number {
  // First term: B(αy, βy + βx) / (βx · B(1, βx) · B(αy, βy)) = B(αy, βy + βx) / B(αy, βy).
  let logTerm = logBeta(y.alpha, y.beta + x.beta) - logBeta(y.alpha, y.beta);
  let max = logTerm;
  let scaled = 1; // Σ exp(logTerm - max)
  for (let i = 0; i < x.alpha - 1; i++) {
    logTerm += log(y.alpha + i) + log(x.beta + i) - log(y.alpha + y.beta + x.beta + i) - log(1 + i);
    if (logTerm > max) {
      scaled = scaled * exp(max - logTerm) + 1;
      max = logTerm;
    } else {
      scaled += exp(logTerm - max);
    }
  }
  return Math.min(1, Math.max(0, exp(max + log(scaled))));
}
