// The browser client of the real-time protocol (docs/protocol.md): one WebSocket, many channels.
//
// Guarantees it adds on top of the server's: every durable message (one with a `seq`) reaches the
// channel's handler exactly once and in order, across reconnects — the client remembers the last
// `seq` per channel, resubscribes with `since`, and drops anything at or below it. When the server
// cannot fill the gap (`reset`), the channel's `onReset` reloads state over REST.
//
// Events (EventTarget): `state` (detail: {state, retryIn}) with state one of
//   connecting | open | reconnecting | offline | closed;
// `fatal` (detail: {code, message}) when retrying cannot help (bad or expired token);
// `publication` (detail: the message) after a channel's handler took it, once per message.

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15000;
const PING_EVERY_MS = 15000;
const PONG_TIMEOUT_MS = 8000;
const RPC_TIMEOUT_MS = 15000;
const REFRESH_BEFORE_S = 60;
const FATAL_CLOSE = new Set([4001, 4010]);

export class RpcFailure extends Error {
  /** `extra`: the refusal's further fields (`retry_after`, the `choices` a vote kept...);
   * `retryAfter` is its `retry_after` (seconds) or null. */
  constructor(code, message, extra = {}) {
    super(message);
    Object.assign(this, extra);
    this.code = code;
    this.retryAfter = Number.isFinite(extra.retry_after) ? extra.retry_after : null;
  }
}

export class RealtimeClient extends EventTarget {
  /**
   * @param {object} options
   * @param {() => Promise<string>} options.getToken  the current access token (may refresh it)
   * @param {string} [options.url]  defaults to /ws on this origin
   */
  constructor({ getToken, url }) {
    super();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.url = url || `${scheme}//${location.host}/ws`;
    this.getToken = getToken;
    this.channels = new Map(); // name -> {last, handlers}
    this.pending = new Map(); // rpc id -> {resolve, reject, timer}
    this.nextId = 1;
    this.attempt = 0;
    this.ws = null;
    this.state = "closed";
    this.stopped = true;
    this.timers = {};
    this.user = null;
    this._online = () => this._reconnectNow();
    this._offline = () => this._drop();
  }

  /** Start connecting; reconnects by itself until close(). */
  start() {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener("online", this._online);
    window.addEventListener("offline", this._offline);
    this._connect();
  }

  close() {
    this.stopped = true;
    window.removeEventListener("online", this._online);
    window.removeEventListener("offline", this._offline);
    this._clearTimers();
    if (this.ws) this.ws.close(1000, "bye");
    this.ws = null;
    this._setState("closed");
  }

  /**
   * Follow a channel. handlers: onMessage(msg), onSubscribed(msg, {resumed}), onReset(msg),
   * onRefused({code, message}) (also after a ban: the socket is closed with 4003, and the
   * resubscribe after reconnecting is refused with `banned`).
   */
  subscribe(channel, handlers) {
    this.channels.set(channel, { last: null, handlers, active: false });
    if (this.state === "open") this._sendSubscribe(channel);
  }

  unsubscribe(channel) {
    if (this.channels.delete(channel) && this.state === "open") {
      this._send({ type: "unsubscribe", channel });
    }
  }

  /** Call a live action; resolves with its result or rejects with an RpcFailure. */
  rpc(method, params = {}) {
    if (this.state !== "open") {
      return Promise.reject(new RpcFailure("offline", "Not connected. Try again once the connection is back."));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RpcFailure("timeout", "The server did not answer in time. Try again."));
      }, RPC_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this._send({ type: "rpc", id, method, params });
    });
  }

  // -- connection --------------------------------------------------------------------------------

  _setState(state, extra = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, ...extra } }));
  }

  async _connect() {
    if (this.stopped) return;
    this._setState(this.attempt === 0 ? "connecting" : "reconnecting");
    let token;
    try {
      token = await this.getToken();
    } catch (err) {
      this._fatal(err.code || "token_invalid", err.message || "You are signed out.");
      return;
    }
    if (this.stopped) return;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => this._send({ type: "auth", token });
    ws.onmessage = (event) => this._receive(event.data);
    ws.onclose = (event) => this._closed(ws, event);
    ws.onerror = () => {}; // onclose follows and decides
  }

  _closed(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    this._clearTimers();
    for (const [, call] of this.pending) {
      clearTimeout(call.timer);
      call.reject(new RpcFailure("disconnected", "The connection dropped before the server answered."));
    }
    this.pending.clear();
    for (const [, ch] of this.channels) ch.active = false;
    if (this.stopped) return;
    if (FATAL_CLOSE.has(event.code)) {
      this._fatal(this.lastError?.code || "token_invalid", this.lastError?.message || event.reason);
      return;
    }
    if (!navigator.onLine) {
      this._setState("offline");
      return; // the `online` event reconnects
    }
    this._scheduleReconnect();
  }

  /** Give up the current socket (network gone, or no pong) and let _closed decide what follows. */
  _drop() {
    if (this.stopped) return;
    const ws = this.ws;
    if (ws) {
      ws.onclose = null;
      ws.close();
      this._closed(ws, { code: 1006 });
    } else if (!navigator.onLine) {
      this._clearTimers();
      this._setState("offline");
    }
  }

  _reconnectNow() {
    if (this.stopped || this.ws) return;
    this._clearTimers();
    this._connect();
  }

  _scheduleReconnect() {
    // Exponential backoff with full jitter, so a restarted server is not hit by everyone at once.
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = Math.round(cap / 2 + Math.random() * (cap / 2));
    this.attempt += 1;
    this._setState("reconnecting", { retryIn: delay });
    this.timers.reconnect = setTimeout(() => this._connect(), delay);
  }

  _fatal(code, message) {
    this.stopped = true;
    this._clearTimers();
    this._setState("closed");
    this.dispatchEvent(new CustomEvent("fatal", { detail: { code, message } }));
  }

  _clearTimers() {
    for (const key of Object.keys(this.timers)) {
      clearTimeout(this.timers[key]);
      clearInterval(this.timers[key]);
    }
    this.timers = {};
  }

  _send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  _heartbeat() {
    this.timers.ping = setInterval(() => {
      this._send({ type: "ping" });
      clearTimeout(this.timers.pong);
      this.timers.pong = setTimeout(() => this._drop(), PONG_TIMEOUT_MS);
    }, PING_EVERY_MS);
  }

  _scheduleRefresh(exp) {
    const inMs = (exp - REFRESH_BEFORE_S) * 1000 - Date.now();
    if (inMs <= 0) return;
    this.timers.refresh = setTimeout(async () => {
      try {
        const token = await this.getToken({ force: true });
        this._send({ type: "refresh", token });
      } catch (err) {
        // keep going with the current token; the server says token_expired when it lapses
      }
    }, Math.min(inMs, 2 ** 31 - 1));
  }

  // -- receiving ---------------------------------------------------------------------------------

  _receive(raw) {
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch (err) {
      return;
    }
    switch (msg.type) {
      case "welcome":
        this.attempt = 0;
        this.user = msg.user;
        this._setState("open");
        this._heartbeat();
        this._scheduleRefresh(msg.exp);
        for (const name of this.channels.keys()) this._sendSubscribe(name);
        return;
      case "refreshed":
        clearTimeout(this.timers.refresh);
        this._scheduleRefresh(msg.exp);
        return;
      case "pong":
        clearTimeout(this.timers.pong);
        return;
      case "subscribed":
        return this._subscribed(msg);
      case "unsubscribed":
        return; // the reply to our own unsubscribe (a ban closes the socket with 4003 instead)
      case "rpc_result":
      case "rpc_error":
        return this._rpcReply(msg);
      case "error":
        return this._error(msg);
      case "token_expired":
        this.lastError = { code: "token_expired", message: "Your sign-in has expired." };
        return;
      default:
        return this._publication(msg);
    }
  }

  _sendSubscribe(name) {
    const ch = this.channels.get(name);
    const msg = { type: "subscribe", channel: name };
    if (ch.last !== null) msg.since = ch.last;
    this._send(msg);
  }

  _subscribed(msg) {
    const ch = this.channels.get(msg.channel);
    if (!ch) return;
    const resumed = ch.last !== null && !msg.reset;
    ch.active = true;
    if (msg.reset && ch.last !== null) {
      ch.last = msg.seq;
      ch.handlers.onReset?.(msg);
      return;
    }
    ch.handlers.onSubscribed?.(msg, { resumed });
    // A first subscribe starts at the current position; a resumed one keeps its own, because the
    // missed messages (seq > last) follow this reply.
    if (ch.last === null) ch.last = msg.seq;
  }

  _error(msg) {
    if (msg.channel && this.channels.has(msg.channel)) {
      const ch = this.channels.get(msg.channel);
      if (msg.code === "already_subscribed") return;
      if (msg.code === "unavailable") {
        setTimeout(() => this.state === "open" && this._sendSubscribe(msg.channel), 1000);
        return;
      }
      this.channels.delete(msg.channel);
      ch.handlers.onRefused?.({ code: msg.code, message: msg.message });
      return;
    }
    this.lastError = { code: msg.code, message: msg.message };
  }

  _rpcReply(msg) {
    const call = this.pending.get(msg.id);
    if (!call) return;
    this.pending.delete(msg.id);
    clearTimeout(call.timer);
    if (msg.type === "rpc_result") call.resolve(msg.result);
    else {
      const { code, message, ...extra } = msg.error;
      call.reject(new RpcFailure(code, message, extra));
    }
  }

  _publication(msg) {
    const ch = this.channels.get(msg.channel);
    if (!ch) return;
    if (typeof msg.seq === "number") {
      if (ch.last !== null && msg.seq <= ch.last) return; // already seen: never apply twice
      ch.last = msg.seq;
    }
    ch.handlers.onMessage?.(msg);
    // for a second reader of a channel (the room page follows its own user channel beside the bell)
    this.dispatchEvent(new CustomEvent("publication", { detail: msg }));
  }
}

/** The JSON API: `api(path, {method, body, token})`; rejects with an Error carrying code and status. */
export async function api(path, { method = "GET", body, token, headers: extra = {} } = {}) {
  const headers = { ...extra };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    const failure = new Error("The server cannot be reached. Check your connection and try again.");
    failure.code = "unreachable";
    failure.status = 0;
    throw failure;
  }
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const error = (data && data.error) || {};
    const failure = new Error(error.message || `Request failed (${response.status})`);
    failure.code = error.code || "error";
    failure.status = response.status;
    throw failure;
  }
  return data;
}

/** The claims of a JWT, read without verifying (the server verifies); null if malformed. */
export function readToken(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      Array.from(atob(part), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
    );
    return JSON.parse(json);
  } catch (err) {
    return null;
  }
}
