// aws-cdk-lib's built-in CloudFormation template validation, run on a worker thread that starts with the
// app. The blueprint's synth is CPU-bound and single-threaded; the validator's start-up alone is about a
// third of a prod synth and does not depend on the templates, so it overlaps with building the stacks on
// a second core. What is validated, with which rules and how findings are reported is unchanged: this
// is a CloudFormationValidatePlugin (registering one replaces aws-cdk-lib's default instance), the worker
// runs the same class over the same template files, and anything that goes wrong with the worker falls
// back to validating on the main thread. CDK_VALIDATION=false turns it off, as it does the default.
import { join } from 'node:path';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { CloudFormationValidatePlugin, type IPolicyValidationContext, type PolicyValidationPluginReport } from 'aws-cdk-lib';

/** Longest wait for the worker's report before validating on the main thread instead. */
const WORKER_TIMEOUT_MS = 10 * 60 * 1000;

/** Longest wait for a worker that has not even started (a worker that has started always answers). */
const DEFAULT_START_TIMEOUT_MS = 20_000;

/** For tests: a worker script that fails, and how long to wait for one that never starts. */
export interface BackgroundValidationOptions {
  readonly workerScript?: string;
  readonly startTimeoutMs?: number;
}

type WorkerReport = { readonly report: PolicyValidationPluginReport; readonly version: string };

// One worker: two were measured slower on a 2-core machine (the second engine's start-up competes with the
// main thread building the stacks, and sharing out the templates saves less than that).
export class BackgroundCloudFormationValidation extends CloudFormationValidatePlugin {
  /**
   * The plugin to register on an app, its worker started; undefined when CDK_VALIDATION=false turns
   * template validation off.
   */
  public static start(options: BackgroundValidationOptions = {}): BackgroundCloudFormationValidation | undefined {
    return process.env.CDK_VALIDATION === 'false' ? undefined : new BackgroundCloudFormationValidation(options);
  }

  private worker?: Worker;
  private port?: MessagePort;
  private readonly signal = new Int32Array(new SharedArrayBuffer(8));
  private readonly startTimeoutMs: number;
  private workerVersion?: string;

  private constructor(options: BackgroundValidationOptions) {
    super();
    this.startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    const workerScript = options.workerScript ?? join(__dirname, 'cfn-validate-worker.cjs');
    try {
      const { port1, port2 } = new MessageChannel();
      // Plain JavaScript, so the worker needs no TypeScript loader; execArgv: [] keeps the app's loader (-r) out of it.
      this.worker = new Worker(workerScript, { workerData: { port: port2, signal: this.signal.buffer }, transferList: [port2], execArgv: [] });
      // Never keeps the process alive; whatever happens to it, validation falls back to the main thread.
      this.worker.unref();
      this.worker.on('error', () => undefined);
      this.port = port1;
    } catch {
      this.stopWorker();
    }
  }

  public override get version(): string | undefined {
    return this.workerVersion ?? super.version;
  }

  public override validate(context: IPolicyValidationContext): PolicyValidationPluginReport {
    const answer = this.askWorker(context);
    if (answer !== undefined && 'report' in answer) {
      this.workerVersion = (answer as WorkerReport).version;
      return (answer as WorkerReport).report;
    }
    if (this.started !== undefined) {
      const error = !this.started ? 'it did not start' : answer !== undefined && 'error' in answer ? String(answer.error) : 'it ended without an answer';
      process.emitWarning(`template validation worker failed (${error}); validating on the main thread`);
    }
    return super.validate(context);
  }

  /** Whether the worker had started when it was asked; undefined until then. */
  private started?: boolean;

  /** The worker's answer: a report, an error, or undefined when it was not there to ask or ended without one. */
  private askWorker(context: IPolicyValidationContext): WorkerReport | { readonly error: unknown } | undefined {
    const { worker, port, signal } = this;
    if (worker === undefined || port === undefined) return undefined;
    try {
      // Plain data only: the paths and environments of the stacks' templates.
      const stackTemplates = context.stackTemplates.map(({ stackConstructPath, templatePath, accountId, region }) => ({ stackConstructPath, templatePath, accountId, region }));
      // Synth is synchronous, so the main thread blocks: first until the worker is sure to answer (a
      // worker that failed to load never is), then until it has.
      Atomics.wait(signal, 1, 0, this.startTimeoutMs);
      this.started = Atomics.load(signal, 1) === 1;
      if (!this.started) return undefined;
      port.postMessage({ stackTemplates });
      Atomics.wait(signal, 0, 0, WORKER_TIMEOUT_MS);
      return receiveMessageOnPort(port)?.message as WorkerReport | { readonly error: unknown } | undefined;
    } catch {
      return undefined;
    } finally {
      this.stopWorker();
    }
  }

  private stopWorker(): void {
    void this.worker?.terminate();
    this.port?.close();
    this.worker = undefined;
    this.port = undefined;
  }
}
