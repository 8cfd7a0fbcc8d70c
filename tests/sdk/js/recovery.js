'use strict';
// Recovery after a reconnect. Subscribe to a channel with history (the namespace forces
// recovery) and receive one live publication; then the test cuts the connection (server API
// `disconnect`, code 4000: the SDK reconnects) and publishes while the SDK waits for its slow
// reconnect. After the resubscribe, collect what arrives: `--expect` publications are awaited
// (0 when recovery must fail), then a pause lets duplicates or stray ones show up.
// Markers: @subscribed (publish the live publication now), @live (it came: cut now).
// Usage: node recovery.js --url WS --token JWT --channel CH --expect N
//        [--min-delay MS] [--max-delay MS] [--timeout MS]

const lib = require('./lib');

const args = lib.parseArgs(process.argv.slice(2));

lib.runScenario(async (result, clients) => {
  const expect = Number(lib.need(args, 'expect'));
  const client = lib.newClient(lib.need(args, 'url'), {
    token: lib.need(args, 'token'),
    minReconnectDelay: Number(args['min-delay'] || '1500'),
    maxReconnectDelay: Number(args['max-delay'] || '2000'),
  });
  clients.push(client);
  lib.recordClient(client, result);
  const sub = client.newSubscription(lib.need(args, 'channel'));
  lib.recordSub(sub, result);
  lib.recordStream(sub, result);
  sub.subscribe();
  client.connect();
  await sub.ready(5000);
  lib.mark('subscribed');
  await lib.waitFor(() => result.streamPubs.length >= 1, 5000, 'the live publication');
  lib.mark('live');
  await lib.waitFor(() => result.subscribedCtx.length >= 2, 10000, 'the resubscribe');
  await lib.waitFor(
    () => result.streamPubs.length >= 1 + expect, 5000, `${expect} recovered publication(s)`);
  // Give a duplicate (or a publication that should not come) a chance to show up.
  await lib.sleep(400);
  result.finalState = client.state;
  result.subFinalState = sub.state;
}, { timeoutMs: Number(args.timeout || '16000') });
