// The live half of the host console: room:<id> and backstage:<id> of the selected webinar.
// Chat with moderation, Q&A moderation, polls, raised hands, announcements and the live count.
import { $, act, clock, el, fill, say } from "./dom.js";
import { roleBadge } from "./chat.js";

let active = null; // the LiveConsole of the selected webinar; the page's controls act on it

export class LiveConsole {
  constructor({ client, webinar, call, onWebinar, onRegistration }) {
    this.client = client;
    this.onRegistration = onRegistration; // a registration of this webinar changed (backstage)
    this.webinar = webinar;
    this.call = call;
    this.onWebinar = onWebinar;
    this.questions = new Map();
    this.polls = new Map();
    this.hands = new Map();
    this.muted = new Set();
    this.banned = new Set();
    this.names = new Map(); // user id -> name, from chat, presence and registrations
    this.peopleTimer = null;
    this.room = `room:${webinar.id}`;
    this.backstage = `backstage:${webinar.id}`;
    active = this;
    wireOnce();
    fill($("#chat"));
    fill($("#questions"));
    fill($("#polls"));
    fill($("#hands"));
    fill($("#participants"));
    fill($("#moderated"));
    $("#live-count").textContent = "0";
    $("#slow-mode").value = String(webinar.slow_mode_seconds || 0);
    say($("#live-status"), "");
    client.subscribe(this.room, {
      onSubscribed: (msg, { resumed }) => {
        if (msg.state?.webinar) this.onWebinar(msg.state.webinar);
        if (!resumed) {
          fill($("#chat"));
          for (const m of msg.state?.recent || []) this.onRoom(m);
          this.reload();
        }
      },
      onReset: () => this.reload(true),
      onMessage: (msg) => this.onRoom(msg),
      onRefused: ({ message }) => say($("#live-status"), message, "error"),
    });
    client.subscribe(this.backstage, {
      onSubscribed: (msg, { resumed }) => {
        if (resumed || !msg.state) return;
        for (const h of msg.state.hands || []) this.hands.set(h.user_id, h);
        for (const p of msg.state.polls || []) this.polls.set(p.id, p);
        for (const q of msg.state.pending_questions || []) this.questions.set(q.id, q);
        this.renderHands();
        this.renderPolls();
        this.renderQuestions();
      },
      onReset: () => this.reload(true),
      onMessage: (msg) => this.onBackstage(msg),
      onRefused: ({ message }) => say($("#live-status"), message, "error"),
    });
  }

  leave() {
    this.client.unsubscribe(this.room);
    this.client.unsubscribe(this.backstage);
    if (active === this) active = null;
  }

  rpc(method, params = {}) {
    return this.client.rpc(method, { webinar_id: this.webinar.id, ...params });
  }

  async reload(history = false) {
    const base = `/api/webinars/${this.webinar.id}`;
    try {
      const [qs, polls, hands] = await Promise.all([
        this.call(`${base}/questions`),
        this.call(`${base}/polls`),
        this.call(`${base}/hands`).catch(() => ({ hands: [] })),
      ]);
      for (const q of qs.questions) this.questions.set(q.id, q);
      for (const p of polls.polls) this.polls.set(p.id, p);
      this.hands = new Map(hands.hands.map((h) => [h.user_id, h]));
      if (history) {
        const state = await this.call(`${base}/state`);
        fill($("#chat"));
        for (const m of state.recent || []) this.onRoom(m);
      }
    } catch (err) {
      say($("#live-status"), err.message, "error");
    }
    this.renderQuestions();
    this.renderPolls();
    this.renderHands();
    this.call(`${base}/moderation`)
      .then(({ users }) => {
        this.muted = new Set(users.filter((u) => u.muted).map((u) => u.user_id));
        this.banned = new Set(users.filter((u) => u.banned).map((u) => u.user_id));
        for (const li of document.querySelectorAll("#chat li[data-user]")) this.chatButtons(li, li.dataset.user);
      })
      .catch(() => {})
      .finally(() => this.renderPeople());
  }

  // -- participants: who is in the room, and who is muted or banned, with moderation from the list --

  schedulePeople() {
    clearTimeout(this.peopleTimer);
    this.peopleTimer = setTimeout(() => this.renderPeople(), 500);
  }

  async renderPeople() {
    if (active !== this) return;
    let roster;
    try {
      roster = await this.call(`/api/channels/${this.room}/presence?limit=200`);
    } catch (err) {
      return;
    }
    if (active !== this) return;
    $("#live-count").textContent = String(roster.count);
    const here = new Set();
    const rows = [];
    for (const u of roster.users) {
      here.add(u.user);
      if (u.name) this.names.set(u.user, u.name);
      const staff = u.role === "host" || u.user === this.client.user || u.user === this.webinar.owner_id;
      rows.push(this.person(u.user, u.name || "Attendee", staff ? ["host"] : null));
    }
    fill($("#participants"), rows.length ? rows : [el("li", { class: "muted" }, "Nobody is in the room yet.")]);
    const away = [...new Set([...this.muted, ...this.banned])].filter((id) => !here.has(id));
    if (away.some((id) => !this.names.has(id))) await this.loadNames();
    if (active !== this) return;
    fill(
      $("#moderated"),
      away.length ? away.map((id) => this.person(id, this.names.get(id) || "Unknown attendee")) : [el("li", { class: "muted" }, "Nobody.")],
    );
  }

  async loadNames() {
    try {
      const data = await this.call(`/api/webinars/${this.webinar.id}/registrations`);
      for (const r of data.registrations) if (r.user_id) this.names.set(r.user_id, r.name);
    } catch (err) {
      // names are a nicety; the ids still allow undoing
    }
  }

  /** One person with their state and the moderation buttons (none for hosts: ``tags``). */
  person(userId, name, tags = null) {
    const muted = this.muted.has(userId);
    const banned = this.banned.has(userId);
    const state = tags || [muted ? "muted" : "", banned ? "banned" : ""].filter(Boolean);
    const li = el("li", { dataset: { user: userId } }, el("span", { class: "who" }, name), ...state.map((t) => el("span", { class: "pill" }, t)));
    if (tags) return li;
    const button = (label, method, danger = false) =>
      el("button", { type: "button", class: danger ? "link danger" : "link", "aria-label": `${name}: ${label.toLowerCase()}`, onclick: (e) => {
        if (method === "chat.ban" && !confirm(`Ban ${name} from this webinar? They are removed at once.`)) return;
        this.moderate(e.target, method, { user_id: userId });
      } }, label);
    li.append(
      el("span", { class: "mod" },
        muted ? button("Unmute", "chat.unmute") : button("Mute", "chat.mute"),
        banned ? button("Unban", "chat.unban") : button("Ban", "chat.ban", true)),
    );
    return li;
  }

  onRoom(msg) {
    const d = msg.data;
    switch (msg.type) {
      case "chat.message":
        return this.addChat(d);
      case "chat.deleted":
        return $(`#chat li[data-id="${CSS.escape(d.id)}"]`)?.remove();
      case "poll.opened":
      case "poll.closed":
        return this.upsertPoll(d);
      case "presence":
        $("#live-count").textContent = String(d.count);
        return this.schedulePeople();
      case "announcement":
        return say($("#live-status"), `Announced: ${d.text}`, "ok");
      case "webinar.live":
      case "webinar.ended":
      case "webinar.updated":
        if (d.slow_mode_seconds !== undefined) $("#slow-mode").value = String(d.slow_mode_seconds);
        return this.onWebinar(d);
      default:
        return undefined;
    }
  }

  onBackstage(msg) {
    const d = msg.data;
    switch (msg.type) {
      case "qa.question":
      case "qa.updated":
        if (d.status === "withdrawn") this.questions.delete(d.id); // its author took it back
        else this.questions.set(d.id, { ...(this.questions.get(d.id) || {}), ...d });
        return this.renderQuestions();
      case "poll.results":
        return this.upsertPoll(d);
      case "hand.raised":
        this.hands.set(d.user_id, { ...d, raised_at: new Date(msg.ts).toISOString() });
        return this.renderHands();
      case "hand.lowered":
        this.hands.delete(d.user_id);
        return this.renderHands();
      case "registration.updated":
        return this.onRegistration?.(d);
      case "moderation": {
        const set = d.action.endsWith("mute") ? this.muted : this.banned;
        if (d.action === "mute" || d.action === "ban") set.add(d.user_id);
        else set.delete(d.user_id);
        for (const li of document.querySelectorAll(`#chat li[data-user="${CSS.escape(d.user_id)}"]`)) {
          li.classList.toggle("muted-user", this.muted.has(d.user_id));
          li.classList.toggle("banned-user", this.banned.has(d.user_id));
          this.chatButtons(li, d.user_id);
        }
        return this.schedulePeople();
      }
      default:
        return undefined;
    }
  }

  // -- chat ----------------------------------------------------------------------------------------

  addChat(m) {
    const list = $("#chat");
    if (list.querySelector(`li[data-id="${CSS.escape(m.id)}"]`)) return;
    this.names.set(m.user_id, m.name);
    const li = el(
      "li",
      { dataset: { id: m.id, user: m.user_id, role: m.role || "attendee" } },
      el("span", { class: "who" }, m.name),
      roleBadge(m.role),
      el("span", { class: "text" }, m.text),
      el("time", { datetime: m.created_at }, clock(m.created_at)),
      el("span", { class: "mod" }),
    );
    this.chatButtons(li, m.user_id);
    list.append(li);
    while (list.children.length > 500) list.firstElementChild.remove();
    list.scrollTop = list.scrollHeight;
  }

  chatButtons(li, userId) {
    const box = li.querySelector(".mod");
    const id = li.dataset.id;
    const name = li.querySelector(".who").textContent;
    const buttons = [el("button", { type: "button", class: "link", "aria-label": `Delete message from ${name}`, onclick: (e) => this.moderate(e.target, "chat.delete", { message_id: id }) }, "Delete")];
    const staff = ["host", "cohost"].includes(li.dataset.role) || userId === this.webinar.owner_id || userId === this.client.user;
    if (!staff) {
      const muted = this.muted.has(userId);
      buttons.push(
        el("button", { type: "button", class: "link", "aria-label": `${muted ? "Unmute" : "Mute"} ${name}`, onclick: (e) => this.moderate(e.target, muted ? "chat.unmute" : "chat.mute", { user_id: userId }) }, muted ? "Unmute" : "Mute"),
      );
      if (!this.banned.has(userId)) {
        buttons.push(
          el("button", { type: "button", class: "link danger", "aria-label": `Ban ${name}`, onclick: (e) => {
            if (confirm(`Ban ${name} from this webinar? They are removed at once.`)) this.moderate(e.target, "chat.ban", { user_id: userId });
          } }, "Ban"),
        );
      } else {
        buttons.push(el("span", { class: "muted" }, "banned"));
      }
    }
    fill(box, buttons);
  }

  moderate(button, method, params) {
    return act(button, $("#live-status"), () => this.rpc(method, params));
  }

  // -- Q&A -----------------------------------------------------------------------------------------

  renderQuestions() {
    const items = [...this.questions.values()].sort(
      (a, b) =>
        (a.status === "dismissed") - (b.status === "dismissed") ||
        (b.pinned ? 1 : 0) - (a.pinned ? 1 : 0) ||
        b.votes - a.votes ||
        a.created_at.localeCompare(b.created_at),
    );
    fill(
      $("#questions"),
      items.map((q) => {
        const answer = el("input", { "aria-label": `Answer to: ${q.text}`, placeholder: "Type an answer (optional)", maxlength: "5000" });
        const controls = el("div", { class: "q-actions" });
        const button = (label, action, extra = {}) =>
          el("button", { type: "button", class: "link", "aria-label": `${label}: ${q.text}`, onclick: (e) => act(e.target, $("#live-status"), () => this.rpc(`qa.${action}`, { question_id: q.id, ...extra(e) })) }, label);
        if (!q.approved) controls.append(button("Approve", "approve", () => ({})));
        if (q.status !== "dismissed") {
          if (q.status !== "answered") {
            controls.append(answer, button("Answer", "answer", () => (answer.value.trim() ? { answer: answer.value.trim() } : {})));
          }
          controls.append(q.pinned ? button("Unpin", "unpin", () => ({})) : button("Pin", "pin", () => ({})));
          controls.append(button("Dismiss", "dismiss", () => ({})));
        }
        return el(
          "li",
          { dataset: { id: q.id }, class: [q.status, q.pinned ? "pinned" : "", q.approved ? "" : "pending"].join(" ") },
          el("span", { class: "vote-count", "aria-label": `${q.votes} votes` }, `▲ ${q.votes}`),
          el(
            "div",
            { class: "q-body" },
            el("p", { class: "text" }, q.text),
            el("p", { class: "meta" }, q.name, q.anonymous ? " (asked anonymously)" : "", q.approved ? "" : " · awaiting approval", q.status === "answered" ? " · ✔ Answered" : "", q.status === "dismissed" ? " · dismissed" : "", q.pinned ? " · 📌 Pinned" : ""),
            q.answer ? el("p", { class: "answer" }, q.answer) : null,
            controls,
          ),
        );
      }),
    );
  }

  // -- polls ---------------------------------------------------------------------------------------

  upsertPoll(p) {
    this.polls.set(p.id, { ...(this.polls.get(p.id) || {}), ...p });
    this.renderPolls();
  }

  renderPolls() {
    const polls = [...this.polls.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
    fill(
      $("#polls"),
      polls.map((p) => {
        const total = p.voters || 0;
        const rows = p.options.map((o) => {
          const n = p.counts ? p.counts[o.id] || 0 : 0;
          const pct = total ? Math.round((100 * n) / total) : 0;
          const bar = el("span", { class: "bar" });
          bar.style.width = `${pct}%`;
          return el("li", {}, el("span", {}, o.text), el("span", { class: "result" }, bar, `${n} (${pct}%)`));
        });
        const control = (label, action) =>
          el("button", { type: "button", "aria-label": `${label}: ${p.question}`, onclick: (e) => act(e.target, $("#live-status"), async () => this.upsertPoll(await this.rpc(`poll.${action}`, { poll_id: p.id }))) }, label);
        const buttons = el("div", { class: "row-buttons" });
        if (p.status === "draft") buttons.append(control("Open", "open"));
        if (p.status === "open") buttons.append(control("Close", "close"));
        buttons.append(p.show_results ? control("Hide results", "hide_results") : control("Show results", "show_results"));
        return el(
          "div",
          { class: "poll card", dataset: { id: p.id, status: p.status } },
          el("h4", {}, p.question),
          el("p", { class: "muted" }, `${p.status} · ${total} ${total === 1 ? "vote" : "votes"}${p.show_results ? " · results shown to attendees" : ""}`),
          el("ol", { class: "results" }, rows),
          buttons,
        );
      }),
    );
  }

  // -- hands ---------------------------------------------------------------------------------------

  renderHands() {
    const hands = [...this.hands.values()].sort((a, b) => String(a.raised_at).localeCompare(String(b.raised_at)));
    fill(
      $("#hands"),
      hands.length
        ? hands.map((h) =>
            el(
              "li",
              { dataset: { user: h.user_id } },
              el("span", {}, h.name),
              el("button", { type: "button", class: "link", "aria-label": `Lower ${h.name}'s hand`, onclick: (e) => act(e.target, $("#live-status"), () => this.rpc("hand.lower", { user_id: h.user_id })) }, "Lower"),
            ),
          )
        : [el("li", { class: "muted" }, "No hands raised.")],
    );
  }
}

let wired = false;

function wireOnce() {
  if (wired) return;
  wired = true;
  const statusNode = $("#live-status");
  const submit = (form, action) =>
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (active) act(form.querySelector("button[type=submit]"), statusNode, () => action(active));
    });

  submit($("#announce-form"), async (live) => {
    const text = $("#announce-text").value.trim();
    if (!text) return;
    await live.rpc("announcement.send", { text });
    $("#announce-text").value = "";
  });
  submit($("#notify-form"), async (live) => {
    const title = $("#notify-text").value.trim();
    if (!title) return;
    await live.call("/api/notifications", {
      method: "POST",
      body: { webinar_id: live.webinar.id, title, url: `/join/${live.webinar.id}` },
    });
    $("#notify-text").value = "";
    say(statusNode, "Notification sent to every registrant.", "ok");
  });
  submit($("#chat-form"), async (live) => {
    const text = $("#chat-text").value.trim();
    if (!text) return;
    const m = await live.rpc("chat.send", { text });
    $("#chat-text").value = "";
    live.addChat(m);
  });
  submit($("#poll-form"), async (live) => {
    const question = $("#poll-question").value.trim();
    const options = $("#poll-options").value.split("\n").map((s) => s.trim()).filter(Boolean);
    if (!question || options.length < 2) {
      say(statusNode, "A poll needs a question and at least two options.", "error");
      return;
    }
    const poll = await live.rpc("poll.create", { question, options, multiple: $("#poll-multiple").checked });
    live.upsertPoll(poll);
    $("#poll-question").value = "";
    $("#poll-options").value = "";
  });
  $("#slow-mode").addEventListener("change", () => {
    if (active) act($("#slow-mode"), statusNode, () => active.rpc("chat.slow_mode", { seconds: Number($("#slow-mode").value) }));
  });
}
