'use strict';
// Connect through SockJS (sockjs-client, one SockJS transport forced with `--sockjs`:
// websocket, xhr-streaming, xhr-polling or eventsource), subscribe, publish through the
// connection and collect publications until `--count` arrived.
// Usage: node sockjs.js --endpoint HTTP_URL --sockjs NAME --token JWT --channel CH [--count N]

const SockJS = require('sockjs-client');
const { Centrifuge } = require('centrifuge');
const lib = require('./lib');

const args = lib.parseArgs(process.argv.slice(2));
const count = Number(args.count || '1');

lib.runScenario(async (result, clients) => {
  const client = new Centrifuge([{ transport: 'sockjs', endpoint: lib.need(args, 'endpoint') }], {
    token: lib.need(args, 'token'),
    sockjs: SockJS,
    sockjsOptions: { transports: [lib.need(args, 'sockjs')] },
    minReconnectDelay: 100,
    maxReconnectDelay: 500,
    timeout: 5000,
  });
  clients.push(client);
  lib.recordClient(client, result);
  const sub = client.newSubscription(lib.need(args, 'channel'));
  lib.recordSub(sub, result);
  sub.subscribe();
  client.connect();
  await sub.ready(8000);
  lib.mark('subscribed');
  result.subTransport = client._transport ? client._transport.subName() : null;
  result.publishResult = await sub.publish({ from: 'sockjs' });
  await lib.waitFor(() => result.publications.length >= count, 8000, `${count} publication(s)`);
  await lib.sleep(200);
  result.finalState = client.state;
}, { timeoutMs: Number(args.timeout || '15000') });
