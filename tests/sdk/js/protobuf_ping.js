'use strict';
// Protobuf build: stay connected for `--duration` ms while the server pings; count the pings
// received and pongs sent (each the single byte 0x00) and any text frame (there must be none).
// Usage: node protobuf_ping.js --url WS --token JWT --duration MS [--max-ping-delay MS]

const lib = require('./lib');
const pb = require('./protobuf_lib');

const args = lib.parseArgs(process.argv.slice(2));
const duration = Number(args.duration || '7000');

lib.runScenario(async (result, clients) => {
  const counters = { pings: 0, pongs: 0, textFrames: 0 };
  result.counters = counters;
  const client = pb.newClient(lib.need(args, 'url'), {
    token: lib.need(args, 'token'),
    websocket: pb.countingWebSocket(counters),
    maxServerPingDelay: Number(args['max-ping-delay'] || '1000'),
  });
  clients.push(client);
  lib.recordClient(client, result);
  client.connect();
  await client.ready(5000);
  const started = Date.now();
  await lib.sleep(duration);
  result.connectedForMs = Date.now() - started;
  result.finalState = client.state;
}, { timeoutMs: duration + 8000 });
