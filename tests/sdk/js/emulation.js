'use strict';
// Connect over a transport list (http_stream, sse, or websocket first to test the fallback),
// subscribe, publish through the connection (sent via POST /emulation) and collect
// publications until `--count` arrived; with `--stay MS` stay connected that long afterwards
// (server pings answered with pongs through /emulation must keep the connection up).
// Usage: node emulation.js --transports JSON --emulation URL --token JWT --channel CH
//        [--count N] [--stay MS] [--protobuf 1] [--timeout MS]

const EventSource = require('eventsource');
const WebSocket = require('ws');
const lib = require('./lib');

const args = lib.parseArgs(process.argv.slice(2));
const count = Number(args.count || '1');
const protobuf = args.protobuf === '1';
const { Centrifuge } = protobuf ? require('centrifuge/build/protobuf') : require('centrifuge');

function encode(value) {
  return protobuf ? new TextEncoder().encode(JSON.stringify(value)) : value;
}

function decode(data) {
  return protobuf ? JSON.parse(new TextDecoder().decode(data)) : data;
}

lib.runScenario(async (result, clients) => {
  const client = new Centrifuge(JSON.parse(lib.need(args, 'transports')), {
    token: lib.need(args, 'token'),
    emulationEndpoint: lib.need(args, 'emulation'),
    eventsource: EventSource,
    websocket: WebSocket,
    minReconnectDelay: 100,
    maxReconnectDelay: 500,
    timeout: 3000,
  });
  clients.push(client);
  lib.recordClient(client, result);
  const sub = client.newSubscription(lib.need(args, 'channel'));
  result.publications = [];
  sub.on('publication', (ctx) => {
    result.publications.push({ data: decode(ctx.data), client: ctx.info ? ctx.info.client : null });
  });
  sub.subscribe();
  client.connect();
  await sub.ready(5000);
  lib.mark('subscribed');
  result.publishResult = await sub.publish(encode({ from: 'js' }));
  await lib.waitFor(() => result.publications.length >= count, 8000, `${count} publication(s)`);
  if (args.stay) {
    await lib.sleep(Number(args.stay));
  }
  result.presenceError = null;
  try {
    await sub.presence();
  } catch (err) {
    result.presenceError = lib.describeError(err);
  }
  result.finalState = client.state;
}, { timeoutMs: Number(args.timeout || '15000') });
