'use strict';
// Subscribe to a channel of a namespace the server does not know: error 102, the subscription
// ends unsubscribed (no resubscribe) while the connection stays up.
// Usage: node unknown_namespace.js --url WS --token JWT --channel CH

const lib = require('./lib');

const args = lib.parseArgs(process.argv.slice(2));

lib.runScenario(async (result, clients) => {
  const client = lib.newClient(lib.need(args, 'url'), { token: lib.need(args, 'token') });
  clients.push(client);
  lib.recordClient(client, result);
  const sub = client.newSubscription(lib.need(args, 'channel'));
  lib.recordSub(sub, result);
  sub.subscribe();
  client.connect();
  try {
    await sub.ready(5000);
    result.readyResolved = true;
  } catch (err) {
    result.readyError = lib.describeError(err);
  }
  await lib.sleep(500);
  result.subFinalState = sub.state;
  result.finalState = client.state;
}, { timeoutMs: Number(args.timeout || '10000') });
