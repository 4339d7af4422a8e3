// Loopback stand-ins of the services the invoke handler calls on its request path, for
// bench/request-path.cjs. Started in a child process of its own (`fork`), so that the CPU they spend is not
// counted in the process that runs the handler:
//
//   SageMaker Runtime  POST /endpoints/<name>/invocations (restJson): answers {"predictions":[{"score":S}]},
//                      S per production variant (SCORES, 0.7 otherwise), naming the variant it "invoked" in
//                      X-Amzn-Invoked-Production-Variant: the request's X-Amzn-SageMaker-Target-Variant, or
//                      AllTraffic (SageMaker's default variant name) when it names none.
//   DynamoDB           awsJson1_0 (X-Amz-Target DynamoDB_20120810.<Op>): GetItem and PutItem on an in-memory
//                      table (what lambda/invoke/cache-store.ts calls; condition expressions are not evaluated).
//   SSM                awsJson1_1 (X-Amz-Target AmazonSSM.<Op>): GetParameter, answered from the routes given
//                      at start (what lambda/shared/route-parameters.ts calls); ParameterNotFound otherwise.
//   control            GET /counts: what each stand-in was asked, so far (the bench attributes it to a scenario
//                      by reading it before and after the scenario's requests).
//
// Any other operation is answered with a 400 naming it and counted under `unsupported`, so that a handler
// that starts calling something new fails the bench's call-count checks instead of being timed half-served.
//
// Protocol with the parent: it sends { parameters: { <name>: <value> } } once; this process answers
// { endpoints: { sagemaker, dynamodb, ssm, control } } when the servers listen, and exits when the IPC
// channel closes.
'use strict';
const { createServer } = require('node:http');

/** Score each production variant answers with: the ensemble's members differ, their mean is 0.7. */
const SCORES = { blue: 0.6, green: 0.7, red: 0.8 };

const counts = {
  sagemaker: { total: 0, byEndpoint: {} },
  dynamodb: { GetItem: 0, PutItem: 0 },
  ssm: { GetParameter: 0 },
  unsupported: {},
};
const items = new Map();
let parameters = {};

function readBody(req, done) {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => done(Buffer.concat(chunks).toString('utf8')));
}

function send(res, status, headers, body) {
  res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body), 'x-amzn-requestid': 'stand-in' });
  res.end(body);
}

function unsupported(res, service, what, contentType) {
  counts.unsupported[`${service} ${what}`] = (counts.unsupported[`${service} ${what}`] ?? 0) + 1;
  send(res, 400, { 'content-type': contentType }, JSON.stringify({ __type: 'UnknownOperationException', message: `the bench stand-in does not serve ${service} ${what}` }));
}

const ENDPOINT_PATH = /^\/endpoints\/([^/]+)\/invocations$/;

function sagemaker(req, res) {
  readBody(req, () => {
    const match = req.method === 'POST' ? ENDPOINT_PATH.exec(new URL(req.url, 'http://stand-in').pathname) : null;
    if (match === null) {
      unsupported(res, 'sagemaker', `${req.method} ${req.url}`, 'application/json');
      return;
    }
    const endpoint = decodeURIComponent(match[1]);
    const variant = req.headers['x-amzn-sagemaker-target-variant'] ?? 'AllTraffic';
    counts.sagemaker.total += 1;
    const perEndpoint = (counts.sagemaker.byEndpoint[endpoint] ??= { total: 0, byVariant: {} });
    perEndpoint.total += 1;
    perEndpoint.byVariant[variant] = (perEndpoint.byVariant[variant] ?? 0) + 1;
    send(res, 200, { 'content-type': 'application/json', 'x-amzn-invoked-production-variant': variant }, JSON.stringify({ predictions: [{ score: SCORES[variant] ?? 0.7 }] }));
  });
}

function dynamodb(req, res) {
  const json = { 'content-type': 'application/x-amz-json-1.0' };
  readBody(req, (text) => {
    const operation = String(req.headers['x-amz-target'] ?? '').replace(/^DynamoDB_20120810\./, '');
    const input = text.length > 0 ? JSON.parse(text) : {};
    switch (operation) {
      case 'GetItem': {
        counts.dynamodb.GetItem += 1;
        const item = items.get(`${input.TableName}\n${input.Key?.pk?.S}`);
        send(res, 200, json, JSON.stringify(item === undefined ? {} : { Item: item }));
        return;
      }
      case 'PutItem':
        counts.dynamodb.PutItem += 1;
        items.set(`${input.TableName}\n${input.Item?.pk?.S}`, input.Item);
        send(res, 200, json, '{}');
        return;
      default:
        unsupported(res, 'dynamodb', operation || '(no X-Amz-Target)', json['content-type']);
    }
  });
}

function ssm(req, res) {
  const json = { 'content-type': 'application/x-amz-json-1.1' };
  readBody(req, (text) => {
    const operation = String(req.headers['x-amz-target'] ?? '').replace(/^AmazonSSM\./, '');
    if (operation !== 'GetParameter') {
      unsupported(res, 'ssm', operation || '(no X-Amz-Target)', json['content-type']);
      return;
    }
    counts.ssm.GetParameter += 1;
    const { Name: name } = JSON.parse(text);
    const value = parameters[name];
    if (value === undefined) {
      send(res, 400, json, JSON.stringify({ __type: 'ParameterNotFound', message: '' }));
      return;
    }
    send(res, 200, json, JSON.stringify({ Parameter: { Name: name, Type: 'String', Value: value, Version: 1, DataType: 'text' } }));
  });
}

function control(req, res) {
  readBody(req, () => {
    if (req.method === 'GET' && req.url === '/counts') {
      send(res, 200, { 'content-type': 'application/json' }, JSON.stringify(counts));
      return;
    }
    send(res, 404, { 'content-type': 'application/json' }, JSON.stringify({ error: `no ${req.method} ${req.url}` }));
  });
}

function listen(handler) {
  const server = createServer(handler);
  // The bench interleaves its scenarios: a client's kept-alive connection may idle for a while between its
  // blocks of requests, and must still be open when the next block starts (Node's default closes it after 5 s).
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`));
  });
}

process.once('message', async (message) => {
  parameters = message.parameters ?? {};
  const [sagemakerUrl, dynamodbUrl, ssmUrl, controlUrl] = await Promise.all([listen(sagemaker), listen(dynamodb), listen(ssm), listen(control)]);
  process.send({ endpoints: { sagemaker: sagemakerUrl, dynamodb: dynamodbUrl, ssm: ssmUrl, control: controlUrl } });
});
// The parent went away (or is done): so is this process.
process.on('disconnect', () => process.exit(0));
