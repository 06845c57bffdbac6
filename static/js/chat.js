// The room's chat list and box: keeps the reader's place, badges hosts, explains limits.
import { clock, el, say, show } from "./dom.js";

const NEAR_BOTTOM_PX = 40; // within this of the end counts as "reading the newest"
const KEEP = 500;
export const BADGES = { host: "Host", cohost: "Co-host", panelist: "Panelist" };

/** The text badge for a chat sender's ``role`` (the server's, on the message), or null for attendees. */
export function roleBadge(role) {
  const text = BADGES[role];
  return text ? el("span", { class: `role-badge role-${role}`, "data-testid": "role-badge" }, text) : null;
}

/** Words for a refused send, with the wait counted down from ``retryAfter`` seconds. */
function refusal(err, left) {
  const wait = left > 0 ? ` Try again in ${left} s.` : " You can send again now.";
  if (err.code === "rate_limited") return `You are sending messages quickly.${wait}`;
  if (err.code === "slow_mode") return `Slow mode is on: a message at a time.${wait}`;
  if (err.code === "muted") return "A host has muted you in the chat.";
  if (err.code === "not_live") return "The chat opens when the webinar is live.";
  if (err.code === "invalid") return "That message cannot be sent. Check its length.";
  return err.message;
}

/**
 * mountChat({list, form, input, counter, status, newer, maxChars, userId, send})
 * ``send(text)`` resolves with the stored message or rejects with an RpcFailure.
 * Returns {add(message), remove(id), clear()}.
 */
export function mountChat({ list, form, input, counter, status, newer, maxChars, userId, send }) {
  let unseen = 0;
  let waitTimer = null;

  const atBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight <= NEAR_BOTTOM_PX;
  const toBottom = () => {
    list.scrollTop = list.scrollHeight;
    unseen = 0;
    show(newer, false);
  };
  list.addEventListener("scroll", () => atBottom() && (unseen = 0, show(newer, false)));
  newer.addEventListener("click", toBottom);

  function add(m) {
    if (list.querySelector(`li[data-id="${CSS.escape(m.id)}"]`)) return;
    const follow = atBottom();
    const mine = m.user_id === userId;
    list.append(
      el(
        "li",
        { dataset: { id: m.id, role: m.role || "attendee" }, class: mine ? "mine" : "" },
        el("span", { class: "who" }, m.name),
        roleBadge(m.role),
        el("span", { class: "text" }, m.text),
        el("time", { datetime: m.created_at }, clock(m.created_at)),
      ),
    );
    while (list.children.length > KEEP) list.firstElementChild.remove();
    if (follow || mine) return toBottom();
    unseen += 1;
    newer.textContent = `↓ ${unseen} new ${unseen === 1 ? "message" : "messages"}`;
    show(newer);
  }

  function count() {
    const n = input.value.trim().length;
    const over = n > maxChars;
    counter.textContent = `${n} / ${maxChars}`;
    counter.dataset.kind = over ? "error" : "";
    show(counter, n > maxChars * 0.8);
    input.setAttribute("aria-invalid", String(over));
    return over;
  }
  input.addEventListener("input", () => {
    if (!count() && status.dataset.kind === "error" && status.dataset.reason === "length") say(status, "");
  });

  function refused(err) {
    clearInterval(waitTimer);
    let left = err.retryAfter ?? 0;
    const button = form.querySelector("button[type=submit]");
    const tick = () => {
      say(status, refusal(err, left), left > 0 ? "error" : "info");
      status.dataset.reason = err.code;
      if (left <= 0) clearInterval(waitTimer);
      left -= 1;
    };
    tick();
    if (err.retryAfter) waitTimer = setInterval(tick, 1000);
    button.disabled = false;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    if (count()) {
      say(status, `Your message is ${text.length} characters; the limit is ${maxChars}. Shorten it to send.`, "error");
      status.dataset.reason = "length";
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const m = await send(text);
      input.value = "";
      count();
      clearInterval(waitTimer);
      say(status, "");
      add(m);
    } catch (err) {
      refused(err);
      return;
    } finally {
      button.disabled = false;
    }
  });

  return {
    add,
    remove: (id) => list.querySelector(`li[data-id="${CSS.escape(id)}"]`)?.remove(),
    clear: () => {
      list.replaceChildren();
      unseen = 0;
      show(newer, false);
    },
  };
}
