'use strict';
// Protobuf build: clients a and b subscribe to a channel with presence and history; b publishes
// the bytes of each `--data-hex` (comma-separated) through the SDK; then both ask for presence
// and a asks for history({limit: 10}). Publication data is reported as hex, offsets as numbers.
// Usage: node protobuf_presence_history.js --url WS --token-a JWT --token-b JWT --channel CH
//        --data-hex HEX,HEX,... [--timeout MS]

const lib = require('./lib');
const pb = require('./protobuf_lib');

const args = lib.parseArgs(process.argv.slice(2));

function plainPresence(reply) {
  const clients = {};
  for (const [id, info] of Object.entries(reply.clients)) {
    clients[id] = { client: info.client, user: info.user };
  }
  return { clients };
}

function plainHistory(reply) {
  return {
    publications: reply.publications.map((pub) => ({
      ...pb.describeData(pub.data),
      offset: Number(pub.offset),
      info: pub.info ? { client: pub.info.client, user: pub.info.user } : null,
    })),
    offset: Number(reply.offset),
    epoch: reply.epoch,
  };
}

lib.runScenario(async (result, clients) => {
  const url = lib.need(args, 'url');
  const channel = lib.need(args, 'channel');
  const payloads = lib.need(args, 'data-hex').split(',');
  const a = pb.newClient(url, { token: lib.need(args, 'token-a') });
  const b = pb.newClient(url, { token: lib.need(args, 'token-b') });
  clients.push(a, b);
  result.a = lib.recordClient(a, {});
  result.b = lib.recordClient(b, {});
  const subA = a.newSubscription(channel);
  const subB = b.newSubscription(channel);
  pb.recordSub(subA, result.a);
  pb.recordSub(subB, result.b);
  subA.subscribe();
  subB.subscribe();
  a.connect();
  b.connect();
  await subA.ready(5000);
  await subB.ready(5000);
  result.ids = { a: result.a.connected[0].client, b: result.b.connected[0].client };

  for (const hex of payloads) {
    await b.publish(channel, pb.fromHex(hex));
  }
  const all = () => result.a.publications.length >= payloads.length;
  await lib.waitFor(all, 5000, 'the publications on a');

  result.presenceA = plainPresence(await subA.presence());
  result.presenceB = plainPresence(await subB.presence());
  result.history = plainHistory(await subA.history({ limit: 10 }));
  result.finalState = a.state;
}, { timeoutMs: Number(args.timeout || '12000') });
