'use strict';
// A JSON-build client and a Protobuf-build client subscribe to the same channel; the test
// publishes once through the server API (cent) when both are subscribed. The JSON client must
// get the parsed JSON value, the Protobuf client the raw bytes (reported as hex).
// Usage: node protobuf_mixed.js --url WS --token-json JWT --token-pb JWT --channel CH
//        [--timeout MS]

const lib = require('./lib');
const pb = require('./protobuf_lib');

const args = lib.parseArgs(process.argv.slice(2));

lib.runScenario(async (result, clients) => {
  const url = lib.need(args, 'url');
  const channel = lib.need(args, 'channel');
  const jsonClient = lib.newClient(url, { token: lib.need(args, 'token-json') });
  const pbClient = pb.newClient(url, { token: lib.need(args, 'token-pb') });
  clients.push(jsonClient, pbClient);
  result.json = lib.recordClient(jsonClient, {});
  result.protobuf = lib.recordClient(pbClient, {});
  const jsonSub = jsonClient.newSubscription(channel);
  const pbSub = pbClient.newSubscription(channel);
  lib.recordSub(jsonSub, result.json);
  pb.recordSub(pbSub, result.protobuf);
  jsonSub.subscribe();
  pbSub.subscribe();
  jsonClient.connect();
  pbClient.connect();
  await jsonSub.ready(5000);
  await pbSub.ready(5000);
  const got = () => result.json.publications.length >= 1 && result.protobuf.publications.length >= 1;
  await lib.waitFor(got, 8000, 'the publication on both clients');
  await lib.sleep(200);
  result.jsonState = jsonClient.state;
  result.protobufState = pbClient.state;
}, { timeoutMs: Number(args.timeout || '12000') });
