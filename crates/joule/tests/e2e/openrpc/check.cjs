// The OpenRPC project's own tools on Joule's `rpc.discover` document.
//
//   node check.cjs validate DOC.json
//     @open-rpc/schema-utils-js validates the document against the OpenRPC meta-schema and
//     dereferences it; then every method must have an example, and every example's params and
//     result must satisfy their schemas (ajv).
//
//   node check.cjs coverage DOC.json URL TOKEN [LIVE.json]
//     @open-rpc/test-coverage calls every method with its example params against the node at
//     URL (HTTP, and WebSocket for subscriptions) as the admin token TOKEN, and checks each
//     result against the example or the result schema. LIVE.json may replace the example
//     params of methods whose examples change state (a signed transaction, a signed login
//     challenge, a connected peer) with values valid on that node.
//
// Exits 0 when everything passes; prints one line per check either way.
"use strict";
const fs = require("fs");
const { validateOpenRPCDocument, parseOpenRPCDocument } = require("@open-rpc/schema-utils-js");
const Ajv = require("ajv");
const WebSocket = require("ws");

const [mode, file, url, token, live] = process.argv.slice(2);
const raw = JSON.parse(fs.readFileSync(file, "utf8"));

async function validate() {
  const verdict = validateOpenRPCDocument(raw);
  if (verdict !== true) {
    console.log("validator: FAIL", JSON.stringify(verdict, null, 1));
    process.exit(1);
  }
  console.log(`validator: ok (openrpc ${raw.openrpc}, ${raw.methods.length} methods)`);
  const document = await parseOpenRPCDocument(raw);
  const ajv = new Ajv();
  let failures = 0;
  for (const method of document.methods) {
    const examples = method.examples || [];
    if (examples.length === 0) {
      console.log(`${method.name}: FAIL no example`);
      failures++;
      continue;
    }
    for (const example of examples) {
      const problems = [];
      example.params.forEach((param, index) => {
        const schema = method.params[index].schema;
        if (!ajv.validate(schema, param.value)) problems.push(`param ${param.name}: ${ajv.errorsText()}`);
      });
      if (!ajv.validate(method.result.schema, example.result.value)) {
        problems.push(`result: ${ajv.errorsText()}`);
      }
      console.log(`${method.name}: ${problems.length === 0 ? "ok" : "FAIL " + problems.join("; ")}`);
      failures += problems.length === 0 ? 0 : 1;
    }
  }
  process.exit(failures === 0 ? 0 : 1);
}

/// Calls over HTTP with the admin token.
async function http(method, params) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  return response.json();
}

/// One WebSocket connection with the admin token: calls in order, answers by id.
function socket() {
  const ws = new WebSocket(url.replace(/^http/, "ws"), { headers: { authorization: `Bearer ${token}` } });
  const waiting = new Map();
  let next = 1;
  const opened = new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = (event) => reject(new Error(`websocket: ${event.message || "error"}`));
  });
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.id !== undefined && waiting.has(message.id)) {
      waiting.get(message.id)(message);
      waiting.delete(message.id);
    }
  };
  return {
    async call(method, params) {
      await opened;
      const id = next++;
      const answer = new Promise((resolve) => waiting.set(id, resolve));
      ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
      return answer;
    },
    close() { ws.close(); },
  };
}

async function coverage() {
  const testCoverage = require("@open-rpc/test-coverage").default;
  const ExamplesRule = require("@open-rpc/test-coverage/build/rules/examples-rule").default;
  const replacements = live ? JSON.parse(fs.readFileSync(live, "utf8")) : {};
  // Methods this node must refuse (the mining methods on a chain that is not proof of work):
  // their call counts only if it gets exactly the declared error code and reason.
  const refusals = replacements.refusals || {};
  delete replacements.refusals;
  for (const method of raw.methods) {
    const values = replacements[method.name];
    if (values) method.examples[0].params.forEach((param, index) => { param.value = values[index]; });
  }
  const document = await parseOpenRPCDocument(raw);
  document.servers = [{ name: "node", url }];
  const subscriptions = new Map();
  for (const method of document.methods) {
    const match = /Cancel with (\S+)\./.exec(method.summary);
    if (match) subscriptions.set(match[1], method);
  }
  const transport = async (_url, name, params) => {
    const subscribe = subscriptions.get(name);
    const isSubscription = [...subscriptions.values()].some((method) => method.name === name);
    let answer;
    if (subscribe || isSubscription) {
      const connection = socket();
      try {
        if (subscribe) {
          // Unsubscribing needs a subscription of this connection: open one first.
          const opened = await connection.call(subscribe.name, subscribe.examples[0].params.map((param) => param.value));
          answer = await connection.call(name, [opened.result]);
        } else {
          answer = await connection.call(name, params);
        }
      } finally {
        connection.close();
      }
    } else {
      answer = await http(name, params);
    }
    // test-coverage reads {result} or {error} from what the transport returns.
    return answer;
  };
  const results = [];
  const reporter = {
    onBegin() {},
    onTestBegin() {},
    onTestEnd(_options, call) { results.push(call); },
    onEnd() {},
  };
  await testCoverage({
    openrpcDocument: document,
    transport,
    reporters: [reporter],
    rules: [new ExamplesRule()],
    skip: [],
    only: [],
  });
  let failures = 0;
  for (const call of results) {
    const refusal = refusals[call.methodName];
    if (!call.valid && refusal && call.error && call.error.code === refusal.code
        && call.error.data && call.error.data.reason === refusal.reason) {
      call.valid = true;
      call.reason = undefined;
      console.log(`${call.methodName}: ok, refused as this node must: ${call.error.code} ${refusal.reason}`);
      continue;
    }
    const verdict = call.valid ? "ok" : `FAIL ${call.reason || JSON.stringify(call.error)}`;
    if (!call.valid) failures++;
    console.log(`${call.methodName}: ${verdict}`);
  }
  const methods = new Set(results.map((call) => call.methodName));
  const untested = document.methods.filter((method) => !methods.has(method.name)).map((method) => method.name);
  if (untested.length > 0) {
    console.log(`untested: FAIL ${untested.join(", ")}`);
    failures++;
  }
  console.log(`test-coverage summary: ${results.length - failures} of ${results.length} calls valid`);
  process.exit(failures === 0 ? 0 : 1);
}

(mode === "validate" ? validate() : coverage()).catch((error) => {
  console.log("error:", error && error.stack ? error.stack : error);
  process.exit(1);
});
