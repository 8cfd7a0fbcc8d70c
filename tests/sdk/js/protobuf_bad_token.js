'use strict';
// Protobuf build: connect with a token whose signature is wrong: the server closes with 3500 and
// the SDK must go to `disconnected` without trying again.
// Usage: node protobuf_bad_token.js --url WS --token JWT [--observe MS]

const lib = require('./lib');
const pb = require('./protobuf_lib');

const args = lib.parseArgs(process.argv.slice(2));

lib.runScenario(async (result, clients) => {
  const client = pb.newClient(lib.need(args, 'url'), { token: lib.need(args, 'token') });
  clients.push(client);
  lib.recordClient(client, result);
  client.connect();
  await lib.waitFor(() => result.disconnected.length >= 1, 6000, 'the disconnected event');
  // Watch a while longer: a reconnect would show up as another `connecting` event.
  await lib.sleep(Number(args.observe || '1500'));
  result.finalState = client.state;
}, { timeoutMs: Number(args.timeout || '10000') });
