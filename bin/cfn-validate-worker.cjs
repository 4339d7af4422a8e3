// Worker thread of bin/background-validation.ts: runs aws-cdk-lib's own CloudFormationValidatePlugin
// (the built-in template validation) off the app's main thread.
//
// The validator is WebAssembly whose start-up (about 3 s on a 2-core machine) does not depend on the
// templates, so this worker pays it as soon as the app starts, while the main thread builds the stacks.
// It then waits for one request, { stackTemplates }, validates those templates with the same plugin,
// posts { report, version } (or { error }) on `port`, and wakes the main thread through `signal`:
// signal[1] = 1 once this thread is sure to answer, signal[0] = 1 when it has answered (2: it ended without).
'use strict';
const { workerData } = require('node:worker_threads');

const { port, signal } = workerData;
const flag = new Int32Array(signal);

let replied = false;
function reply(message) {
  replied = true;
  port.postMessage(message);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

// However this thread ends, the main thread must not wait for an answer that will never come: it finds
// no message and validates on its own.
process.on('exit', () => {
  if (!replied) {
    Atomics.store(flag, 0, 2);
    Atomics.notify(flag, 0);
  }
});
// From here on an answer (or the exit above) is certain: the main thread may wait for it.
Atomics.store(flag, 1, 1);
Atomics.notify(flag, 1);

const { CloudFormationValidatePlugin } = require('aws-cdk-lib');
const plugin = new CloudFormationValidatePlugin();

try {
  // Start-up: with no template the plugin still builds its engine, which is the slow part.
  plugin.validate({ templatePaths: [], stackTemplates: [] });
} catch {
  // Left to the real request, which reports the error.
}

port.once('message', ({ stackTemplates }) => {
  try {
    const report = plugin.validate({ templatePaths: stackTemplates.map((stack) => stack.templatePath), stackTemplates });
    reply({ report, version: plugin.version });
  } catch (error) {
    reply({ error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  }
});
