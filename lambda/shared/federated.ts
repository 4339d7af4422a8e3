// The aggregation math of federated learning (seed pattern 12, Federated Learning): a coordinator runs
// rounds; each client silo trains on its own data and returns a model update (a flat Float64 vector, the
// same length for every client) with the number of samples it trained on. This module holds the pure
// parts, with no AWS imports: validation of the client results, FedAvg, the robust aggregators
// (coordinate-wise median and trimmed mean), the differential-privacy step (clipping and Gaussian noise
// from a seedable generator), the per-round quorum and the convergence rule.
//
// Formulas (k = the number of clients that contribute to the round, see "participants"):
//   FedAvg             w_i = n_i / Σ_j n_j;  Δ = Σ_i w_i·u_i                 (McMahan et al. 2017)
//   median             Δ_c = median_i u_ic per coordinate c; for even k the mean of the two middle values
//   trimmed mean       t = ⌊β·k⌋, β ∈ [0, 0.5); per coordinate sort the k values, drop the t smallest and
//                      the t largest, Δ_c = mean of the k − 2t left                  (Yin et al. 2018)
//   clipping           ũ_i = u_i · min(1, C / ‖u_i‖₂)
//   DP-FedAvg          Δ = (1/k)·Σ_i ũ_i + N(0, s²·I) with s = σ·C / k             (McMahan et al. 2018)
//
// Participants: a client that reports 0 samples trained on nothing and contributes to no aggregate:
// FedAvg gives it weight 0, and the median, the trimmed mean and the DP mean leave it out (so k counts
// the clients with samples). Adding such a client changes no result. When every client reports 0
// samples there is nothing to aggregate, which is an error.
//
// The robust aggregators are unweighted: every participant counts once, whatever its sample count.
// They exist to bound what a few bad or malicious clients can do, and sample counts are self-reported:
// weighting the median by n_i would let a single client that claims a huge count decide it alone.
//
// References:
//   - McMahan, Moore, Ramage, Hampson, Agüera y Arcas, "Communication-Efficient Learning of Deep Networks
//     from Decentralized Data", AISTATS 2017 (FedAvg).
//   - Yin, Chen, Ramchandran, Bartlett, "Byzantine-Robust Distributed Learning: Towards Optimal
//     Statistical Rates", ICML 2018 (coordinate-wise median and trimmed mean).
//   - McMahan, Ramage, Talwar, Zhang, "Learning Differentially Private Recurrent Language Models",
//     ICLR 2018 (DP-FedAvg: per-client clipping, Gaussian noise σ·C on the sum).
//   - Blackman, Vigna, "Scrambled Linear Pseudorandom Number Generators", ACM TOMS 2021 (xoshiro128**;
//     seeded with SplitMix64 as the authors recommend). Box and Muller, Ann. Math. Statist. 1958.
//
// Reference values: test/fixtures/federated-reference.json, computed with numpy by
// test/fixtures/federated_reference.py.
import * as z from './zod';

// ---------------------------------------------------------------------------------------------------
// Errors and validation
// ---------------------------------------------------------------------------------------------------

/** One problem with the input: the field path (`clients[2].update[7]`) and what is wrong with it. */
export interface FederatedProblem {
  readonly path: string;
  readonly message: string;
}

/**
 * Bad input to an aggregator or a round function. Names every problem found, not only the first:
 * `clients[2].update[7]: must be a finite number; clients[3].clientId: repeats clients[0].clientId ('a')`.
 */
export class FederatedInputError extends Error {
  override readonly name = 'FederatedInputError';

  constructor(readonly problems: readonly FederatedProblem[]) {
    super(problems.map((problem) => `${problem.path}: ${problem.message}`).join('; '));
  }
}

/** `clients[2].update[7]` from a path of segments. */
function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') {
      text += `[${segment}]`;
    } else {
      text += text.length === 0 ? String(segment) : `.${String(segment)}`;
    }
  }
  return text.length === 0 ? '(root)' : text;
}

interface RawProblem {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

function problemsFromIssues(issues: readonly z.core.$ZodIssue[], root: readonly PropertyKey[]): RawProblem[] {
  return issues.flatMap((issue): RawProblem[] => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: [...root, ...issue.path, key], message: 'unknown field' }));
    }
    return [{ path: [...root, ...issue.path], message: issue.message }];
  });
}

const FIELD_ORDER = new Map<PropertyKey, number>(['clientId', 'sampleCount', 'update', 'metrics'].map((field, index) => [field, index]));

/**
 * Orders problems by the first three segments of their paths: the root (in order of first appearance),
 * the index (`clients[2]`) and a client's field (clientId, sampleCount, update, metrics). Ties keep the
 * order in which the problems were found, so a field's own problem comes before or after its values'
 * as found (a value count after the values it counts).
 */
function sortProblems(problems: readonly RawProblem[]): RawProblem[] {
  const roots = new Map<PropertyKey, number>();
  for (const problem of problems) if (problem.path.length > 0 && !roots.has(problem.path[0]!)) roots.set(problem.path[0]!, roots.size);
  const key = (path: readonly PropertyKey[]): number[] =>
    [0, 1, 2].map((i) => {
      if (i >= path.length) return -1;
      const segment = path[i]!;
      if (i === 0) return roots.get(segment)!;
      if (typeof segment === 'number') return segment;
      return i === 2 ? (FIELD_ORDER.get(segment) ?? FIELD_ORDER.size) : 0;
    });
  const keyed = problems.map((problem) => ({ problem, key: key(problem.path) }));
  keyed.sort((a, b) => a.key[0]! - b.key[0]! || a.key[1]! - b.key[1]! || a.key[2]! - b.key[2]!);
  return keyed.map(({ problem }) => problem);
}

function fail(problems: readonly RawProblem[]): never {
  throw new FederatedInputError(sortProblems(problems).map((problem) => ({ path: formatPath(problem.path), message: problem.message })));
}

const FINITE = 'must be a finite number';
const finiteNumber = z.number({ error: FINITE });
const wholeNumber = (minimum: number) => {
  const message = `must be a whole number ≥ ${minimum}`;
  return z.number({ error: message }).check(z.int(message), z.minimum(minimum, message));
};

/** At most this many bad values are named per update; the rest are counted. */
export const MAX_VALUE_PROBLEMS = 10;

/**
 * A vector of finite numbers, at least one. Checked in one loop rather than by an element schema: an
 * update can hold millions of values, and zod's per-element parse costs ~75 ns a value (0.8 s for ten
 * clients of a million), the loop a few.
 */
const UpdateSchema = z.custom<number[]>((value) => Array.isArray(value), { error: 'must be an array of finite numbers' }).check(
  z.superRefine((values: readonly unknown[], context) => {
    if (values.length === 0) context.addIssue({ code: 'custom', message: 'must hold at least one value', input: values });
    let bad = 0;
    for (let i = 0; i < values.length; i += 1) {
      const value = values[i];
      if (typeof value === 'number' && Number.isFinite(value)) continue;
      bad += 1;
      if (bad <= MAX_VALUE_PROBLEMS) context.addIssue({ code: 'custom', path: [i], message: FINITE, input: value });
    }
    if (bad > MAX_VALUE_PROBLEMS) {
      context.addIssue({ code: 'custom', message: `holds ${bad - MAX_VALUE_PROBLEMS} more values that are not finite numbers (the first ${MAX_VALUE_PROBLEMS} are named)`, input: values });
    }
  }),
);

/** A client's answer for one round. */
export interface ClientResult {
  /** Unique within the round. */
  readonly clientId: string;
  /** Number of training samples behind the update; 0 means the client contributes nothing. */
  readonly sampleCount: number;
  /** The model update (or the client's model): finite numbers, the same length for every client. */
  readonly update: readonly number[];
  /** The client's own evaluation metrics (loss, accuracy, ...), averaged by {@link aggregateMetrics}. */
  readonly metrics?: Readonly<Record<string, number>>;
}

export const ClientResultSchema = z.object(
  {
    clientId: z.string({ error: 'must be a non-empty string' }).check(z.minLength(1, 'must be a non-empty string'), z.maxLength(256, 'must be at most 256 characters')),
    sampleCount: wholeNumber(0),
    update: UpdateSchema,
    metrics: z.optional(z.record(z.string(), finiteNumber, { error: 'must be an object of finite numbers' })),
  },
  { error: 'must be an object with clientId, sampleCount and update' },
);

const ClientResultsSchema = z.array(ClientResultSchema, { error: 'must be an array of client results' });

function readField(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

/**
 * The checks across clients, run on the raw input so they are reported together with the per-field
 * problems (zod skips an array's refinements once an element has failed): duplicate ids, and updates
 * whose length differs from the most common length (ties go to the earliest).
 */
function crossClientProblems(value: unknown, root: readonly PropertyKey[]): RawProblem[] {
  if (!Array.isArray(value)) return [];
  const problems: RawProblem[] = [];
  const firstById = new Map<string, number>();
  value.forEach((client, index) => {
    const id = readField(client, 'clientId');
    if (typeof id !== 'string' || id.length === 0) return;
    const first = firstById.get(id);
    if (first === undefined) {
      firstById.set(id, index);
    } else {
      problems.push({ path: [...root, index, 'clientId'], message: `repeats ${formatPath([...root, first, 'clientId'])} ('${id}'): client ids must be unique` });
    }
  });
  const lengths = value.map((client) => {
    const update = readField(client, 'update');
    return Array.isArray(update) && update.length > 0 ? update.length : undefined;
  });
  const tally = new Map<number, { count: number; first: number }>();
  lengths.forEach((length, index) => {
    if (length === undefined) return;
    const entry = tally.get(length);
    if (entry === undefined) tally.set(length, { count: 1, first: index });
    else entry.count += 1;
  });
  let expected: { length: number; first: number; count: number } | undefined;
  for (const [length, entry] of tally) {
    if (expected === undefined || entry.count > expected.count || (entry.count === expected.count && entry.first < expected.first)) {
      expected = { length, ...entry };
    }
  }
  if (expected !== undefined && tally.size > 1) {
    const { length: want, first } = expected;
    lengths.forEach((length, index) => {
      if (length !== undefined && length !== want) {
        problems.push({ path: [...root, index, 'update'], message: `has ${length} values; ${formatPath([...root, first, 'update'])} has ${want}: every update must have the same length` });
      }
    });
  }
  return problems;
}

function clientResultProblems(value: unknown, root: readonly PropertyKey[], options: { allowEmpty: boolean }): { problems: RawProblem[]; clients: ClientResult[] } {
  const parsed = ClientResultsSchema.safeParse(value);
  const problems = parsed.success ? [] : problemsFromIssues(parsed.error.issues, root);
  problems.push(...crossClientProblems(value, root));
  if (!options.allowEmpty && Array.isArray(value) && value.length === 0) {
    problems.push({ path: root, message: 'must list at least one client' });
  }
  return { problems, clients: parsed.success ? parsed.data : [] };
}

/**
 * Validates client results (for example the outputs of a round's client tasks). Throws
 * {@link FederatedInputError} naming every problem with its path: missing or non-string ids, sample
 * counts that are not whole numbers ≥ 0, NaN or ±Infinity in an update, updates of different lengths,
 * duplicate ids. Unknown fields are dropped.
 */
export function parseClientResults(value: unknown, root = 'clients'): ClientResult[] {
  const { problems, clients } = clientResultProblems(value, [root], { allowEmpty: false });
  if (problems.length > 0) fail(problems);
  return clients;
}

/** The validated clients and the ones that contribute (sampleCount > 0). */
function participants(clients: readonly ClientResult[]): { all: readonly ClientResult[]; contributing: ClientResult[] } {
  const { problems } = clientResultProblems(clients, ['clients'], { allowEmpty: false });
  if (problems.length > 0) fail(problems);
  const contributing = clients.filter((client) => client.sampleCount > 0);
  if (contributing.length === 0) {
    fail([{ path: ['clients'], message: `every client reports sampleCount 0 (${clients.length} client${clients.length === 1 ? '' : 's'}): there are no samples to weight by, so nothing to aggregate` }]);
  }
  return { all: clients, contributing };
}

function dimension(clients: readonly ClientResult[]): number {
  return clients[0]!.update.length;
}

function checkParameter(path: string, schema: z.ZodMiniType, value: unknown): RawProblem[] {
  const parsed = schema.safeParse(value);
  return parsed.success ? [] : problemsFromIssues(parsed.error.issues, [path]);
}

const TrimFractionSchema = z.number({ error: 'must be a number in [0, 0.5)' }).check(z.minimum(0, 'must be a number in [0, 0.5)'), z.lt(0.5, 'must be a number in [0, 0.5)'));
const ClipNormSchema = z.number({ error: 'must be a finite number > 0' }).check(z.gt(0, 'must be a finite number > 0'));
const NoiseMultiplierSchema = z.number({ error: 'must be a finite number ≥ 0' }).check(z.minimum(0, 'must be a finite number ≥ 0'));

// ---------------------------------------------------------------------------------------------------
// FedAvg
// ---------------------------------------------------------------------------------------------------

/**
 * FedAvg weights, one per client in the order given: w_i = n_i / Σ_j n_j. A client with 0 samples gets
 * weight 0. The weights sum to 1 (to rounding). Throws when every client reports 0 samples.
 */
export function fedAvgWeights(clients: readonly ClientResult[]): number[] {
  participants(clients);
  return weightsOf(clients);
}

function weightsOf(clients: readonly ClientResult[]): number[] {
  const total = clients.reduce((sum, client) => sum + client.sampleCount, 0);
  return clients.map((client) => client.sampleCount / total);
}

/**
 * FedAvg: Σ_i w_i·u_i with w_i = n_i / Σ_j n_j, coordinate by coordinate. The same formula averages
 * client updates (apply the result with {@link applyUpdate}) or client models (the result is the model).
 */
export function fedAvg(clients: readonly ClientResult[]): number[] {
  const { contributing } = participants(clients);
  return weightedMean(contributing, weightsOf(contributing));
}

/**
 * Σ_i w_i·v_i, or (Σ_i v_i)/k without weights, per coordinate, clamped into [min_i v_ic, max_i v_ic]. The
 * exact mean lies in that interval (the weights are ≥ 0 and sum to 1), so the clamp only ever removes
 * rounding error; it also makes identical vectors average to themselves exactly.
 */
function meanOf(vectors: readonly (readonly number[])[], weights?: readonly number[]): number[] {
  const d = vectors[0]!.length;
  const sum = new Float64Array(d);
  const low = new Float64Array(d).fill(Infinity);
  const high = new Float64Array(d).fill(-Infinity);
  vectors.forEach((vector, i) => {
    const w = weights === undefined ? 1 : weights[i]!;
    for (let c = 0; c < d; c += 1) {
      const value = vector[c]!;
      sum[c]! += w * value;
      if (value < low[c]!) low[c] = value;
      if (value > high[c]!) high[c] = value;
    }
  });
  const k = weights === undefined ? vectors.length : 1;
  return Array.from(sum, (total, c) => Math.min(high[c]!, Math.max(low[c]!, total / k)));
}

function weightedMean(clients: readonly ClientResult[], weights: readonly number[]): number[] {
  return meanOf(clients.map((client) => client.update), weights);
}

/** global + η·update (η = serverLearningRate, 1 by default: plain FedAvg). */
export function applyUpdate(globalModel: readonly number[], update: readonly number[], serverLearningRate = 1): number[] {
  const problems = [
    ...checkParameter('globalModel', UpdateSchema, globalModel),
    ...checkParameter('update', UpdateSchema, update),
    ...checkParameter('serverLearningRate', z.number({ error: 'must be a finite number > 0' }).check(z.gt(0, 'must be a finite number > 0')), serverLearningRate),
  ];
  if (Array.isArray(globalModel) && Array.isArray(update) && globalModel.length !== update.length) {
    problems.push({ path: ['update'], message: `has ${update.length} values; globalModel has ${globalModel.length}` });
  }
  if (problems.length > 0) fail(problems);
  return globalModel.map((value, c) => value + serverLearningRate * update[c]!);
}

// ---------------------------------------------------------------------------------------------------
// Robust aggregators (unweighted)
// ---------------------------------------------------------------------------------------------------

/** Applies fn to each coordinate's values sorted ascending (one value per client). */
function perSortedCoordinate(clients: readonly ClientResult[], fn: (sorted: Float64Array) => number): number[] {
  const d = dimension(clients);
  const column = new Float64Array(clients.length);
  const result = new Array<number>(d);
  for (let c = 0; c < d; c += 1) {
    for (let i = 0; i < clients.length; i += 1) column[i] = clients[i]!.update[c]!;
    column.sort();
    result[c] = fn(column);
  }
  return result;
}

function middle(a: number, b: number): number {
  const mean = (a + b) / 2;
  return Number.isFinite(mean) ? mean : a / 2 + b / 2; // a + b overflows only near ±1.8e308
}

/**
 * Coordinate-wise median over the clients with samples, unweighted (see the module comment). For an
 * even number of clients, the mean of the two middle values (numpy's np.median).
 */
export function coordinateMedian(clients: readonly ClientResult[]): number[] {
  return medianOf(participants(clients).contributing);
}

function medianOf(contributing: readonly ClientResult[]): number[] {
  return perSortedCoordinate(contributing, (sorted) => {
    const k = sorted.length;
    return k % 2 === 1 ? sorted[(k - 1) / 2]! : middle(sorted[k / 2 - 1]!, sorted[k / 2]!);
  });
}

/** t = ⌊β·k⌋, computed as Math.floor(β·k) in floating point (as scipy.stats.trim_mean's int(β·k)). */
export function trimCount(trimFraction: number, clients: number): number {
  return Math.floor(trimFraction * clients);
}

/**
 * Coordinate-wise trimmed mean over the clients with samples, unweighted: per coordinate, drop the
 * t = ⌊β·k⌋ smallest and t largest values and average the k − 2t left (≥ 1, since β < 0.5). β = 0 is
 * the plain (unweighted) mean. Yin et al.'s β-trimmed mean.
 */
export function trimmedMean(clients: readonly ClientResult[], trimFraction: number): number[] {
  const problems = checkParameter('trimFraction', TrimFractionSchema, trimFraction);
  if (problems.length > 0) fail(problems);
  return trimmedOf(participants(clients).contributing, trimFraction);
}

function trimmedOf(contributing: readonly ClientResult[], trimFraction: number): number[] {
  const t = trimCount(trimFraction, contributing.length);
  return perSortedCoordinate(contributing, (sorted) => {
    let sum = 0;
    for (let i = t; i < sorted.length - t; i += 1) sum += sorted[i]!;
    // Clamped into the kept values' range, where the exact mean lies (see meanOf).
    return Math.min(sorted[sorted.length - t - 1]!, Math.max(sorted[t]!, sum / (sorted.length - 2 * t)));
  });
}

// ---------------------------------------------------------------------------------------------------
// Clipping
// ---------------------------------------------------------------------------------------------------

/** Euclidean norm, scaled by the largest magnitude first so it neither overflows nor underflows. */
export function l2Norm(vector: readonly number[]): number {
  let largest = 0;
  for (const value of vector) largest = Math.max(largest, Math.abs(value));
  if (largest === 0 || !Number.isFinite(largest)) return largest;
  let sum = 0;
  for (const value of vector) {
    const scaled = value / largest;
    sum += scaled * scaled;
  }
  return largest * Math.sqrt(sum);
}

/**
 * u · min(1, C/‖u‖₂): an update no longer than C is returned unchanged (a copy), a longer one is scaled
 * down to norm C (to rounding: the computed norm of the result may exceed C by an ulp or two).
 */
export function clipToNorm(update: readonly number[], clipNorm: number): number[] {
  const problems = [...checkParameter('update', UpdateSchema, update), ...checkParameter('clipNorm', ClipNormSchema, clipNorm)];
  if (problems.length > 0) fail(problems);
  return clip(update, clipNorm);
}

function clip(update: readonly number[], clipNorm: number): number[] {
  const norm = l2Norm(update);
  if (norm <= clipNorm) return [...update];
  const factor = clipNorm / norm;
  const clipped: number[] = [];
  for (let c = 0; c < update.length; c += 1) clipped.push(update[c]! * factor);
  return clipped;
}

// ---------------------------------------------------------------------------------------------------
// Seeded random source and Gaussian noise
// ---------------------------------------------------------------------------------------------------

/** A source of uniformly distributed 32-bit unsigned integers. `name` is recorded with DP results. */
export interface RandomSource {
  readonly name: string;
  nextUint32(): number;
}

const MASK64 = (1n << 64n) - 1n;

/** One step of SplitMix64 (Steele, Lea, Flood 2014; https://prng.di.unimi.it/splitmix64.c). */
export function splitMix64(state: bigint): { state: bigint; value: bigint } {
  const next = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let value = next;
  value = ((value ^ (value >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  value = ((value ^ (value >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return { state: next, value: value ^ (value >> 31n) };
}

/** xoshiro128** state for a seed: two SplitMix64 outputs, each split into its low and high 32 bits. */
export function seedState(seed: number): [number, number, number, number] {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new FederatedInputError([{ path: 'seed', message: `must be a whole number between 0 and ${Number.MAX_SAFE_INTEGER}; got ${String(seed)}` }]);
  }
  const a = splitMix64(BigInt(seed));
  const b = splitMix64(a.state);
  const words = [a.value & 0xffffffffn, a.value >> 32n, b.value & 0xffffffffn, b.value >> 32n].map(Number) as [number, number, number, number];
  // xoshiro's one forbidden state; SplitMix64 cannot give two zero outputs in a row, but say so if it did.
  if (words.every((word) => word === 0)) throw new Error('seedState: the all-zero state is not a valid xoshiro128** state');
  return words;
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

/** xoshiro128** (https://prng.di.unimi.it/xoshiro128starstar.c) from an explicit 128-bit state. */
export function xoshiro128StarStar(state: readonly [number, number, number, number], name = 'xoshiro128**'): RandomSource {
  let [s0, s1, s2, s3] = state.map((word) => word | 0) as [number, number, number, number];
  return {
    name,
    nextUint32(): number {
      const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl(s3, 11);
      return result;
    },
  };
}

/**
 * A deterministic generator for a seed (a whole number 0 … 2^53 − 1): xoshiro128** seeded by SplitMix64.
 * Same seed, same sequence: for tests and for replaying a round. Not cryptographic: for noise that has to
 * protect anyone, use {@link cryptoRandom} and keep no seed (whoever knows the seed can subtract the noise).
 */
export function seededRandom(seed: number): RandomSource {
  return xoshiro128StarStar(seedState(seed), 'xoshiro128** (seeded with SplitMix64)');
}

/** The platform's cryptographic generator (crypto.getRandomValues, global in Node 20 and later). */
export function cryptoRandom(): RandomSource {
  const buffer = new Uint32Array(256);
  let next = buffer.length;
  return {
    name: 'crypto.getRandomValues',
    nextUint32(): number {
      if (next === buffer.length) {
        globalThis.crypto.getRandomValues(buffer);
        next = 0;
      }
      return buffer[next++]!;
    },
  };
}

/** A uniform double in [0, 1) from 53 random bits (two draws: 27 + 26 bits, as genrand_res53). */
export function nextUniform(random: RandomSource): number {
  const a = random.nextUint32() >>> 5;
  const b = random.nextUint32() >>> 6;
  return (a * 67108864 + b) / 9007199254740992;
}

/**
 * `length` independent N(0, standardDeviation²) values by the Box–Muller transform: each pair of
 * uniforms u₁ = 1 − U ∈ (0, 1], u₂ = U' ∈ [0, 1) gives r·cos(2πu₂) and r·sin(2πu₂), r = √(−2 ln u₁), in
 * that order; an odd length drops the last sine. Floating-point sampling like this is fine for
 * reproducible experiments but is not a hardened DP sampler (see Mironov, CCS 2012, on the
 * floating-point attacks): for a formal guarantee, use a vetted library's discrete Gaussian.
 */
export function gaussianNoise(random: RandomSource, length: number, standardDeviation: number): number[] {
  const problems = [...checkParameter('length', wholeNumber(0), length), ...checkParameter('standardDeviation', NoiseMultiplierSchema, standardDeviation)];
  if (problems.length > 0) fail(problems);
  const values: number[] = [];
  for (let i = 0; i < length; i += 2) {
    const u1 = 1 - nextUniform(random);
    const u2 = nextUniform(random);
    const r = Math.sqrt(-2 * Math.log(u1));
    values.push(standardDeviation * r * Math.cos(2 * Math.PI * u2));
    if (i + 1 < length) values.push(standardDeviation * r * Math.sin(2 * Math.PI * u2));
  }
  return values;
}

// ---------------------------------------------------------------------------------------------------
// Differential privacy
// ---------------------------------------------------------------------------------------------------

export interface PrivacyOptions {
  /** C: each client's update is scaled down to L2 norm ≤ C. */
  readonly clipNorm: number;
  /** σ: the noise's standard deviation is σ·C on the sum of clipped updates, σ·C/k on their mean. 0 = no noise. */
  readonly noiseMultiplier: number;
}

/** The privacy parameters of a round, kept with its result so the run's privacy can be accounted for. */
export interface PrivacyRecord {
  readonly mechanism: 'gaussian';
  /** σ. */
  readonly noiseMultiplier: number;
  /** C. */
  readonly clipNorm: number;
  /** k: the clients whose clipped updates were averaged. */
  readonly clients: number;
  /** σ·C/k, the standard deviation of the noise added to each coordinate of the mean. */
  readonly noiseStandardDeviation: number;
  /** Always 'uniform': under DP every client weighs 1/k whatever its sample count (see dpFedAvg). */
  readonly weighting: 'uniform';
  /** The random source's name (never its seed). */
  readonly randomSource: string;
}

export interface DpAggregate {
  readonly update: number[];
  readonly privacy: PrivacyRecord;
}

/**
 * DP-FedAvg (McMahan et al. 2018) for one round, over the k clients with samples:
 *
 *   ũ_i = u_i · min(1, C/‖u_i‖₂)            clip each update to L2 norm C
 *   Δ   = (1/k)·Σ_i ũ_i + N(0, s²·I),  s = σ·C/k
 *
 * With σ = 0 no random number is drawn and Δ is exactly the mean of the clipped updates.
 *
 * Why uniform weights (1/k) and not the FedAvg weights n_i/Σn. The Gaussian mechanism's noise has to
 * cover the most that one client can move the released value (its L2 sensitivity). With every update
 * clipped to C and uniform weights, adding or removing one client moves the sum Σ ũ_i by at most C,
 * hence the mean by C/k with k held fixed and public (McMahan et al. divide by a fixed expected count
 * for the same reason), so noise σ·C on the sum is σ·C/k on the mean: σ is the noise multiplier that
 * privacy accountants take. Under replace-one adjacency the sensitivity is 2C/k; σ here is relative to
 * add/remove. With sample-count weights the bound would be max_i w_i·C only if the counts were fixed
 * and public, but they are the clients' own data (self-reported, private): removing a client rescales
 * every other client's weight, so max_i w_i·C does not bound the change, and the noise would follow
 * the largest client's share (max w_i can be close to 1, i.e. noise ≈ σ·C, up to k times the uniform
 * noise). McMahan et al.'s weighted variant needs capped weights over a fixed normaliser; that is not
 * what this module does. So DP on means uniform weights, and the record says so.
 *
 * The result keeps σ, C, k and the noise standard deviation (not the seed, nor how many updates were
 * clipped: that count is itself data-dependent and unprotected). The module does no accounting of
 * (ε, δ) over rounds; that needs σ, the client sampling rate and the number of rounds.
 */
export function dpFedAvg(clients: readonly ClientResult[], privacy: PrivacyOptions, random: RandomSource): DpAggregate {
  checkPrivacy(privacy, random);
  const { contributing } = participants(clients);
  return dpMean(contributing, privacy, random);
}

function checkPrivacy(privacy: PrivacyOptions, random: RandomSource | undefined, root = 'privacy'): void {
  const problems = [
    ...checkParameter(`${root}.clipNorm`, ClipNormSchema, readField(privacy, 'clipNorm')),
    ...checkParameter(`${root}.noiseMultiplier`, NoiseMultiplierSchema, readField(privacy, 'noiseMultiplier')),
  ];
  if (typeof readField(random, 'nextUint32') !== 'function') {
    problems.push({ path: ['random'], message: 'must be a random source ({ name, nextUint32() }): noise needs one when privacy is on' });
  }
  if (problems.length > 0) fail(problems);
}

function dpMean(contributing: readonly ClientResult[], privacy: PrivacyOptions, random: RandomSource): DpAggregate {
  const { clipNorm, noiseMultiplier } = privacy;
  const k = contributing.length;
  const mean = meanOf(contributing.map((client) => clip(client.update, clipNorm)));
  const noiseStandardDeviation = (noiseMultiplier * clipNorm) / k;
  const update = noiseStandardDeviation === 0 ? mean : gaussianNoise(random, mean.length, noiseStandardDeviation).map((noise, c) => mean[c]! + noise);
  return {
    update,
    privacy: { mechanism: 'gaussian', noiseMultiplier, clipNorm, clients: k, noiseStandardDeviation, weighting: 'uniform', randomSource: random.name },
  };
}

// ---------------------------------------------------------------------------------------------------
// One aggregation, as configured
// ---------------------------------------------------------------------------------------------------

export const AGGREGATORS = ['fedavg', 'median', 'trimmed-mean'] as const;
export type AggregatorKind = (typeof AGGREGATORS)[number];

/** How a round aggregates, as a coordinator's configuration holds it (JSON-serialisable). */
export const AggregationSpecSchema = z.strictObject({
  aggregator: z.enum(AGGREGATORS, { error: () => `must be one of ${AGGREGATORS.join(', ')}` }),
  /** β, for 'trimmed-mean' only. */
  trimFraction: z.optional(TrimFractionSchema),
  /** DP-FedAvg; with 'fedavg' only. */
  privacy: z.optional(z.strictObject({ clipNorm: ClipNormSchema, noiseMultiplier: NoiseMultiplierSchema }, { error: 'must be an object with clipNorm and noiseMultiplier' })),
});
export type AggregationSpec = z.output<typeof AggregationSpecSchema>;

export interface AggregationResult {
  readonly aggregator: AggregatorKind;
  /** The aggregated update (or model). */
  readonly update: number[];
  /** The clients that contributed, in input order (sampleCount > 0). */
  readonly clientIds: readonly string[];
  /** Clients left out because they reported 0 samples. */
  readonly ignoredClientIds: readonly string[];
  /** Weight of each contributing client (same order as clientIds): n_i/Σn for FedAvg, 1/k under DP; absent for the robust aggregators. */
  readonly weights?: readonly number[];
  /** β and t = ⌊β·k⌋, for the trimmed mean. */
  readonly trim?: { readonly trimFraction: number; readonly trimmed: number };
  readonly privacy?: PrivacyRecord;
}

/** Validates a spec (every problem at once, with its path). */
export function parseAggregationSpec(value: unknown): AggregationSpec {
  const parsed = AggregationSpecSchema.safeParse(value);
  const problems = parsed.success ? [] : problemsFromIssues(parsed.error.issues, []);
  const aggregator = readField(value, 'aggregator');
  if (aggregator === 'trimmed-mean' && readField(value, 'trimFraction') === undefined) {
    problems.push({ path: ['trimFraction'], message: "is required with the 'trimmed-mean' aggregator" });
  }
  if (aggregator !== 'trimmed-mean' && readField(value, 'trimFraction') !== undefined) {
    problems.push({ path: ['trimFraction'], message: "is only used by the 'trimmed-mean' aggregator" });
  }
  if ((aggregator === 'median' || aggregator === 'trimmed-mean') && readField(value, 'privacy') !== undefined) {
    problems.push({
      path: ['privacy'],
      message: "is only available with the 'fedavg' aggregator: the noise σ·C/k is calibrated to the mean of clipped updates, and a median or trimmed mean has another sensitivity",
    });
  }
  if (problems.length > 0) fail(problems);
  return parsed.data!;
}

/**
 * One round's aggregation by a spec. `random` is required when the spec has privacy (DP-FedAvg, uniform
 * weights, see {@link dpFedAvg}). Every result says which clients took part and how.
 */
export function aggregate(clients: readonly ClientResult[], spec: AggregationSpec, random?: RandomSource): AggregationResult {
  const checked = parseAggregationSpec(spec);
  if (checked.privacy !== undefined) checkPrivacy(checked.privacy, random, 'privacy');
  const { all, contributing } = participants(clients);
  const clientIds = contributing.map((client) => client.clientId);
  const ignoredClientIds = all.filter((client) => client.sampleCount === 0).map((client) => client.clientId);
  const base = { aggregator: checked.aggregator, clientIds, ignoredClientIds };
  switch (checked.aggregator) {
    case 'fedavg': {
      if (checked.privacy !== undefined) {
        const { update, privacy } = dpMean(contributing, checked.privacy, random!);
        return { ...base, update, weights: contributing.map(() => 1 / contributing.length), privacy };
      }
      const weights = weightsOf(contributing);
      return { ...base, update: weightedMean(contributing, weights), weights };
    }
    case 'median':
      return { ...base, update: medianOf(contributing) };
    case 'trimmed-mean': {
      const trimFraction = checked.trimFraction!;
      return { ...base, update: trimmedOf(contributing, trimFraction), trim: { trimFraction, trimmed: trimCount(trimFraction, contributing.length) } };
    }
  }
}

/** Per metric, the sample-weighted mean Σ n_i·m_i / Σ n_i over the clients with samples that report it. */
export function aggregateMetrics(clients: readonly ClientResult[]): Record<string, { readonly mean: number; readonly clients: number; readonly samples: number }> {
  const { contributing } = participants(clients);
  const totals = new Map<string, { weighted: number; clients: number; samples: number }>();
  for (const client of contributing) {
    for (const [name, value] of Object.entries(client.metrics ?? {})) {
      const total = totals.get(name) ?? { weighted: 0, clients: 0, samples: 0 };
      total.weighted += client.sampleCount * value;
      total.clients += 1;
      total.samples += client.sampleCount;
      totals.set(name, total);
    }
  }
  return Object.fromEntries(
    [...totals].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, total]) => [name, { mean: total.weighted / total.samples, clients: total.clients, samples: total.samples }]),
  );
}

// ---------------------------------------------------------------------------------------------------
// Rounds
// ---------------------------------------------------------------------------------------------------

/** A client task that did not return a usable result. */
export interface ClientFailure {
  readonly clientId: string;
  readonly reason: string;
}

export interface RoundOutcome {
  /** The round's number, from 1. */
  readonly round: number;
  /** The fewest contributing clients (results with sampleCount > 0) the round can be aggregated from. */
  readonly minClients: number;
  /** The results that came back. */
  readonly results: readonly ClientResult[];
  /** The client tasks that failed, with why. */
  readonly failures?: readonly ClientFailure[];
  /** The clients asked to train this round: any with neither a result nor a failure is reported as 'no result returned'. */
  readonly selected?: readonly string[];
}

export interface RoundQuorum {
  readonly round: number;
  /** The results to aggregate: those with samples. */
  readonly contributing: ClientResult[];
  /** Every selected client that did not contribute, with why (failed, no result, 0 samples), for the round's log. */
  readonly failed: ClientFailure[];
}

/** Fewer clients contributed than the round needs. The message lists the clients that did not, and why. */
export class RoundFailedError extends Error {
  override readonly name = 'RoundFailedError';

  constructor(
    readonly round: number,
    readonly minClients: number,
    readonly contributing: readonly string[],
    readonly failed: readonly ClientFailure[],
  ) {
    const list = failed.length === 0 ? 'none' : failed.map((failure) => `${failure.clientId} (${failure.reason})`).join(', ');
    super(
      `round ${round}: ${contributing.length} client${contributing.length === 1 ? '' : 's'} contributed, fewer than the ${minClients} required` +
        `${contributing.length > 0 ? ` (${contributing.join(', ')})` : ''}; failed: ${list}`,
    );
  }
}

const ClientFailureSchema = z.object(
  {
    clientId: z.string({ error: 'must be a non-empty string' }).check(z.minLength(1, 'must be a non-empty string')),
    reason: z.string({ error: 'must be a string' }),
  },
  { error: 'must be an object with clientId and reason' },
);

/**
 * Checks that a round has enough contributing clients (results with sampleCount > 0) and returns them,
 * with the clients that did not contribute. Throws {@link RoundFailedError} listing those when fewer
 * than minClients contributed, and {@link FederatedInputError} for inconsistent input (a client both
 * failed and succeeded, a result from a client not selected, duplicates, bad results).
 */
export function checkRoundQuorum(outcome: RoundOutcome): RoundQuorum {
  const problems: RawProblem[] = [
    ...checkParameter('round', wholeNumber(1), readField(outcome, 'round')),
    ...checkParameter('minClients', wholeNumber(1), readField(outcome, 'minClients')),
  ];
  const rawResults = readField(outcome, 'results');
  const { problems: resultProblems } = clientResultProblems(rawResults, ['results'], { allowEmpty: true });
  problems.push(...resultProblems);
  const rawFailures = readField(outcome, 'failures') ?? [];
  problems.push(...checkParameter('failures', z.array(ClientFailureSchema, { error: 'must be an array of { clientId, reason }' }), rawFailures));
  const rawSelected = readField(outcome, 'selected');
  if (rawSelected !== undefined) {
    problems.push(...checkParameter('selected', z.array(z.string({ error: 'must be a non-empty string' }).check(z.minLength(1, 'must be a non-empty string')), { error: 'must be an array of client ids' }), rawSelected));
  }
  const idsOf = (value: unknown): (string | undefined)[] => (Array.isArray(value) ? value.map((item) => (typeof readField(item, 'clientId') === 'string' ? (readField(item, 'clientId') as string) : undefined)) : []);
  const resultIds = idsOf(rawResults);
  const failureIds = idsOf(rawFailures);
  const seenFailures = new Map<string, number>();
  failureIds.forEach((id, index) => {
    if (id === undefined) return;
    const result = resultIds.indexOf(id);
    if (result >= 0) problems.push({ path: ['failures', index, 'clientId'], message: `'${id}' also has a result (results[${result}])` });
    const earlier = seenFailures.get(id);
    if (earlier !== undefined) problems.push({ path: ['failures', index, 'clientId'], message: `repeats failures[${earlier}].clientId ('${id}')` });
    else seenFailures.set(id, index);
  });
  if (Array.isArray(rawSelected)) {
    const selected = new Set<unknown>();
    rawSelected.forEach((id, index) => {
      if (selected.has(id)) problems.push({ path: ['selected', index], message: `repeats '${String(id)}'` });
      selected.add(id);
    });
    const round = readField(outcome, 'round');
    const notSelected = (list: string, ids: (string | undefined)[]): void =>
      ids.forEach((id, index) => {
        if (id !== undefined && !selected.has(id)) problems.push({ path: [list, index, 'clientId'], message: `'${id}' was not selected for round ${String(round)}` });
      });
    notSelected('results', resultIds);
    notSelected('failures', failureIds);
  }
  if (problems.length > 0) fail(problems);

  const results = outcome.results;
  const contributing = results.filter((result) => result.sampleCount > 0);
  const failed: ClientFailure[] = [
    ...(outcome.failures ?? []).map((failure) => ({ clientId: failure.clientId, reason: failure.reason })),
    ...results.filter((result) => result.sampleCount === 0).map((result) => ({ clientId: result.clientId, reason: 'reported 0 samples: nothing to aggregate' })),
  ];
  const answered = new Set([...resultIds, ...failureIds]);
  for (const id of outcome.selected ?? []) {
    if (!answered.has(id)) failed.push({ clientId: id, reason: 'no result returned' });
  }
  if (contributing.length < outcome.minClients) {
    throw new RoundFailedError(outcome.round, outcome.minClients, contributing.map((result) => result.clientId), failed);
  }
  return { round: outcome.round, contributing, failed };
}

// ---------------------------------------------------------------------------------------------------
// Convergence
// ---------------------------------------------------------------------------------------------------

export type MetricDirection = 'higher-is-better' | 'lower-is-better';

export const ConvergenceOptionsSchema = z.strictObject({
  /** Stop once this many rounds have completed. */
  maxRounds: wholeNumber(1),
  /** Whether a larger global metric is better (accuracy) or a smaller one (loss). */
  direction: z.enum(['higher-is-better', 'lower-is-better'], { error: 'must be higher-is-better or lower-is-better' }),
  /** Stop after this many rounds in a row without an improvement; absent: only maxRounds stops. */
  patience: z.optional(wholeNumber(1)),
  /** The smallest gain over the best value so far that counts as an improvement (default 0). */
  minDelta: z.optional(z.number({ error: 'must be a finite number ≥ 0' }).check(z.minimum(0, 'must be a finite number ≥ 0'))),
});
export type ConvergenceOptions = z.output<typeof ConvergenceOptionsSchema>;

export interface ConvergenceDecision {
  readonly stop: boolean;
  /** Why it stops: the round limit (checked first), or no improvement for `patience` rounds. */
  readonly reason?: 'max-rounds' | 'no-improvement';
  readonly roundsCompleted: number;
  /** Round (from 1) of the best metric so far, and its value. */
  readonly bestRound?: number;
  readonly bestValue?: number;
  /** Rounds since the best one (0 when the latest round is the best). */
  readonly roundsWithoutImprovement: number;
}

/**
 * Whether to stop, given the global metric after each completed round (oldest first). A round improves
 * on the best value so far when its gain (value − best for higher-is-better, best − value for
 * lower-is-better) is positive and at least minDelta, in floating point; the best value moves only on
 * an improvement, so small gains that never reach minDelta one by one do not reset the count (as
 * Keras's EarlyStopping). The first round sets the best. Stops when roundsCompleted ≥ maxRounds, or
 * when the last `patience` rounds brought no improvement.
 */
export function decideConvergence(history: readonly number[], options: ConvergenceOptions): ConvergenceDecision {
  const parsed = ConvergenceOptionsSchema.safeParse(options);
  const problems = [...checkParameter('history', z.array(finiteNumber, { error: 'must be an array of finite numbers' }), history), ...(parsed.success ? [] : problemsFromIssues(parsed.error.issues, ['options']))];
  if (problems.length > 0) fail(problems);
  const { maxRounds, direction, patience, minDelta = 0 } = parsed.data!;
  let bestRound: number | undefined;
  let bestValue: number | undefined;
  history.forEach((value, index) => {
    const gain = bestValue === undefined ? Infinity : direction === 'higher-is-better' ? value - bestValue : bestValue - value;
    if (gain > 0 && gain >= minDelta) {
      bestRound = index + 1;
      bestValue = value;
    }
  });
  const roundsCompleted = history.length;
  const roundsWithoutImprovement = bestRound === undefined ? 0 : roundsCompleted - bestRound;
  const common = { roundsCompleted, roundsWithoutImprovement, ...(bestRound === undefined ? {} : { bestRound, bestValue: bestValue! }) };
  if (roundsCompleted >= maxRounds) return { stop: true, reason: 'max-rounds', ...common };
  if (patience !== undefined && bestRound !== undefined && roundsWithoutImprovement >= patience) return { stop: true, reason: 'no-improvement', ...common };
  return { stop: false, ...common };
}
