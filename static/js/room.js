// The attendee room at /join/<webinar_id>#token=<jwt>: lobby, then the live room, then the end.
import { RealtimeClient, api, readToken } from "./realtime.js";
import { $, act, el, fill, longDate, say, show } from "./dom.js";
import { mountBell } from "./bell.js";
import { mountChat } from "./chat.js";
import { mountConnectionState } from "./connection.js";
import { mountPlayer } from "./player.js";
import { mountReactions } from "./reactions.js";
import { mountTabs } from "./tabs.js";
import { createPolls } from "./room-polls.js";
import { createQa } from "./room-qa.js";
import { createStage } from "./room-stage.js";
import { mountThanks } from "./thanks.js";

const REACTIONS = ["👍", "👏", "❤️", "😂", "😮", "🎉"];
const webinarId = decodeURIComponent(location.pathname.split("/")[2] || "");
const storageKey = `join:${webinarId}`;

const REFUSALS = {
  banned: "You have been removed from this webinar by a host.",
  forbidden: "This join link does not admit you to this webinar. Register on the webinar's page first.",
  not_found: "There is no such webinar. Check your link.",
  token_expired: "Your join link has expired. Register again to get a new one.",
  token_invalid: "This join link is not valid. Open the link exactly as you received it.",
  webinar_ended: "This webinar has ended.",
  webinar_cancelled: "This webinar was cancelled.",
};

const state = {
  token: null,
  claims: null,
  webinar: null,
  role: null, // the snapshot's: host, cohost, panelist or attendee
  client: null,
  polls: null, // room-polls.js
  qa: null, // room-qa.js
  stage: null, // room-stage.js: hand, mute, announcements
  countdownTimer: null,
  playerUrl: null,
  chat: null,
  reactions: null,
};

function fatal(text) {
  say($("#fatal"), text, "error");
  show($("#lobby"), false);
  show($("#live"), false);
  if (state.client) state.client.close();
}

function takeToken() {
  // The token arrives in the fragment (never sent to servers); keep it for reloads of this tab and
  // take it out of the address bar so it is not shared or bookmarked by accident.
  const params = new URLSearchParams(location.hash.slice(1));
  const fromLink = params.get("token");
  if (fromLink) {
    sessionStorage.setItem(storageKey, fromLink);
    history.replaceState(null, "", location.pathname + location.search);
    return fromLink;
  }
  return sessionStorage.getItem(storageKey);
}

// -- lifecycle views ---------------------------------------------------------------------------------

function render(webinar) {
  state.webinar = { ...(state.webinar || {}), ...webinar };
  const w = state.webinar;
  document.title = w.title || "Webinar";
  $("#webinar-title").textContent = w.title || "";
  show($("#lobby"), w.status === "scheduled");
  show($("#live"), w.status === "live");
  show($("#ended"), w.status === "ended");
  if (w.status === "cancelled") fatal(REFUSALS.webinar_cancelled);
  const slow = Number(w.slow_mode_seconds || 0);
  $("#slow-note").textContent = slow ? `Slow mode is on: one message every ${slow} s.` : "";
  show($("#slow-note"), slow > 0);
  if (w.status === "scheduled") renderLobby(w);
  else clearInterval(state.countdownTimer);
  if (w.status === "live" && state.playerUrl !== (w.stream_url || "")) {
    state.playerUrl = w.stream_url || "";
    mountPlayer($("#player"), state.playerUrl);
  }
  if (w.status === "ended") {
    state.client?.close();
    mountThanks({ webinarId, token: state.token, webinar: w }); // static/js/thanks.js
  }
}

function renderLobby(w) {
  $("#lobby-title").textContent = w.title;
  $("#lobby-when").textContent = `${longDate(w.starts_at)} · ${w.duration_minutes} min`;
  $("#lobby-description").textContent = w.description || "";
  // A registrant's own link (scoped to this webinar) also leads to its cancel page.
  const own = state.claims?.role === "attendee" && state.claims.wid === webinarId;
  if (own) $("#cancel-link").href = `/cancel/${encodeURIComponent(webinarId)}#token=${encodeURIComponent(state.token)}`;
  show($("#lobby-cancel"), own);
  clearInterval(state.countdownTimer);
  const tick = () => {
    const left = Math.round((new Date(w.starts_at).getTime() - Date.now()) / 1000);
    $("#countdown").textContent = left > 0 ? `Starts in ${duration(left)}` : "Starting any moment now…";
  };
  tick();
  state.countdownTimer = setInterval(tick, 1000);
}

function duration(seconds) {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (d) return `${d} d ${h} h ${m} min`;
  if (h) return `${h} h ${m} min ${s} s`;
  return `${m} min ${String(s).padStart(2, "0")} s`;
}

// -- chat --------------------------------------------------------------------------------------------

function addChat(m) {
  state.chat?.add(m); // static/js/chat.js keeps the reader's place
}

// -- stage: reactions, presence (hand, mute, announcements: room-stage.js) -------------------------

function showReactions(counts) {
  state.reactions?.show(counts); // static/js/reactions.js: a tally and floating emoji
}

function setCount(count) {
  const node = $("#attendees");
  node.textContent = `👥 ${count}`;
  node.setAttribute("aria-label", `${count} ${count === 1 ? "person" : "people"} in the room`);
  node.dataset.count = String(count);
  show(node);
}

// -- the room channel --------------------------------------------------------------------------------

function applyState(snapshot, { fresh }) {
  if (snapshot.webinar) render(snapshot.webinar);
  if (fresh) {
    state.chat?.clear();
    state.polls.clear();
  }
  // the history is shown, not replayed: its announcements never flash in the banner; and the
  // snapshot's state comes after it, as it is newer (a poll's counts, say)
  if (fresh) for (const m of snapshot.recent || []) onRoomMessage(m, { replay: true });
  applyMine(snapshot);
  for (const poll of snapshot.open_polls || []) state.polls.upsert(poll);
  if (snapshot.pinned_question) state.qa.upsert(snapshot.pinned_question);
}

/** The snapshot's own state (`me`: votes, hand, mute, my questions, upvotes), role and announcements. */
function applyMine(snapshot) {
  state.stage.setSnapshot(snapshot);
  if (snapshot.role) setRole(snapshot.role);
  if (snapshot.me) {
    state.polls.setVotes(snapshot.me.votes);
    state.qa.setMe(snapshot.me);
  }
}

const ROLE_NOTES = {
  panelist: "You are a panelist: your chat messages carry a Panelist badge, and you can answer questions in Q&A.",
  cohost: "You are a co-host: run the webinar from the host console.",
  host: "You are the host: run the webinar from the host console.",
};

/** My role in the webinar as the server sees it (the snapshot's `role`): a note and Q&A answering. */
function setRole(role) {
  state.role = role;
  $("#role-note").textContent = ROLE_NOTES[role] || "";
  show($("#role-note"), Boolean(ROLE_NOTES[role]));
  state.qa.setRole(role);
}

/** Messages on my own channel about this room (the bell reads the same channel for notifications). */
function followMine(client) {
  const mine = `user:${state.claims.sub}`;
  client.addEventListener("publication", ({ detail: msg }) => {
    if (msg.channel !== mine || !msg.data || msg.data.webinar_id !== webinarId) return;
    if (msg.type === "qa.mine") state.qa.upsertMine(msg.data);
    else state.stage.onMine(msg);
  });
}

function onRoomMessage(msg, { replay = false } = {}) {
  const d = msg.data;
  switch (msg.type) {
    case "chat.message":
      return addChat(d);
    case "chat.deleted":
      return state.chat?.remove(d.id);
    case "qa.question":
    case "qa.updated":
      return state.qa.upsert(d);
    case "poll.opened":
    case "poll.closed":
    case "poll.results":
      return state.polls.upsert(d);
    case "announcement":
      return state.stage.announce(d, { banner: !replay });
    case "reactions":
      return showReactions(d.counts || {});
    case "presence":
      return setCount(d.count);
    case "webinar.live":
      render(d);
      state.qa.load();
      return;
    case "webinar.ended":
    case "webinar.updated":
      return render(d);
    default:
      return undefined;
  }
}

async function reloadRoom() {
  const snapshot = await api(`/api/webinars/${encodeURIComponent(webinarId)}/state`, { token: state.token });
  applyState(snapshot, { fresh: true });
  await state.qa.load();
}

function joinRoom() {
  const client = state.client;
  client.subscribe(`room:${webinarId}`, {
    onSubscribed: (msg, { resumed }) => {
      say($("#fatal"), "");
      if (msg.state) applyState(msg.state, { fresh: !resumed });
      if (!resumed) {
        state.qa.load();
        api(`/api/channels/room:${encodeURIComponent(webinarId)}/presence?limit=1`, { token: state.token })
          .then((p) => setCount(p.count))
          .catch(() => {});
      }
    },
    onReset: () => reloadRoom().catch((err) => say($("#fatal"), err.message, "error")),
    onMessage: onRoomMessage,
    onRefused: ({ code, message }) => fatal(REFUSALS[code] || message),
  });
}

// -- controls ----------------------------------------------------------------------------------------

function wireControls() {
  const rpc = (method, params) => state.client.rpc(method, { webinar_id: webinarId, ...params });
  state.chat = mountChat({
    list: $("#chat"),
    form: $("#chat-form"),
    input: $("#chat-text"),
    counter: $("#chat-count"),
    status: $("#chat-status"),
    newer: $("#chat-newer"),
    maxChars: Number($("#chat-text").dataset.maxChars) || 500,
    userId: state.claims.sub,
    send: (text) => rpc("chat.send", { text }),
  });
  state.reactions = mountReactions($("#reaction-feed"), $("#reaction-layer"));

  state.qa.wire();
  state.stage.wire();

  const bar = $("#reactions");
  for (const emoji of REACTIONS) {
    const button = el("button", { type: "button", class: "reaction", "aria-label": `React ${emoji}` }, emoji);
    button.addEventListener("click", () => rpc("reaction.send", { emoji }).catch(() => {}));
    bar.append(button);
  }

  rememberTabs();
}

/** The selected panel (Chat, Q&A, Polls) survives a reload of this tab. */
function rememberTabs() {
  const key = `room:${webinarId}:tab`;
  const select = mountTabs($(".tabs"), (id) => {
    sessionStorage.setItem(key, id);
    if (id === "tab-polls") show($("#poll-dot"), false);
  });
  const saved = document.getElementById(sessionStorage.getItem(key) || "");
  if (saved && saved.getAttribute("role") === "tab") select(saved);
}

// -- start -------------------------------------------------------------------------------------------

async function main() {
  state.token = takeToken();
  if (!state.token) return fatal("This join link is incomplete. Open the link exactly as you received it.");
  state.claims = readToken(state.token);
  if (!state.claims) return fatal(REFUSALS.token_invalid);
  if (state.claims.exp * 1000 < Date.now()) return fatal(REFUSALS.token_expired);
  try {
    render(await api(`/api/webinars/${encodeURIComponent(webinarId)}`));
  } catch (err) {
    if (err.code === "unreachable") {
      say($("#fatal"), "The server cannot be reached. This page keeps trying.", "error");
    } else {
      return fatal(err.status === 404 ? REFUSALS.not_found : err.message);
    }
  }
  if (state.webinar && (state.webinar.status === "ended" || state.webinar.status === "cancelled")) return;

  const client = new RealtimeClient({ getToken: async () => state.token });
  state.client = client;
  mountConnectionState($("#connection"), client);
  client.addEventListener("fatal", (event) => fatal(REFUSALS[event.detail.code] || event.detail.message));
  const rpc = (method, params) => client.rpc(method, { webinar_id: webinarId, ...params });
  state.polls = createPolls({ rpc });
  state.qa = createQa({ rpc, api, webinarId, token: state.token });
  state.stage = createStage({ rpc, webinarId });
  wireControls();
  // my own channel first: the connection subscribes in this order, so no change of my state
  // between the room's snapshot (`me`) and live delivery is missed
  mountBell($("#bell"), { client, userId: state.claims.sub, getToken: async () => state.token });
  followMine(client);
  joinRoom();
  client.start();
}

main();
