'use strict';
// Connect with an expired token: the server answers 109, the SDK must call getToken, reconnect
// with the fresh token and end up connected.
// Usage: node expired_token.js --url WS --token EXPIRED_JWT --fresh-token JWT

const lib = require('./lib');

const args = lib.parseArgs(process.argv.slice(2));

lib.runScenario(async (result, clients) => {
  const fresh = lib.need(args, 'fresh-token');
  result.getTokenCalls = 0;
  const client = lib.newClient(lib.need(args, 'url'), {
    token: lib.need(args, 'token'),
    getToken: async () => {
      result.getTokenCalls += 1;
      return fresh;
    },
  });
  clients.push(client);
  lib.recordClient(client, result);
  client.connect();
  await client.ready(6000);
  await lib.sleep(300);
  result.finalState = client.state;
}, { timeoutMs: Number(args.timeout || '10000') });
