'use strict';
// Protobuf build: connect with a JWT, subscribe and collect publications (as hex) until
// `--count` arrived; also report the subprotocols asked for and the one the server chose.
// The test publishes through the server API (cent) once the channel has a subscriber.
// Usage: node protobuf_pubsub.js --url WS --token JWT --channel CH [--count N] [--timeout MS]

const lib = require('./lib');
const pb = require('./protobuf_lib');

const args = lib.parseArgs(process.argv.slice(2));
const count = Number(args.count || '1');

lib.runScenario(async (result, clients) => {
  result.ws = {};
  const client = pb.newClient(lib.need(args, 'url'), {
    token: lib.need(args, 'token'),
    websocket: pb.protocolWebSocket(result.ws),
  });
  clients.push(client);
  lib.recordClient(client, result);
  const sub = client.newSubscription(lib.need(args, 'channel'));
  pb.recordSub(sub, result);
  sub.subscribe();
  client.connect();
  await sub.ready(5000);
  await lib.waitFor(() => result.publications.length >= count, 8000, `${count} publication(s)`);
  // Give a duplicate delivery a chance to show up before reporting.
  await lib.sleep(200);
  result.finalState = client.state;
}, { timeoutMs: Number(args.timeout || '12000') });
