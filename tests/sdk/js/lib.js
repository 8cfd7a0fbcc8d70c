'use strict';
// Shared plumbing for the scenario scripts: argument parsing, a hard timeout, event recording
// and the single JSON result line each script prints on stdout.

const { Centrifuge } = require('centrifuge');
const WebSocket = require('ws');

/** Parse `--name value` pairs into an object (values stay strings). */
function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      throw new Error(`unexpected argument ${arg}`);
    }
    const value = argv[i + 1];
    if (value === undefined) {
      throw new Error(`missing value for ${arg}`);
    }
    args[arg.slice(2)] = value;
    i += 1;
  }
  return args;
}

/** Read a required option from args or from the environment (SDK_<NAME>). */
function need(args, name) {
  const envName = `SDK_${name.toUpperCase().replace(/-/g, '_')}`;
  const value = args[name] !== undefined ? args[name] : process.env[envName];
  if (value === undefined || value === '') {
    throw new Error(`--${name} (or ${envName}) is required`);
  }
  return value;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolve once `predicate()` holds, polling every 20 ms; reject after `ms`. */
async function waitFor(predicate, ms, what) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(20);
  }
}

/**
 * A `ws` WebSocket subclass that counts the server pings it receives (a bare `{}` frame in the
 * JSON protocol) and the pongs the SDK sends back (also `{}`).
 */
function countingWebSocket(counters) {
  return class CountingWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => {
        if (typeof event.data === 'string' && event.data === '{}') {
          counters.pings += 1;
        }
      });
    }

    send(data, ...rest) {
      if (typeof data === 'string' && data === '{}') {
        counters.pongs += 1;
      }
      return super.send(data, ...rest);
    }
  };
}

/** A Centrifuge client on the `ws` WebSocket with short reconnect delays. */
function newClient(url, options = {}) {
  return new Centrifuge(url, {
    websocket: WebSocket,
    minReconnectDelay: 100,
    maxReconnectDelay: 500,
    timeout: 3000,
    ...options,
  });
}

/** Record the client's lifecycle events into `into` (arrays of plain objects). */
function recordClient(client, into) {
  into.states = [];
  into.connected = [];
  into.connecting = [];
  into.disconnected = [];
  into.errors = [];
  client.on('state', (ctx) => into.states.push(ctx.newState));
  client.on('connected', (ctx) => into.connected.push({ client: ctx.client, transport: ctx.transport }));
  client.on('connecting', (ctx) => into.connecting.push({ code: ctx.code, reason: ctx.reason }));
  client.on('disconnected', (ctx) => into.disconnected.push({ code: ctx.code, reason: ctx.reason }));
  client.on('error', (ctx) => {
    const err = ctx.error || {};
    into.errors.push({ type: ctx.type, code: err.code, message: err.message });
  });
  return into;
}

/** Record a subscription's events into `into`. */
function recordSub(sub, into) {
  into.subStates = [];
  into.subscribed = [];
  into.subscribing = [];
  into.unsubscribed = [];
  into.subErrors = [];
  into.publications = [];
  sub.on('state', (ctx) => into.subStates.push(ctx.newState));
  sub.on('subscribed', (ctx) => into.subscribed.push({ channel: ctx.channel }));
  sub.on('subscribing', (ctx) => into.subscribing.push({ code: ctx.code, reason: ctx.reason }));
  sub.on('unsubscribed', (ctx) => into.unsubscribed.push({ code: ctx.code, reason: ctx.reason }));
  sub.on('error', (ctx) => {
    const err = ctx.error || {};
    into.subErrors.push({ type: ctx.type, code: err.code, message: err.message });
  });
  sub.on('publication', (ctx) => {
    into.publications.push({ data: ctx.data, info: ctx.info ? { client: ctx.info.client, user: ctx.info.user } : null });
  });
  return into;
}

/**
 * Record what recovery and join/leave tests look at into `into`: every `subscribed` context
 * (stream position, recovery flags) and every publication with its offset, tagged with the
 * number of `subscribed` events seen when it arrived (1 = first subscription, 2 = after the
 * first resubscribe...), plus join and leave events.
 */
function recordStream(sub, into) {
  into.subscribedCtx = [];
  into.streamPubs = [];
  into.joins = [];
  into.leaves = [];
  sub.on('subscribed', (ctx) => {
    into.subscribedCtx.push({
      recoverable: ctx.recoverable,
      positioned: ctx.positioned,
      wasRecovering: ctx.wasRecovering,
      recovered: ctx.recovered,
      hasRecoveredPublications: ctx.hasRecoveredPublications,
      streamPosition: ctx.streamPosition === undefined ? null : {
        offset: ctx.streamPosition.offset,
        epoch: ctx.streamPosition.epoch,
      },
    });
  });
  sub.on('publication', (ctx) => {
    into.streamPubs.push({ data: ctx.data, offset: ctx.offset, session: into.subscribedCtx.length });
  });
  sub.on('join', (ctx) => into.joins.push({ user: ctx.info.user, client: ctx.info.client }));
  sub.on('leave', (ctx) => into.leaves.push({ user: ctx.info.user, client: ctx.info.client }));
  return into;
}

/** Print a marker line `@name` the test waits for (jsrun.wait_marker) before acting. */
function mark(name) {
  process.stdout.write(`@${name}\n`);
}

/** Call a server API method with fetch (used to publish at a precise moment of a scenario). */
async function api(apiUrl, apiKey, method, body) {
  const response = await fetch(`${apiUrl}/${method}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-API-Key': apiKey },
    body: JSON.stringify(body),
  });
  if (response.status !== 200) {
    throw new Error(`API ${method} answered HTTP ${response.status}`);
  }
  return response.json();
}

/** Describe a rejected SDK call: server errors carry `code`, SDK-side errors may not. */
function describeError(err) {
  if (err && typeof err === 'object') {
    return { code: err.code, message: err.message };
  }
  return { code: undefined, message: String(err) };
}

/**
 * Run `main(result)` under a hard timeout and print `result` as one JSON line.
 * `main` may add fields to `result`; `clients` lists clients to disconnect before exiting.
 * The exit code is 0 unless the scenario threw or hit the timeout (then 1; the JSON says why).
 */
function runScenario(main, { timeoutMs = 10000 } = {}) {
  const result = {};
  const clients = [];
  let finished = false;

  const finish = (exitCode) => {
    if (finished) {
      return;
    }
    finished = true;
    // Snapshot first: the cleanup below emits events that are not part of the scenario.
    const line = `${JSON.stringify(result)}\n`;
    for (const client of clients) {
      try {
        client.disconnect();
      } catch (err) {
        // Already closed: nothing to release.
      }
    }
    process.stdout.write(line, () => process.exit(exitCode));
  };

  const timer = setTimeout(() => {
    result.timedOut = true;
    finish(1);
  }, timeoutMs);

  Promise.resolve()
    .then(() => main(result, clients))
    .then(() => {
      clearTimeout(timer);
      finish(0);
    })
    .catch((err) => {
      clearTimeout(timer);
      result.fatal = err && err.stack ? err.stack : String(err);
      finish(1);
    });
}

module.exports = {
  api,
  countingWebSocket,
  describeError,
  mark,
  need,
  newClient,
  parseArgs,
  recordClient,
  recordStream,
  recordSub,
  runScenario,
  sleep,
  waitFor,
};
