'use strict';
// Subscribe with delta: 'fossil' and collect `--count` publications; count the bytes of the
// WebSocket text frames that carried them (delta-compressed on the wire).
// Usage: node delta.js --url WS --token JWT --channel CH --count N

const WebSocket = require('ws');
const lib = require('./lib');

const args = lib.parseArgs(process.argv.slice(2));
const count = Number(args.count || '50');
const wire = { pubFrames: 0, pubBytes: 0, deltaPubs: 0 };

class MeasuringWebSocket extends WebSocket {
  constructor(...rest) {
    super(...rest);
    this.addEventListener('message', (event) => {
      if (typeof event.data !== 'string') return;
      for (const line of event.data.split('\n')) {
        if (line.includes('"pub":')) {
          wire.pubFrames += 1;
          wire.pubBytes += Buffer.byteLength(line);
          if (line.includes('"delta":true')) wire.deltaPubs += 1;
        }
      }
    });
  }
}

lib.runScenario(async (result, clients) => {
  const client = lib.newClient(lib.need(args, 'url'), {
    token: lib.need(args, 'token'),
    websocket: MeasuringWebSocket,
  });
  clients.push(client);
  lib.recordClient(client, result);
  const sub = client.newSubscription(lib.need(args, 'channel'), { delta: 'fossil' });
  lib.recordSub(sub, result);
  sub.subscribe();
  client.connect();
  await sub.ready(5000);
  lib.mark('subscribed');
  await lib.waitFor(() => result.publications.length >= count, 15000, `${count} publications`);
  await lib.sleep(200);
  result.wire = wire;
}, { timeoutMs: Number(args.timeout || '25000') });
