'use strict';
// Protobuf build: connect and subscribe, then wait while the test stops the server with SIGTERM:
// the SDK must see 3001 "shutdown" and go to `connecting` (reconnect allowed).
// Usage: node protobuf_shutdown.js --url WS --token JWT --channel CH [--timeout MS]

const lib = require('./lib');
const pb = require('./protobuf_lib');

const args = lib.parseArgs(process.argv.slice(2));

lib.runScenario(async (result, clients) => {
  const client = pb.newClient(lib.need(args, 'url'), { token: lib.need(args, 'token') });
  clients.push(client);
  lib.recordClient(client, result);
  const sub = client.newSubscription(lib.need(args, 'channel'));
  pb.recordSub(sub, result);
  sub.subscribe();
  client.connect();
  await sub.ready(5000);
  await lib.waitFor(() => result.connecting.length >= 2, 10000, 'a reconnect after the shutdown');
  // Let the SDK try (and fail) to reach the stopped server a few times.
  await lib.sleep(800);
  result.finalState = client.state;
  result.subFinalState = sub.state;
}, { timeoutMs: Number(args.timeout || '15000') });
