// centrifugo-fast admin interface: plain JavaScript, no build step, no third-party code.
//
// Pages are rendered from hash routes (#/status, #/channels, #/channel/<name>, #/actions,
// #/config). Every server call goes through `api()` to `admin/api/<method>` with the admin
// token; a 401 ends the session and shows the login form again. Server data is only ever put
// into the page as text (never as HTML).

const BASE = new URL('.', window.location.href);
const TOKEN_KEY = 'centrifugo-fast-admin-token';
const STATUS_EVERY_MS = 2000;
const LIST_EVERY_MS = 5000;
const TAIL_KEEP = 200;

const session = {
  token: '',
  expires: 0,
  insecure: false,
};

/** The cleanup function of the page on screen (timers, sockets). */
let leavePage = () => {};

// ---------------------------------------------------------------- DOM helpers

/** Create an element: h('div', {class: 'x', onclick: fn}, child, 'text', ...). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(name, '');
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function jsonBlock(value, testid) {
  return h('pre', { class: 'json', 'data-testid': testid }, JSON.stringify(value, null, 2));
}

function formatUptime(seconds) {
  let s = Math.max(0, Math.floor(seconds || 0));
  const parts = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]]) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  if (s || !parts.length) parts.push(`${s}s`);
  return parts.slice(0, 3).join(' ');
}

function clock(date) {
  return date.toLocaleTimeString([], { hour12: false });
}

// ---------------------------------------------------------------- server calls

class ApiError extends Error {
  constructor(code, message) {
    super(`error ${code}: ${message}`);
    this.code = code;
  }
}

class SessionEnded extends Error {}

function authHeaders() {
  return session.insecure ? {} : { Authorization: `token ${session.token}` };
}

async function request(path, options = {}) {
  let response;
  try {
    response = await fetch(new URL(path, BASE), {
      ...options,
      headers: { ...authHeaders(), ...(options.headers || {}) },
      cache: 'no-store',
    });
  } catch (err) {
    throw new Error(`the server cannot be reached (${err.message})`);
  }
  if (response.status === 401) {
    endSession('Your session has ended. Please log in again.');
    throw new SessionEnded('session ended');
  }
  return response;
}

/** Call one server API method; resolves with its result, rejects with a readable error. */
async function api(method, params = {}) {
  const response = await request(`admin/api/${method}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(params),
  });
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`HTTP ${response.status}${text.trim() ? `: ${text.trim()}` : ''}`);
  }
  let body;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new Error('the server sent an answer that is not JSON');
  }
  if (body.error) throw new ApiError(body.error.code, body.error.message);
  return body.result || {};
}

function describe(err) {
  if (err instanceof ApiError) {
    const hints = {
      102: 'the channel namespace is not configured',
      107: 'the request is not valid',
      108: 'this is not enabled for the channel\'s namespace',
    };
    return hints[err.code] ? `${err.message} — ${hints[err.code]}` : err.message;
  }
  return err && err.message ? err.message : String(err);
}

/** Run `fn` and report its outcome into `box` (a .alert element). */
async function attempt(box, fn, success) {
  box.className = 'alert';
  box.textContent = '';
  try {
    const result = await fn();
    if (success) {
      box.className = 'alert ok';
      box.textContent = typeof success === 'function' ? success(result) : success;
    }
    return result;
  } catch (err) {
    if (err instanceof SessionEnded) return undefined;
    box.className = 'alert error';
    box.textContent = describe(err);
    return undefined;
  }
}

// ---------------------------------------------------------------- session

function saveSession() {
  if (session.token) {
    localStorage.setItem(TOKEN_KEY, JSON.stringify({ token: session.token, expires: session.expires }));
  } else {
    localStorage.removeItem(TOKEN_KEY);
  }
}

function loadSession() {
  try {
    const saved = JSON.parse(localStorage.getItem(TOKEN_KEY) || 'null');
    if (saved && saved.token && saved.expires * 1000 > Date.now()) {
      session.token = saved.token;
      session.expires = saved.expires;
    }
  } catch (err) {
    localStorage.removeItem(TOKEN_KEY);
  }
}

function endSession(message) {
  session.token = '';
  session.expires = 0;
  saveSession();
  showLogin(message);
}

async function logout() {
  try {
    await request('admin/logout', { method: 'POST' });
  } catch (err) {
    // Logged out locally whatever the server said.
  }
  endSession('');
}

/** Renew the token while the page stays open (tokens are short-lived). */
async function renewToken() {
  if (session.insecure || !session.token) return;
  if (session.expires * 1000 - Date.now() > 15 * 60 * 1000) return;
  try {
    const response = await request('admin/auth/refresh', { method: 'POST' });
    if (response.ok) {
      const body = await response.json();
      session.token = body.token;
      session.expires = body.expires;
      saveSession();
    }
  } catch (err) {
    // The next call will end the session if the token really is gone.
  }
}

// ---------------------------------------------------------------- login

function showLogin(message) {
  leavePage();
  leavePage = () => {};
  const app = document.getElementById('app');
  const password = h('input', {
    type: 'password', id: 'password', name: 'password', autocomplete: 'current-password',
    required: true, autofocus: true, 'data-testid': 'login-password',
  });
  const error = h('div', { class: 'alert error', role: 'alert', 'data-testid': 'login-error' }, message || '');
  if (message && message.startsWith('Your session')) error.className = 'alert';
  const button = h('button', { type: 'submit', 'data-testid': 'login-submit' }, 'Log in');
  const form = h('form', { class: 'stack', onsubmit: (event) => { event.preventDefault(); login(password, button, error); } },
    h('label', { for: 'password' }, 'Password', password),
    button,
    error);
  clear(app, h('div', { class: 'login', 'data-testid': 'login' },
    h('h1', {}, 'centrifugo-fast admin'),
    h('p', { class: 'hint' }, 'Log in with the password from admin.password.'),
    form));
  password.focus();
}

async function login(password, button, error) {
  button.disabled = true;
  error.className = 'alert error';
  error.textContent = '';
  try {
    let response;
    try {
      response = await fetch(new URL('admin/auth', BASE), {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ password: password.value }),
      });
    } catch (err) {
      error.textContent = `The server cannot be reached (${err.message}).`;
      return;
    }
    if (response.status === 200) {
      const body = await response.json();
      session.token = body.token;
      session.expires = body.expires;
      saveSession();
      window.location.hash = window.location.hash || '#/status';
      showShell();
      return;
    }
    if (response.status === 429) {
      const body = await response.json().catch(() => ({}));
      error.textContent = `Too many failed attempts. Try again in ${body.retry_after || 60} s.`;
    } else if (response.status === 400) {
      const text = (await response.text()).trim();
      error.textContent = text === 'wrong password' ? 'Wrong password.' : `Login refused: ${text}`;
    } else {
      error.textContent = `Login failed: HTTP ${response.status}.`;
    }
    password.select();
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- shell and routing

const PAGES = [
  ['status', 'Status'],
  ['channels', 'Channels'],
  ['actions', 'Actions'],
  ['config', 'Config'],
];

function showShell() {
  const app = document.getElementById('app');
  const nav = h('nav', { class: 'main' },
    PAGES.map(([id, title]) => h('a', { href: `#/${id}`, 'data-page': id, 'data-testid': `nav-${id}` }, title)));
  const right = session.insecure
    ? h('span', { class: 'hint', 'data-testid': 'insecure' }, 'insecure mode: no login')
    : h('button', { class: 'secondary small', 'data-testid': 'logout', onclick: logout }, 'Log out');
  clear(app,
    h('header', { class: 'top' }, h('span', { class: 'brand' }, 'centrifugo-fast', h('small', {}, 'admin')), nav, right),
    h('main', { id: 'page' }));
  route();
}

function route() {
  const page = document.getElementById('page');
  if (!page) return;
  leavePage();
  leavePage = () => {};
  const hash = window.location.hash.replace(/^#\/?/, '');
  const [name, ...rest] = hash.split('/');
  let active = name;
  let render;
  if (name === 'channel' && rest.length) {
    active = 'channels';
    const channel = decodeURIComponent(rest.join('/'));
    render = () => channelPage(page, channel);
  } else if (name === 'channels') {
    render = () => channelsPage(page);
  } else if (name === 'actions') {
    render = () => actionsPage(page);
  } else if (name === 'config') {
    render = () => configPage(page);
  } else {
    active = 'status';
    render = () => statusPage(page);
  }
  for (const link of document.querySelectorAll('nav.main a')) {
    link.classList.toggle('active', link.dataset.page === active);
  }
  clear(page);
  leavePage = render() || (() => {});
}

/** Call `fn` now and every `ms` while the page is shown; returns the stop function. */
function every(ms, fn) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    try {
      await fn();
    } finally {
      if (!stopped) timer = setTimeout(tick, ms);
    }
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function channelLink(channel) {
  return `#/channel/${encodeURIComponent(channel)}`;
}

// ---------------------------------------------------------------- status

function statusPage(page) {
  const error = h('div', { class: 'alert error', role: 'alert' });
  const cards = h('div', { class: 'cards', 'data-testid': 'totals' });
  const body = h('tbody', { 'data-testid': 'nodes' });
  const updated = h('span', { class: 'hint', 'data-testid': 'updated' });
  append(page, [
    h('h1', {}, 'Status'),
    error,
    cards,
    h('section', { class: 'panel' },
      h('div', { class: 'row' }, h('h2', { class: 'grow' }, 'Nodes'), updated),
      h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {},
          h('th', {}, 'Name'), h('th', {}, 'Version'), h('th', {}, 'Uptime'),
          h('th', { class: 'num' }, 'Clients'), h('th', { class: 'num' }, 'Users'),
          h('th', { class: 'num' }, 'Channels'), h('th', { class: 'num' }, 'Subscriptions'))),
        body))),
  ]);
  return every(STATUS_EVERY_MS, async () => {
    const result = await attempt(error, () => api('info'));
    if (!result) return;
    const nodes = result.nodes || [];
    const sum = (field) => nodes.reduce((total, node) => total + (node[field] || 0), 0);
    clear(cards,
      [['Nodes', nodes.length], ['Clients', sum('num_clients')], ['Users (all nodes)', sum('num_users')],
        ['Subscriptions', sum('num_subs')]].map(([label, value]) => h('div', { class: 'card' },
        h('div', { class: 'value' }, value), h('div', { class: 'label' }, label))));
    clear(body, nodes.map((node) => h('tr', { 'data-testid': 'node-row', 'data-uid': node.uid },
      h('td', { 'data-testid': 'node-name' }, node.name),
      h('td', {}, node.version || ''),
      h('td', {}, formatUptime(node.uptime)),
      h('td', { class: 'num', 'data-testid': 'node-clients' }, node.num_clients || 0),
      h('td', { class: 'num' }, node.num_users || 0),
      h('td', { class: 'num' }, node.num_channels || 0),
      h('td', { class: 'num' }, node.num_subs || 0))));
    updated.textContent = `updated ${clock(new Date())}, every ${STATUS_EVERY_MS / 1000} s`;
  });
}

// ---------------------------------------------------------------- channels

function channelsPage(page) {
  const error = h('div', { class: 'alert error', role: 'alert' });
  const pattern = h('input', { type: 'text', placeholder: 'pattern, e.g. chat:*', 'data-testid': 'channels-filter', 'aria-label': 'Channel pattern' });
  const body = h('tbody', { 'data-testid': 'channels' });
  const summary = h('span', { class: 'hint' });
  const open = h('input', { type: 'text', placeholder: 'any channel name', 'aria-label': 'Channel name', 'data-testid': 'open-channel' });
  let refresh;
  append(page, [
    h('h1', {}, 'Channels'),
    h('section', { class: 'panel' },
      h('form', { class: 'row', onsubmit: (event) => { event.preventDefault(); refresh(); } },
        pattern, h('button', { type: 'submit' }, 'Filter')),
      h('p', { class: 'hint' }, 'Channels with at least one subscriber, on every node. ',
        'Patterns: * any text, ? one character, [abc] one of these characters.'),
      error,
      h('div', { class: 'row' }, summary),
      h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, h('th', {}, 'Channel'), h('th', { class: 'num' }, 'Subscribers'))),
        body))),
    h('section', { class: 'panel' },
      h('h2', {}, 'Open a channel'),
      h('form', {
        class: 'row',
        onsubmit: (event) => {
          event.preventDefault();
          if (open.value.trim()) window.location.hash = channelLink(open.value.trim());
        },
      }, open, h('button', { type: 'submit' }, 'Open')),
      h('p', { class: 'hint' }, 'Presence, history and the live tail work for channels without subscribers too.')),
  ]);
  const load = async () => {
    const result = await attempt(error, () => api('channels', pattern.value.trim() ? { pattern: pattern.value.trim() } : {}));
    if (!result) return;
    const entries = Object.entries(result.channels || {}).sort(([a], [b]) => a.localeCompare(b));
    summary.textContent = `${entries.length} channel${entries.length === 1 ? '' : 's'}, updated ${clock(new Date())}`;
    if (!entries.length) {
      clear(body, h('tr', {}, h('td', { colspan: 2, class: 'empty' }, 'No channel with subscribers matches.')));
      return;
    }
    clear(body, entries.map(([name, info]) => h('tr', { 'data-testid': 'channel-row', 'data-channel': name },
      h('td', { class: 'mono' }, h('a', { href: channelLink(name) }, name)),
      h('td', { class: 'num', 'data-testid': 'channel-subscribers' }, info.num_clients || 0))));
  };
  const stop = every(LIST_EVERY_MS, load);
  refresh = load;
  return stop;
}

// ---------------------------------------------------------------- JSON editor

/** A textarea that must hold valid JSON: shows the parse error as you type. */
function jsonField(label, initial, testid, { allowEmpty = false } = {}) {
  const area = h('textarea', { spellcheck: 'false', 'data-testid': testid, 'aria-label': label }, initial);
  const problem = h('div', { class: 'field-error', 'data-testid': `${testid}-error` });
  const check = () => {
    const text = area.value.trim();
    if (!text && allowEmpty) {
      area.classList.remove('invalid');
      problem.textContent = '';
      return { ok: true, value: undefined };
    }
    try {
      const value = JSON.parse(text);
      area.classList.remove('invalid');
      problem.textContent = '';
      return { ok: true, value };
    } catch (err) {
      area.classList.add('invalid');
      problem.textContent = `Not valid JSON: ${err.message}`;
      return { ok: false };
    }
  };
  area.addEventListener('input', check);
  return { element: h('label', {}, label, area, problem), check };
}

function textField(label, testid, attrs = {}) {
  const input = h('input', { type: 'text', 'data-testid': testid, ...attrs });
  return { element: h('label', {}, label, input), input };
}

// ---------------------------------------------------------------- channel view

function channelPage(page, channel) {
  const cleanups = [];
  append(page, [
    h('p', { class: 'hint' }, h('a', { href: '#/channels' }, '← Channels')),
    h('h1', { 'data-testid': 'channel-title' }, channel),
  ]);
  const grid = h('div', { class: 'grid' });
  append(page, [grid]);
  cleanups.push(tailPanel(grid, channel));
  publishPanel(grid, channel);
  cleanups.push(presencePanel(page, channel));
  historyPanel(page, channel);
  return () => cleanups.forEach((fn) => fn());
}

function tailPanel(parent, channel) {
  const state = h('span', { 'data-testid': 'tail-state' }, 'connecting…');
  const dot = h('span', { class: 'status-dot' });
  const list = h('ol', { class: 'tail', 'data-testid': 'tail' });
  const error = h('div', { class: 'alert error', role: 'alert' });
  let paused = false;
  let socket = null;
  let closed = false;
  let retry = null;
  const pauseButton = h('button', {
    class: 'secondary small',
    onclick: () => {
      paused = !paused;
      pauseButton.textContent = paused ? 'Resume' : 'Pause';
    },
  }, 'Pause');
  append(parent, [h('section', { class: 'panel' },
    h('div', { class: 'row' }, h('h2', { class: 'grow' }, 'Live tail'), dot, state, pauseButton,
      h('button', { class: 'secondary small', onclick: () => clear(list) }, 'Clear')),
    h('p', { class: 'hint' }, 'Publications appear here as they happen (newest first).'),
    error,
    list)]);

  const setState = (text, cls) => {
    state.textContent = text;
    dot.className = `status-dot ${cls || ''}`;
  };
  const add = (item) => {
    list.prepend(item);
    while (list.children.length > TAIL_KEEP) list.lastChild.remove();
  };
  const connect = () => {
    const url = new URL('admin/tail', BASE);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    socket = new WebSocket(url);
    setState('connecting…');
    socket.onopen = () => socket.send(JSON.stringify({ token: session.token, channel }));
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      if (message.type === 'subscribed') {
        setState('following', 'live');
        error.textContent = '';
        error.className = 'alert error';
      } else if (message.type === 'publication') {
        if (!paused) add(publicationItem(message));
      } else if (message.type === 'dropped') {
        add(h('li', { class: 'notice' }, `${message.count} publication(s) not shown (more than the tail shows per second)`));
      } else if (message.type === 'error') {
        error.textContent = message.message;
      }
    };
    socket.onclose = (event) => {
      socket = null;
      if (closed) return;
      if (event.code === 4001 || event.code === 4002) {
        setState('stopped', 'down');
        if (!session.insecure) endSession('Your session has ended. Please log in again.');
        return;
      }
      setState('disconnected, retrying…', 'down');
      retry = setTimeout(connect, 2000);
    };
  };
  connect();
  return () => {
    closed = true;
    clearTimeout(retry);
    if (socket) socket.close(1000);
  };
}

function publicationItem(pub) {
  const meta = [`${clock(new Date(pub.time))}`];
  if (pub.offset) meta.push(`offset ${pub.offset}`);
  if (pub.info) meta.push(`from ${pub.info.user || '(anonymous)'} / ${pub.info.client}`);
  if (pub.tags) meta.push(`tags ${JSON.stringify(pub.tags)}`);
  const body = pub.b64data !== undefined && pub.data === undefined
    ? h('pre', { class: 'json' }, `base64: ${pub.b64data}`)
    : jsonBlock(pub.data, 'tail-data');
  return h('li', { 'data-testid': 'tail-item' },
    h('div', { class: 'meta' }, meta.map((text) => h('span', {}, text))), body);
}

function publishPanel(parent, channel) {
  const data = jsonField('Data (JSON)', '{\n  "text": "hello"\n}', 'publish-data');
  const result = h('div', { class: 'alert', role: 'status', 'data-testid': 'publish-result' });
  append(parent, [h('section', { class: 'panel' },
    h('h2', {}, 'Publish'),
    h('form', {
      class: 'stack',
      onsubmit: async (event) => {
        event.preventDefault();
        const parsed = data.check();
        if (!parsed.ok) return;
        await attempt(result, () => api('publish', { channel, data: parsed.value }),
          (res) => (res.offset ? `Published at offset ${res.offset}.` : 'Published.'));
      },
    }, data.element, h('div', { class: 'row' }, h('button', { type: 'submit', 'data-testid': 'publish-submit' }, 'Publish'))),
    result)]);
}

function presencePanel(parent, channel) {
  const error = h('div', { class: 'alert error', role: 'alert', 'data-testid': 'presence-error' });
  const notice = h('div', { class: 'alert', role: 'status', 'data-testid': 'presence-notice' });
  const stats = h('span', { class: 'hint', 'data-testid': 'presence-stats' });
  const body = h('tbody', { 'data-testid': 'presence' });
  append(parent, [h('section', { class: 'panel' },
    h('div', { class: 'row' }, h('h2', { class: 'grow' }, 'Presence'), stats),
    error,
    notice,
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'Client'), h('th', {}, 'User'), h('th', {}, 'Connection info'),
        h('th', {}, 'Channel info'), h('th', {}, ''))),
      body)))]);
  const act = async (label, method, params, message) => {
    if (!window.confirm(`${label}?`)) return;
    await attempt(notice, () => api(method, params), message);
    load();
  };
  const load = async () => {
    const statsResult = await attempt(error, () => api('presence_stats', { channel }));
    if (!statsResult) {
      clear(body);
      stats.textContent = '';
      return;
    }
    stats.textContent = `${statsResult.num_clients || 0} client(s), ${statsResult.num_users || 0} user(s)`;
    const result = await attempt(error, () => api('presence', { channel }));
    if (!result) return;
    const entries = Object.values(result.presence || {}).sort((a, b) => (a.user || '').localeCompare(b.user || ''));
    if (!entries.length) {
      clear(body, h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'Nobody is here.')));
      return;
    }
    clear(body, entries.map((info) => h('tr', { 'data-testid': 'presence-row', 'data-user': info.user, 'data-client': info.client },
      h('td', { class: 'mono' }, info.client),
      h('td', { 'data-testid': 'presence-user' }, info.user || '(anonymous)'),
      h('td', {}, info.conn_info === undefined ? '' : jsonBlock(info.conn_info)),
      h('td', {}, info.chan_info === undefined ? '' : jsonBlock(info.chan_info)),
      h('td', {}, h('div', { class: 'row' },
        h('button', {
          class: 'secondary small',
          'data-testid': 'presence-unsubscribe',
          onclick: () => act(`Unsubscribe client ${info.client} from ${channel}`, 'unsubscribe',
            { user: info.user, client: info.client, channel }, 'Unsubscribed.'),
        }, 'Unsubscribe'),
        h('button', {
          class: 'danger small',
          'data-testid': 'presence-disconnect',
          onclick: () => act(`Disconnect client ${info.client} of user "${info.user}"`, 'disconnect',
            { user: info.user, client: info.client }, 'Disconnected.'),
        }, 'Disconnect'))))));
  };
  return every(LIST_EVERY_MS, load);
}

function historyPanel(parent, channel) {
  const error = h('div', { class: 'alert error', role: 'alert', 'data-testid': 'history-error' });
  const notice = h('div', { class: 'alert', role: 'status' });
  const limit = h('input', { type: 'number', min: 1, max: 1000, value: 20, 'aria-label': 'How many' });
  const newest = h('input', { type: 'checkbox', checked: true });
  const position = h('span', { class: 'hint', 'data-testid': 'history-position' });
  const list = h('div', { 'data-testid': 'history' });
  const load = async () => {
    const count = Math.max(1, Math.min(1000, parseInt(limit.value, 10) || 20));
    const result = await attempt(error, () => api('history', { channel, limit: count, reverse: newest.checked }));
    if (!result) {
      clear(list);
      position.textContent = '';
      return;
    }
    position.textContent = result.epoch ? `stream at offset ${result.offset || 0}, epoch ${result.epoch}` : '';
    const pubs = result.publications || [];
    if (!pubs.length) {
      clear(list, h('p', { class: 'empty' }, 'No publications retained.'));
      return;
    }
    clear(list, h('ol', { class: 'tail' }, pubs.map((pub) => h('li', { 'data-testid': 'history-item' },
      h('div', { class: 'meta' }, h('span', {}, `offset ${pub.offset || 0}`),
        pub.tags ? h('span', {}, `tags ${JSON.stringify(pub.tags)}`) : null,
        pub.info ? h('span', {}, `from ${pub.info.user || '(anonymous)'} / ${pub.info.client}`) : null),
      jsonBlock(pub.data)))));
  };
  const remove = async () => {
    if (!window.confirm(`Remove the history of ${channel}? Retained publications are deleted; the stream position stays.`)) return;
    await attempt(notice, () => api('history_remove', { channel }), 'History removed.');
    load();
  };
  append(parent, [h('section', { class: 'panel' },
    h('div', { class: 'row' }, h('h2', { class: 'grow' }, 'History'), position),
    h('div', { class: 'row' },
      h('label', { class: 'inline' }, 'Last', limit),
      h('label', { class: 'inline' }, newest, 'newest first'),
      h('button', { class: 'secondary', onclick: load, 'data-testid': 'history-load' }, 'Load'),
      h('button', { class: 'danger', onclick: remove, 'data-testid': 'history-remove' }, 'Remove history')),
    error,
    notice,
    list)]);
  load();
}

// ---------------------------------------------------------------- actions

function actionForm(title, testid, fields, submit, note) {
  const result = h('div', { class: 'alert', role: 'status', 'data-testid': `${testid}-result` });
  const button = h('button', { type: 'submit', 'data-testid': `${testid}-submit` }, title);
  const form = h('form', {
    class: 'stack',
    onsubmit: async (event) => {
      event.preventDefault();
      button.disabled = true;
      try {
        await submit(result);
      } finally {
        button.disabled = false;
      }
    },
  }, fields, h('div', { class: 'row' }, button));
  return h('section', { class: 'panel', 'data-testid': testid },
    h('h2', {}, title), note ? h('p', { class: 'hint' }, note) : null, form, result);
}

function required(result, pairs) {
  for (const [value, name] of pairs) {
    if (!value) {
      result.className = 'alert error';
      result.textContent = `${name} is required.`;
      return false;
    }
  }
  return true;
}

function actionsPage(page) {
  const pub = {
    channel: textField('Channel', 'action-publish-channel'),
    data: jsonField('Data (JSON)', '{\n  "text": "hello"\n}', 'action-publish-data'),
    tags: jsonField('Tags (optional JSON object of strings)', '', 'action-publish-tags', { allowEmpty: true }),
    skip: h('input', { type: 'checkbox' }),
  };
  const bc = {
    channels: textField('Channels (separated by spaces, commas or new lines)', 'action-broadcast-channels'),
    data: jsonField('Data (JSON)', '{\n  "text": "hello everyone"\n}', 'action-broadcast-data'),
  };
  const sub = {
    user: textField('User ID', 'action-subscribe-user'),
    channel: textField('Channel', 'action-subscribe-channel'),
  };
  const unsub = {
    user: textField('User ID', 'action-unsubscribe-user'),
    channel: textField('Channel', 'action-unsubscribe-channel'),
    client: textField('Client ID (optional: only this connection)', 'action-unsubscribe-client'),
  };
  const disc = {
    user: textField('User ID', 'action-disconnect-user'),
    client: textField('Client ID (optional: only this connection)', 'action-disconnect-client'),
    code: textField('Code (optional, 3000–4999; default 3503 force disconnect; 4000–4499 let the client reconnect)', 'action-disconnect-code', { inputmode: 'numeric' }),
    reason: textField('Reason (optional)', 'action-disconnect-reason'),
  };
  append(page, [
    h('h1', {}, 'Actions'),
    h('div', { class: 'grid' },
      actionForm('Publish', 'action-publish', [pub.channel.element, pub.data.element, pub.tags.element,
        h('label', { class: 'inline' }, pub.skip, 'skip history')], async (result) => {
        const data = pub.data.check();
        const tags = pub.tags.check();
        const channel = pub.channel.input.value.trim();
        if (!data.ok || !tags.ok || !required(result, [[channel, 'Channel']])) return;
        if (tags.value !== undefined && (typeof tags.value !== 'object' || Array.isArray(tags.value)
            || Object.values(tags.value).some((v) => typeof v !== 'string'))) {
          result.className = 'alert error';
          result.textContent = 'Tags must be an object whose values are strings.';
          return;
        }
        const params = { channel, data: data.value };
        if (tags.value) params.tags = tags.value;
        if (pub.skip.checked) params.skip_history = true;
        await attempt(result, () => api('publish', params),
          (res) => (res.offset ? `Published at offset ${res.offset} (epoch ${res.epoch}).` : 'Published.'));
      }),
      actionForm('Broadcast', 'action-broadcast', [bc.channels.element, bc.data.element], async (result) => {
        const data = bc.data.check();
        const channels = bc.channels.input.value.split(/[\s,]+/).filter(Boolean);
        if (!data.ok || !required(result, [[channels.length, 'At least one channel']])) return;
        const res = await attempt(result, () => api('broadcast', { channels, data: data.value }));
        if (!res) return;
        const failed = (res.responses || []).map((r, i) => [channels[i], r.error]).filter(([, e]) => e);
        if (failed.length) {
          result.className = 'alert error';
          result.textContent = failed.map(([c, e]) => `${c}: error ${e.code}: ${e.message}`).join('; ');
        } else {
          result.className = 'alert ok';
          result.textContent = `Published into ${channels.length} channel(s).`;
        }
      }),
      actionForm('Subscribe a user', 'action-subscribe', [sub.user.element, sub.channel.element], async (result) => {
        const user = sub.user.input.value.trim();
        const channel = sub.channel.input.value.trim();
        if (!required(result, [[channel, 'Channel']])) return;
        await attempt(result, () => api('subscribe', { user, channel }), 'Subscribed (connections of an offline user are not affected).');
      }, 'Subscribes every connection of the user, on every node, to the channel.'),
      actionForm('Unsubscribe a user', 'action-unsubscribe', [unsub.user.element, unsub.channel.element, unsub.client.element], async (result) => {
        const user = unsub.user.input.value.trim();
        const channel = unsub.channel.input.value.trim();
        const client = unsub.client.input.value.trim();
        if (!required(result, [[channel, 'Channel']])) return;
        const params = { user, channel };
        if (client) params.client = client;
        await attempt(result, () => api('unsubscribe', params), 'Unsubscribed.');
      }),
      actionForm('Disconnect a user', 'action-disconnect', [disc.user.element, disc.client.element, disc.code.element, disc.reason.element], async (result) => {
        const user = disc.user.input.value.trim();
        const client = disc.client.input.value.trim();
        const code = disc.code.input.value.trim();
        const reason = disc.reason.input.value.trim();
        if (!required(result, [[user || client, 'User ID or client ID']])) return;
        const params = { user };
        if (client) params.client = client;
        if (code) {
          const number = Number(code);
          if (!Number.isInteger(number) || number < 3000 || number > 4999) {
            result.className = 'alert error';
            result.textContent = 'Code must be a whole number between 3000 and 4999.';
            return;
          }
          params.disconnect = { code: number, reason: reason || 'disconnected by admin' };
        }
        if (!window.confirm(`Disconnect ${client ? `client ${client}` : `every connection of user "${user}"`}?`)) return;
        await attempt(result, () => api('disconnect', params), 'Disconnected.');
      })),
  ]);
  return () => {};
}

// ---------------------------------------------------------------- config

function configPage(page) {
  const error = h('div', { class: 'alert error', role: 'alert' });
  const holder = h('div', { 'data-testid': 'config' });
  append(page, [
    h('h1', {}, 'Configuration'),
    h('section', { class: 'panel' },
      h('p', { class: 'hint' }, 'The configuration this node runs with. Keys, passwords and secrets are masked as ********.'),
      error,
      holder),
  ]);
  attempt(error, async () => {
    const response = await request('admin/config');
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const block = jsonBlock(await response.json(), 'config-json');
    block.classList.add('full');
    clear(holder, block);
  });
  return () => {};
}

// ---------------------------------------------------------------- start

async function start() {
  window.addEventListener('hashchange', route);
  loadSession();
  let init = { insecure: false, authenticated: false };
  try {
    const response = await fetch(new URL('admin/init', BASE), { headers: authHeaders(), cache: 'no-store' });
    init = await response.json();
  } catch (err) {
    clear(document.getElementById('app'), h('p', { class: 'boot alert error' }, `The server cannot be reached: ${err.message}`));
    return;
  }
  session.insecure = Boolean(init.insecure);
  setInterval(renewToken, 60 * 1000);
  if (session.insecure || init.authenticated) {
    showShell();
  } else {
    session.token = '';
    saveSession();
    showLogin('');
  }
}

start();
