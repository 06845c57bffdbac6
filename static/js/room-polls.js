// The room's polls: open ones to vote in, closed ones with results when shown. A vote is final
// (docs/webinar-events.md): the page marks one's own choice, restores it from the snapshot's
// `me.votes` after a reload, and never offers Vote again for a poll one has voted in.
import { $, act, el, fill, say, show } from "./dom.js";

export function createPolls({ rpc }) {
  const polls = new Map();
  const votes = new Map(); // poll id -> my choices

  function upsert(poll) {
    const before = polls.get(poll.id);
    polls.set(poll.id, { ...(before || {}), ...poll });
    render();
    if (!before && poll.status === "open" && $("#panel-polls").hidden) show($("#poll-dot"));
  }

  /** The snapshot's `me.votes` ({poll_id: choices}); replaces what the page remembered. */
  function setVotes(mine) {
    votes.clear();
    for (const [id, choices] of Object.entries(mine || {})) votes.set(id, choices);
    render();
  }

  function clear() {
    polls.clear();
    render();
  }

  function render() {
    const shown = [...polls.values()].filter((p) => p.status === "open" || (p.status === "closed" && p.show_results));
    show($("#polls-empty"), shown.length === 0);
    fill($("#polls"), shown.map(card));
  }

  function card(poll) {
    const mine = votes.get(poll.id);
    const voted = Boolean(mine);
    const status = el("p", { class: "status", role: "status", hidden: true });
    const form = el(
      "form",
      { class: "poll card", dataset: { id: poll.id, voted: String(voted) }, "aria-label": `Poll: ${poll.question}` },
      el("h3", {}, poll.question),
    );
    const total = poll.voters || 0;
    const fieldset = el("fieldset", { disabled: voted || poll.status !== "open" ? true : undefined });
    fieldset.append(el("legend", { class: "sr-only" }, poll.question));
    for (const option of poll.options) {
      const id = `poll-${poll.id}-${option.id}`;
      const chosen = voted && mine.includes(option.id);
      const count = poll.counts ? poll.counts[option.id] || 0 : null;
      const pct = count !== null && total ? Math.round((100 * count) / total) : 0;
      fieldset.append(
        el(
          "div",
          { class: chosen ? "option chosen" : "option" },
          el("input", {
            type: poll.multiple ? "checkbox" : "radio",
            name: `poll-${poll.id}`,
            id,
            value: option.id,
            checked: chosen ? true : undefined,
          }),
          el("label", { for: id }, option.text, chosen ? el("span", { class: "your-vote" }, " · your vote") : null),
          count !== null
            ? el(
                "span",
                { class: "result", "data-testid": "poll-result" },
                el("span", { class: "bar", dataset: { pct: String(pct) } }),
                `${count} (${pct}%)`,
              )
            : null,
        ),
      );
    }
    form.append(fieldset);
    for (const bar of form.querySelectorAll(".bar")) bar.style.width = `${bar.dataset.pct}%`;
    if (poll.status === "open" && !voted) form.append(el("button", { type: "submit" }, "Vote"));
    if (voted) form.append(el("p", { class: "muted" }, "Thanks, your vote is in. A vote cannot be changed."));
    if (poll.status === "closed") form.append(el("p", { class: "muted" }, "This poll is closed."));
    if (poll.counts) form.append(el("p", { class: "muted" }, `${total} ${total === 1 ? "vote" : "votes"}`));
    form.append(status);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const choices = [...form.querySelectorAll("input:checked")].map((i) => i.value);
      if (!choices.length) return say(status, "Pick an option first.", "error");
      act(form.querySelector("button[type=submit]"), status, async () => {
        try {
          await rpc("poll.vote", { poll_id: poll.id, choices });
          votes.set(poll.id, choices);
        } catch (err) {
          if (err.code !== "already_voted") throw err;
          votes.set(poll.id, err.choices || choices); // the server kept the first vote
        }
        render();
      });
    });
    return form;
  }

  return { upsert, setVotes, clear };
}
