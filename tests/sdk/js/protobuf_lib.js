'use strict';
// Protobuf-build helpers for the protobuf_*.js scenario scripts (lib.js uses the JSON build).
// Payloads travel as hex strings between the test and a script: `--data-hex` in, `dataHex` out.

const { Centrifuge } = require('centrifuge/build/protobuf');
const WebSocket = require('ws');

/** Lower-case hex of a Uint8Array (or of any array-like of bytes). */
function toHex(bytes) {
  return Buffer.from(bytes).toString('hex');
}

/** A Uint8Array from a hex string. */
function fromHex(hex) {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Describe a payload the SDK handed over: its hex when it is a Uint8Array, else its type. */
function describeData(data) {
  if (data instanceof Uint8Array) {
    return { dataHex: toHex(data) };
  }
  return { notBytes: Object.prototype.toString.call(data) };
}

function isPingFrame(data) {
  if (data instanceof ArrayBuffer) {
    return data.byteLength === 1 && new Uint8Array(data)[0] === 0;
  }
  if (ArrayBuffer.isView(data)) {
    return data.byteLength === 1 && data[0] === 0;
  }
  return false;
}

/**
 * A `ws` WebSocket subclass that counts the server pings (a binary frame of the single byte
 * 0x00 in the Protobuf protocol: an empty Reply, length-prefixed), the pongs the SDK sends back
 * (the same byte), and the frames of each kind (`text` must stay 0 in Protobuf mode).
 */
function countingWebSocket(counters) {
  return class CountingWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => {
        if (typeof event.data === 'string') {
          counters.textFrames += 1;
        } else if (isPingFrame(event.data)) {
          counters.pings += 1;
        }
      });
    }

    send(data, ...rest) {
      if (isPingFrame(data)) {
        counters.pongs += 1;
      }
      return super.send(data, ...rest);
    }
  };
}

/**
 * A WebSocket subclass that records the subprotocols the SDK asked for and the one the server
 * chose, into `into.requested` / `into.negotiated`.
 */
function protocolWebSocket(into) {
  return class ProtocolWebSocket extends WebSocket {
    constructor(url, protocols, ...rest) {
      super(url, protocols, ...rest);
      into.requested = protocols === undefined ? null : protocols;
      this.addEventListener('open', () => {
        into.negotiated = this.protocol;
      });
    }
  };
}

/** A Protobuf-build Centrifuge client on `ws` with short reconnect delays. */
function newClient(url, options = {}) {
  return new Centrifuge(url, {
    websocket: WebSocket,
    minReconnectDelay: 100,
    maxReconnectDelay: 500,
    timeout: 3000,
    ...options,
  });
}

/**
 * Record a subscription's events into `into` like lib.recordSub, but with each publication as
 * `{dataHex, offset, info}` (JSON.stringify would turn a raw Uint8Array into an index-keyed
 * object); a payload that is not a Uint8Array shows up as `{notBytes: type}`.
 */
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
    into.publications.push({
      ...describeData(ctx.data),
      info: ctx.info ? { client: ctx.info.client, user: ctx.info.user } : null,
    });
  });
  return into;
}

module.exports = {
  countingWebSocket,
  describeData,
  fromHex,
  newClient,
  protocolWebSocket,
  recordSub,
  toHex,
};
