'use strict';
// Connect with a JWT, subscribe to a channel and collect publications until `--count` arrived.
// The test publishes through the server API (cent) once the channel has a subscriber.
// Usage: node pubsub.js --url WS --token JWT --channel CH [--count N] [--timeout MS]

const lib = require('./lib');

const args = lib.parseArgs(process.argv.slice(2));
const count = Number(args.count || '1');

lib.runScenario(async (result, clients) => {
  const client = lib.newClient(lib.need(args, 'url'), { token: lib.need(args, 'token') });
  clients.push(client);
  lib.recordClient(client, result);
  const sub = client.newSubscription(lib.need(args, 'channel'));
  lib.recordSub(sub, result);
  sub.subscribe();
  client.connect();
  await sub.ready(5000);
  await lib.waitFor(() => result.publications.length >= count, 8000, `${count} publication(s)`);
  // Give a duplicate delivery a chance to show up before reporting.
  await lib.sleep(200);
  result.finalState = client.state;
}, { timeoutMs: Number(args.timeout || '12000') });
