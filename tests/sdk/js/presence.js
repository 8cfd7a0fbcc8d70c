'use strict';
// Presence and join/leave in a channel that keeps presence and forces join/leave pushes.
// Client a subscribes, then client b; both ask for presence and presence stats; b unsubscribes
// (a must see b leave), subscribes again (a must see b join again) and disconnects (a must see
// b leave again). Joins and leaves are recorded on both sides.
// Usage: node presence.js --url WS --token-a JWT --token-b JWT --channel CH [--timeout MS]

const lib = require('./lib');

const args = lib.parseArgs(process.argv.slice(2));

lib.runScenario(async (result, clients) => {
  const url = lib.need(args, 'url');
  const channel = lib.need(args, 'channel');
  const a = lib.newClient(url, { token: lib.need(args, 'token-a') });
  const b = lib.newClient(url, { token: lib.need(args, 'token-b') });
  clients.push(a, b);
  result.a = lib.recordClient(a, {});
  result.b = lib.recordClient(b, {});
  const subA = a.newSubscription(channel);
  const subB = b.newSubscription(channel);
  lib.recordStream(subA, lib.recordSub(subA, result.a));
  lib.recordStream(subB, lib.recordSub(subB, result.b));
  const seen = (list, client) => list.some((info) => info.client === client);
  const count = (list, client) => list.filter((info) => info.client === client).length;

  subA.subscribe();
  a.connect();
  await subA.ready(5000);
  const idA = result.a.connected[0].client;
  subB.subscribe();
  b.connect();
  await subB.ready(5000);
  const idB = result.b.connected[0].client;
  await lib.waitFor(() => seen(result.a.joins, idB), 3000, 'the join of b');

  result.presenceA = await subA.presence();
  result.presenceB = await subB.presence();
  result.statsA = await subA.presenceStats();
  result.statsB = await subB.presenceStats();

  subB.unsubscribe();
  await lib.waitFor(() => seen(result.a.leaves, idB), 3000, 'the leave of b after unsubscribe');
  result.statsAfterUnsubscribe = await subA.presenceStats();

  subB.subscribe();
  await subB.ready(5000);
  await lib.waitFor(() => count(result.a.joins, idB) >= 2, 3000, 'the second join of b');
  result.statsAfterResubscribe = await subA.presenceStats();

  b.disconnect();
  await lib.waitFor(() => count(result.a.leaves, idB) >= 2, 3000, 'the leave of b after disconnect');
  result.presenceAfterDisconnect = await subA.presence();
  result.statsAfterDisconnect = await subA.presenceStats();
  // Give a duplicate join or leave a chance to show up.
  await lib.sleep(300);
  result.ids = { a: idA, b: idB };
  result.finalState = a.state;
}, { timeoutMs: Number(args.timeout || '15000') });
