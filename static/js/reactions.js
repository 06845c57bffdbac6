// Reactions in the room: the running tally since this page joined, and emoji that float up and fade.
import { el } from "./dom.js";

const MAX_FLOATING = 24; // per interval and in flight: a crowd tapping at once stays readable
const FLOAT_MS = 2200;

/**
 * mountReactions(feed, layer): ``show(counts)`` takes one ``reactions`` message's counts (the taps
 * of the last interval, not a total), adds them to the tally and floats one emoji per tap.
 */
export function mountReactions(feed, layer) {
  const totals = new Map();
  const reduced = matchMedia("(prefers-reduced-motion: reduce)").matches;

  function float(emoji) {
    if (reduced || layer.childElementCount >= MAX_FLOATING) return;
    const node = el("span", { class: "floating-reaction", "aria-hidden": "true" }, emoji);
    node.style.left = `${10 + Math.random() * 80}%`;
    node.style.animationDelay = `${Math.random() * 400}ms`;
    node.addEventListener("animationend", () => node.remove());
    setTimeout(() => node.remove(), FLOAT_MS + 600); // also when animations do not run
    layer.append(node);
  }

  function show(counts) {
    let floated = 0;
    for (const [emoji, n] of Object.entries(counts)) {
      const count = Number(n) || 0;
      totals.set(emoji, (totals.get(emoji) || 0) + count);
      for (let i = 0; i < count && floated < MAX_FLOATING; i += 1, floated += 1) float(emoji);
    }
    feed.replaceChildren(
      ...[...totals].map(([emoji, n]) =>
        el("span", { class: "tally", dataset: { emoji }, "aria-label": `${emoji} ${n}` }, `${emoji} ${n}`),
      ),
    );
  }

  return { show };
}
