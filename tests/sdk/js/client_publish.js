'use strict';
// Two clients subscribe to the same channel; the second publishes through the SDK and the first
// must receive it. Then the second publishes into a channel it may not publish to.
// Usage: node client_publish.js --url WS --token-a JWT --token-b JWT --channel CH
//        --denied-channel CH [--timeout MS]

const lib = require('./lib');

const args = lib.parseArgs(process.argv.slice(2));

lib.runScenario(async (result, clients) => {
  const url = lib.need(args, 'url');
  const channel = lib.need(args, 'channel');
  const receiver = lib.newClient(url, { token: lib.need(args, 'token-a') });
  const sender = lib.newClient(url, { token: lib.need(args, 'token-b') });
  clients.push(receiver, sender);
  result.receiver = lib.recordClient(receiver, {});
  result.sender = lib.recordClient(sender, {});
  const receiverSub = receiver.newSubscription(channel);
  const senderSub = sender.newSubscription(channel);
  lib.recordSub(receiverSub, result.receiver);
  lib.recordSub(senderSub, result.sender);
  receiverSub.subscribe();
  senderSub.subscribe();
  receiver.connect();
  sender.connect();
  await receiverSub.ready(5000);
  await senderSub.ready(5000);

  const payload = { text: 'hello from js', n: 42 };
  try {
    result.publishResult = await senderSub.publish(payload);
  } catch (err) {
    result.publishError = lib.describeError(err);
  }
  await lib.waitFor(() => result.receiver.publications.length >= 1, 5000, 'the publication');

  try {
    result.deniedResult = await sender.publish(lib.need(args, 'denied-channel'), { text: 'nope' });
  } catch (err) {
    result.deniedError = lib.describeError(err);
  }
  await lib.sleep(200);
  result.senderState = sender.state;
  result.receiverState = receiver.state;
}, { timeoutMs: Number(args.timeout || '12000') });
