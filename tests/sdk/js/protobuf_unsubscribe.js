'use strict';
// Protobuf build: subscribe, receive one publication made through the server API, unsubscribe,
// publish again and make sure nothing more arrives; also ask the API how many subscribers remain.
// Usage: node protobuf_unsubscribe.js --url WS --token JWT --channel CH --api URL --api-key KEY

const lib = require('./lib');
const pb = require('./protobuf_lib');

const args = lib.parseArgs(process.argv.slice(2));

lib.runScenario(async (result, clients) => {
  const apiUrl = lib.need(args, 'api');
  const apiKey = lib.need(args, 'api-key');
  const channel = lib.need(args, 'channel');
  const client = pb.newClient(lib.need(args, 'url'), { token: lib.need(args, 'token') });
  clients.push(client);
  lib.recordClient(client, result);
  const sub = client.newSubscription(channel);
  pb.recordSub(sub, result);
  sub.subscribe();
  client.connect();
  await sub.ready(5000);

  // lib.api sends JSON.stringify(body): the data travels as the compact text {"seq":1}.
  result.publishBefore = await lib.api(apiUrl, apiKey, 'publish', { channel, data: { seq: 1 } });
  await lib.waitFor(() => result.publications.length >= 1, 5000, 'the first publication');

  sub.unsubscribe();
  await lib.waitFor(() => result.unsubscribed.length >= 1, 3000, 'the unsubscribed event');
  await lib.sleep(300);
  result.channelsAfter = await lib.api(apiUrl, apiKey, 'channels', { pattern: channel });
  result.publishAfter = await lib.api(apiUrl, apiKey, 'publish', { channel, data: { seq: 2 } });
  await lib.sleep(700);
  result.subStateAfter = sub.state;
  result.clientStateAfter = client.state;
}, { timeoutMs: Number(args.timeout || '12000') });
