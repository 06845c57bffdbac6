// The room's Q&A: the approved questions sorted by popular or recent, one upvote each (never on
// one's own), and "My questions" with their state (pending approval included) and Withdraw.
// The snapshot's `me.questions`/`me.upvoted` restore it after a reload; `qa.mine` on the user's
// own channel follows every change of state of one's own questions (docs/webinar-events.md).
// Speakers (the snapshot's `role`: panelists, and hosts who open the room) answer the open questions
// here; the server decides who may (`qa.answer`), the page only offers it.
import { $, act, el, fill, say, show } from "./dom.js";
import { BADGES } from "./chat.js";

const SORT_KEY = "room:qa-sort";
const STATES = {
  pending: "Waiting for a host's approval",
  open: "Open",
  answered: "Answered",
  dismissed: "Dismissed by a host",
  withdrawn: "Withdrawn",
};

export function createQa({ rpc, api, webinarId, token }) {
  const questions = new Map(); // the room's list
  const mine = new Map(); // my own, every state
  const upvoted = new Set();
  let sort = sessionStorage.getItem(SORT_KEY) === "time" ? "time" : "votes";
  let speaker = false; // may answer: the snapshot's role

  /** The snapshot's `role`: panelists and hosts get an answer box under each open question. */
  function setRole(role) {
    speaker = ["host", "cohost", "panelist"].includes(role);
    render();
  }

  function upsert(q) {
    questions.set(q.id, { ...(questions.get(q.id) || {}), ...q });
    const own = mine.get(q.id);
    if (own) {
      // the room's copy hides an anonymous author: keep my own copy's name
      const { name, user_id, ...change } = q;
      mine.set(q.id, { ...own, ...change });
    }
    render();
  }

  function upsertMine(q) {
    mine.set(q.id, { ...(mine.get(q.id) || {}), ...q });
    if (q.approved) questions.set(q.id, { ...(questions.get(q.id) || {}), ...q });
    render();
  }

  /** The snapshot's `me`: my questions and my upvotes. */
  function setMe(me) {
    mine.clear();
    for (const q of me.questions || []) mine.set(q.id, q);
    upvoted.clear();
    for (const id of me.upvoted || []) upvoted.add(id);
    render();
  }

  async function load() {
    try {
      const data = await api(`/api/webinars/${encodeURIComponent(webinarId)}/questions`, { token });
      questions.clear();
      for (const q of data.questions) questions.set(q.id, q);
      render();
    } catch (err) {
      if (err.status !== 409) say($("#qa-status"), err.message, "error");
    }
  }

  function order(a, b) {
    if (sort === "time") return b.created_at.localeCompare(a.created_at);
    return b.votes - a.votes || a.created_at.localeCompare(b.created_at);
  }

  function render() {
    const items = [...questions.values()]
      .filter((q) => q.approved !== false && q.status !== "dismissed" && q.status !== "withdrawn")
      .sort((a, b) => (b.pinned ? 1 : 0) - (a.pinned ? 1 : 0) || order(a, b));
    fill($("#questions"), items.map(questionItem));
    const pinned = items.find((q) => q.pinned);
    show($("#pinned"), Boolean(pinned));
    $("#pinned").textContent = pinned ? `📌 ${pinned.text}` : "";
    const own = [...mine.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
    show($("#my-questions-box"), own.length > 0);
    fill($("#my-questions"), own.map(myItem));
  }

  function questionItem(q) {
    const answered = q.status === "answered";
    const isMine = mine.has(q.id);
    const upvote = el(
      "button",
      {
        type: "button",
        class: "vote",
        "aria-label": isMine ? `Your question: ${q.text}` : `Upvote: ${q.text}`,
        title: isMine ? "You cannot upvote your own question" : undefined,
        "aria-pressed": upvoted.has(q.id) ? "true" : undefined,
        disabled: isMine || upvoted.has(q.id) ? true : undefined,
      },
      `▲ ${q.votes}`,
    );
    upvote.addEventListener("click", () =>
      act(upvote, $("#qa-status"), async () => {
        try {
          await rpc("qa.upvote", { question_id: q.id });
        } catch (err) {
          if (err.code !== "already_voted") throw err;
        }
        upvoted.add(q.id);
        render();
      }),
    );
    return el(
      "li",
      { dataset: { id: q.id }, class: [answered ? "answered" : "", q.pinned ? "pinned" : "", isMine ? "mine" : ""].join(" ") },
      upvote,
      el(
        "div",
        { class: "q-body" },
        el("p", { class: "text" }, q.text),
        el("p", { class: "meta" }, q.name, isMine ? " (you)" : "", q.pinned ? " · 📌 Pinned" : "", answered ? " · ✔ Answered" : "", answeredBy(q)),
        answered && q.answer ? el("p", { class: "answer" }, q.answer) : null,
        answered && !q.answer ? el("p", { class: "answer muted" }, "Answered live") : null,
        speaker && !answered ? answerForm(q) : null,
      ),
    );
  }

  /** " by Name (Panelist)": who answered, as the server recorded it (older answers have no one). */
  function answeredBy(q) {
    const by = q.status === "answered" && q.answered_by;
    return by ? ` by ${by.name} (${BADGES[by.role] || by.role})` : "";
  }

  /** A speaker's answer to ``q``: typed, or empty for "answered live". */
  function answerForm(q) {
    const input = el("input", { "aria-label": `Answer to: ${q.text}`, placeholder: "Type an answer, or leave empty if you answered live", maxlength: "5000" });
    const button = el("button", { type: "submit", class: "secondary", "aria-label": `Answer: ${q.text}` }, "Answer");
    const form = el("form", { class: "inline-form answer-form" }, input, button);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const answer = input.value.trim();
      act(button, $("#qa-status"), async () => upsert(await rpc("qa.answer", { question_id: q.id, ...(answer ? { answer } : {}) })));
    });
    return form;
  }

  function myItem(q) {
    const state = q.status === "open" && q.approved === false ? "pending" : q.status;
    const withdraw =
      q.status === "open"
        ? el("button", { type: "button", class: "link", "aria-label": `Withdraw: ${q.text}` }, "Withdraw")
        : null;
    withdraw?.addEventListener("click", () =>
      act(withdraw, $("#qa-status"), async () => upsertMine(await rpc("qa.withdraw", { question_id: q.id }))),
    );
    return el(
      "li",
      { dataset: { id: q.id, state }, class: `mine-${state}` },
      el(
        "div",
        { class: "q-body" },
        el("p", { class: "text" }, q.text),
        el("p", { class: "meta", "data-testid": "my-question-state" }, STATES[state] || state, answeredBy(q), q.anonymous ? " · asked anonymously" : ""),
        q.status === "answered" && q.answer ? el("p", { class: "answer" }, q.answer) : null,
      ),
      withdraw,
    );
  }

  function wire() {
    const select = $("#qa-sort");
    select.value = sort;
    select.addEventListener("change", () => {
      sort = select.value === "time" ? "time" : "votes";
      sessionStorage.setItem(SORT_KEY, sort);
      render();
    });
    $("#qa-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const text = $("#qa-text").value.trim();
      if (!text) return say($("#qa-status"), "Type your question first.", "error");
      act(event.target.querySelector("button"), $("#qa-status"), async () => {
        const q = await rpc("qa.ask", { text, anonymous: $("#qa-anon").checked });
        $("#qa-text").value = "";
        upsertMine(q);
        say(
          $("#qa-status"),
          q.approved === false ? "Thanks! Your question will appear once a host approves it." : "Question sent.",
          "ok",
        );
      });
    });
  }

  return { upsert, upsertMine, setMe, setRole, load, wire };
}
