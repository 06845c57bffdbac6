// The attendee room at /join/<webinar_id>#token=<jwt>: lobby, then the live room, then the end.
import { RealtimeClient, api, readToken } from "./realtime.js";
import { $, act, el, fill, longDate, say, show } from "./dom.js";
import { mountBell } from "./bell.js";
import { mountChat } from "./chat.js";
import { mountConnectionState } from "./connection.js";
import { mountPlayer } from "./player.js";
import { mountReactions } from "./reactions.js";
import { mountTabs } from "./tabs.js";
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
  client: null,
  questions: new Map(),
  polls: new Map(),
  voted: new Set(),
  handRaised: false,
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

// -- Q&A ---------------------------------------------------------------------------------------------

function upsertQuestion(q) {
  state.questions.set(q.id, { ...(state.questions.get(q.id) || {}), ...q });
  renderQuestions();
}

function renderQuestions() {
  const items = [...state.questions.values()]
    .filter((q) => q.approved !== false && q.status !== "dismissed")
    .sort((a, b) => (b.pinned ? 1 : 0) - (a.pinned ? 1 : 0) || b.votes - a.votes || a.created_at.localeCompare(b.created_at));
  fill(
    $("#questions"),
    items.map((q) => {
      const answered = q.status === "answered";
      const upvote = el(
        "button",
        { type: "button", class: "vote", "aria-label": `Upvote: ${q.text}`, disabled: q.voted ? true : undefined },
        `▲ ${q.votes}`,
      );
      upvote.addEventListener("click", () =>
        act(upvote, $("#qa-status"), async () => {
          await state.client.rpc("qa.upvote", { webinar_id: webinarId, question_id: q.id });
          const current = state.questions.get(q.id);
          if (current) current.voted = true;
          upvote.disabled = true;
        }),
      );
      return el(
        "li",
        { dataset: { id: q.id }, class: [answered ? "answered" : "", q.pinned ? "pinned" : ""].join(" ") },
        upvote,
        el(
          "div",
          { class: "q-body" },
          el("p", { class: "text" }, q.text),
          el("p", { class: "meta" }, q.name, q.pinned ? " · 📌 Pinned" : "", answered ? " · ✔ Answered" : ""),
          answered && q.answer ? el("p", { class: "answer" }, q.answer) : null,
          answered && !q.answer ? el("p", { class: "answer muted" }, "Answered live") : null,
        ),
      );
    }),
  );
  const pinned = items.find((q) => q.pinned);
  show($("#pinned"), Boolean(pinned));
  $("#pinned").textContent = pinned ? `📌 ${pinned.text}` : "";
}

async function loadQuestions() {
  try {
    const data = await api(`/api/webinars/${encodeURIComponent(webinarId)}/questions`, { token: state.token });
    state.questions.clear();
    for (const q of data.questions) state.questions.set(q.id, q);
    renderQuestions();
  } catch (err) {
    if (err.status !== 409) say($("#qa-status"), err.message, "error");
  }
}

// -- polls -------------------------------------------------------------------------------------------

function upsertPoll(poll) {
  const before = state.polls.get(poll.id);
  state.polls.set(poll.id, { ...(before || {}), ...poll });
  renderPolls();
  if (!before && poll.status === "open" && $("#panel-polls").hidden) show($("#poll-dot"));
}

function renderPolls() {
  const polls = [...state.polls.values()].filter((p) => p.status === "open" || (p.status === "closed" && p.show_results));
  show($("#polls-empty"), polls.length === 0);
  fill($("#polls"), polls.map(pollCard));
}

function pollCard(poll) {
  const voted = state.voted.has(poll.id);
  const status = el("p", { class: "status", role: "status", hidden: true });
  const card = el(
    "form",
    { class: "poll card", dataset: { id: poll.id }, "aria-label": `Poll: ${poll.question}` },
    el("h3", {}, poll.question),
  );
  const total = poll.voters || 0;
  const fieldset = el("fieldset", { disabled: voted || poll.status !== "open" ? true : undefined });
  fieldset.append(el("legend", { class: "sr-only" }, poll.question));
  for (const option of poll.options) {
    const id = `poll-${poll.id}-${option.id}`;
    const count = poll.counts ? poll.counts[option.id] || 0 : null;
    const pct = count !== null && total ? Math.round((100 * count) / total) : 0;
    fieldset.append(
      el(
        "div",
        { class: "option" },
        el("input", {
          type: poll.multiple ? "checkbox" : "radio",
          name: `poll-${poll.id}`,
          id,
          value: option.id,
        }),
        el("label", { for: id }, option.text),
        count !== null
          ? el(
              "span",
              { class: "result", "data-testid": "poll-result" },
              el("span", { class: "bar", style: undefined, dataset: { pct: String(pct) } }),
              `${count} (${pct}%)`,
            )
          : null,
      ),
    );
  }
  card.append(fieldset);
  for (const bar of card.querySelectorAll(".bar")) bar.style.width = `${bar.dataset.pct}%`;
  if (poll.status === "open" && !voted) card.append(el("button", { type: "submit" }, "Vote"));
  if (voted) card.append(el("p", { class: "muted" }, "Thanks, your vote is in."));
  if (poll.status === "closed") card.append(el("p", { class: "muted" }, "This poll is closed."));
  if (poll.counts) card.append(el("p", { class: "muted" }, `${total} ${total === 1 ? "vote" : "votes"}`));
  card.append(status);
  card.addEventListener("submit", (event) => {
    event.preventDefault();
    const choices = [...card.querySelectorAll("input:checked")].map((i) => i.value);
    if (!choices.length) return say(status, "Pick an option first.", "error");
    act(card.querySelector("button[type=submit]"), status, async () => {
      try {
        await state.client.rpc("poll.vote", { webinar_id: webinarId, poll_id: poll.id, choices });
      } catch (err) {
        if (err.code !== "already_voted") throw err;
      }
      state.voted.add(poll.id);
      renderPolls();
    });
  });
  return card;
}

// -- stage: announcement, reactions, hand, presence ------------------------------------------------

function announce(a) {
  if (!a) return;
  $("#announcement-text").textContent = a.text;
  show($("#announcement"));
}

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
  for (const poll of snapshot.open_polls || []) upsertPoll(poll);
  if (snapshot.announcement) announce(snapshot.announcement);
  if (snapshot.pinned_question) upsertQuestion(snapshot.pinned_question);
  if (fresh) for (const m of snapshot.recent || []) onRoomMessage(m);
}

function onRoomMessage(msg) {
  const d = msg.data;
  switch (msg.type) {
    case "chat.message":
      return addChat(d);
    case "chat.deleted":
      return state.chat?.remove(d.id);
    case "qa.question":
    case "qa.updated":
      return upsertQuestion(d);
    case "poll.opened":
    case "poll.closed":
    case "poll.results":
      return upsertPoll(d);
    case "announcement":
      return announce(d);
    case "reactions":
      return showReactions(d.counts || {});
    case "presence":
      return setCount(d.count);
    case "webinar.live":
      render(d);
      loadQuestions();
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
  await loadQuestions();
}

function joinRoom() {
  const client = state.client;
  client.subscribe(`room:${webinarId}`, {
    onSubscribed: (msg, { resumed }) => {
      say($("#fatal"), "");
      if (msg.state) applyState(msg.state, { fresh: !resumed });
      if (!resumed) {
        loadQuestions();
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

  $("#qa-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("#qa-text").value.trim();
    if (!text) return say($("#qa-status"), "Type your question first.", "error");
    act(event.target.querySelector("button"), $("#qa-status"), async () => {
      const q = await rpc("qa.ask", { text, anonymous: $("#qa-anon").checked });
      $("#qa-text").value = "";
      say(
        $("#qa-status"),
        q.approved === false ? "Thanks! Your question will appear once a host approves it." : "Question sent.",
        "ok",
      );
    });
  });

  const bar = $("#reactions");
  for (const emoji of REACTIONS) {
    const button = el("button", { type: "button", class: "reaction", "aria-label": `React ${emoji}` }, emoji);
    button.addEventListener("click", () => rpc("reaction.send", { emoji }).catch(() => {}));
    bar.append(button);
  }

  const hand = $("#hand");
  hand.addEventListener("click", () =>
    act(hand, $("#chat-status"), async () => {
      const raise = !state.handRaised;
      await rpc(raise ? "hand.raise" : "hand.lower", {});
      state.handRaised = raise;
      hand.setAttribute("aria-pressed", String(raise));
      hand.textContent = raise ? "✋ Lower hand" : "✋ Raise hand";
    }),
  );

  $("#announcement-close").addEventListener("click", () => show($("#announcement"), false));
  mountTabs($(".tabs"), (id) => id === "tab-polls" && show($("#poll-dot"), false));
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
  wireControls();
  joinRoom();
  mountBell($("#bell"), { client, userId: state.claims.sub, getToken: async () => state.token });
  client.start();
}

main();
