'use strict';
// Subscription token refresh: the client subscribes to a private (`$`) channel with a getToken
// that fetches short-lived subscription tokens from the test's loopback token endpoint. The
// subscription must stay subscribed across several expiries by sending `sub_refresh`
// commands; after --duration ms it prints @publish, the test publishes via cent, and the
// publication must arrive. The `sub_refresh` commands and their replies are traced.
// Usage: node sub_refresh.js --url WS --token JWT --token-url HTTP --user U --channel CH
//        --duration MS

const WebSocket = require('ws');
const lib = require('./lib');

const args = lib.parseArgs(process.argv.slice(2));

/**
 * A `ws` WebSocket subclass recording the `method` commands the SDK sends (JSON protocol:
 * newline-separated commands) and the replies to them, with ms since `started`.
 */
function tracingWebSocket(method, trace, started) {
  const ids = new Set();
  return class TracingWebSocket extends WebSocket {
    constructor(...wsArgs) {
      super(...wsArgs);
      this.addEventListener('message', (event) => {
        if (typeof event.data !== 'string') {
          return;
        }
        for (const line of event.data.split('\n')) {
          if (line.trim() === '' || line === '{}') {
            continue;
          }
          const reply = JSON.parse(line);
          if (reply.id !== undefined && ids.has(reply.id)) {
            trace.replies.push({ id: reply.id, atMs: Date.now() - started, result: reply[method], error: reply.error });
          }
        }
      });
    }

    send(data, ...rest) {
      if (typeof data === 'string') {
        for (const line of data.split('\n')) {
          if (line.trim() === '' || line === '{}') {
            continue;
          }
          const command = JSON.parse(line);
          if (command[method] !== undefined) {
            ids.add(command.id);
            const { token, ...request } = command[method];
            trace.sent.push({ id: command.id, atMs: Date.now() - started, hasToken: Boolean(token), ...request });
          }
        }
      }
      return super.send(data, ...rest);
    }
  };
}

async function fetchToken(url) {
  const response = await fetch(url);
  if (response.status !== 200) {
    throw new Error(`token endpoint answered HTTP ${response.status}`);
  }
  return response.text();
}

lib.runScenario(async (result, clients) => {
  const tokenUrl = lib.need(args, 'token-url');
  const user = lib.need(args, 'user');
  const channel = lib.need(args, 'channel');
  const duration = Number(lib.need(args, 'duration'));
  const started = Date.now();
  result.getTokenCalls = [];
  result.trace = { sent: [], replies: [] };
  const client = lib.newClient(lib.need(args, 'url'), {
    websocket: tracingWebSocket('sub_refresh', result.trace, started),
    token: lib.need(args, 'token'),
  });
  clients.push(client);
  lib.recordClient(client, result);
  const sub = client.newSubscription(channel, {
    getToken: async (ctx) => {
      result.getTokenCalls.push({ atMs: Date.now() - started, channel: ctx.channel });
      const query = `user=${encodeURIComponent(user)}&channel=${encodeURIComponent(ctx.channel)}`;
      return fetchToken(`${tokenUrl}/subscription?${query}`);
    },
  });
  lib.recordSub(sub, result);
  client.connect();
  sub.subscribe();
  await sub.ready(5000);
  const subscribedAt = Date.now();
  await lib.sleep(duration);
  result.subscribedForMs = Date.now() - subscribedAt;
  result.subStateBeforePublish = sub.state;
  lib.mark('publish');
  await lib.waitFor(() => result.publications.length >= 1, 5000, 'the publication');
  await lib.sleep(200);
  result.finalState = client.state;
  result.subFinalState = sub.state;
}, { timeoutMs: Number(args.timeout || '20000') });
