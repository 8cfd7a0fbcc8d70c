'use strict';
// Stay connected for `--duration` ms while the server pings; count pings received and pongs sent.
// A small maxServerPingDelay makes a missing ping visible as a reconnect within seconds.
// Usage: node ping.js --url WS --token JWT --duration MS [--max-ping-delay MS]

const lib = require('./lib');

const args = lib.parseArgs(process.argv.slice(2));
const duration = Number(args.duration || '7000');

lib.runScenario(async (result, clients) => {
  const counters = { pings: 0, pongs: 0 };
  result.counters = counters;
  const client = lib.newClient(lib.need(args, 'url'), {
    token: lib.need(args, 'token'),
    websocket: lib.countingWebSocket(counters),
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
