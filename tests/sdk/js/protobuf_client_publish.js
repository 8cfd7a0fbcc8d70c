'use strict';
// Protobuf build: two clients subscribe to the same channel; the second publishes the bytes of
// `--data-hex` through the SDK and the first must receive exactly them. Then the second
// publishes into a channel it may not publish to.
// Usage: node protobuf_client_publish.js --url WS --token-a JWT --token-b JWT --channel CH
//        --denied-channel CH --data-hex HEX [--timeout MS]

const lib = require('./lib');
const pb = require('./protobuf_lib');

const args = lib.parseArgs(process.argv.slice(2));

lib.runScenario(async (result, clients) => {
  const url = lib.need(args, 'url');
  const channel = lib.need(args, 'channel');
  const receiver = pb.newClient(url, { token: lib.need(args, 'token-a') });
  const sender = pb.newClient(url, { token: lib.need(args, 'token-b') });
  clients.push(receiver, sender);
  result.receiver = lib.recordClient(receiver, {});
  result.sender = lib.recordClient(sender, {});
  const receiverSub = receiver.newSubscription(channel);
  const senderSub = sender.newSubscription(channel);
  pb.recordSub(receiverSub, result.receiver);
  pb.recordSub(senderSub, result.sender);
  receiverSub.subscribe();
  senderSub.subscribe();
  receiver.connect();
  sender.connect();
  await receiverSub.ready(5000);
  await senderSub.ready(5000);

  try {
    result.publishResult = await senderSub.publish(pb.fromHex(lib.need(args, 'data-hex')));
  } catch (err) {
    result.publishError = lib.describeError(err);
  }
  await lib.waitFor(() => result.receiver.publications.length >= 1, 5000, 'the publication');

  try {
    const denied = lib.need(args, 'denied-channel');
    result.deniedResult = await sender.publish(denied, new Uint8Array([0x00, 0xff]));
  } catch (err) {
    result.deniedError = lib.describeError(err);
  }
  await lib.sleep(200);
  result.senderState = sender.state;
  result.receiverState = receiver.state;
}, { timeoutMs: Number(args.timeout || '12000') });
