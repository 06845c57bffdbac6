// Building the page without HTML strings: every text from a user goes in through textContent.

/**
 * el("li", {class: "x", dataset: {id: "1"}, onclick: fn, "aria-label": "..."}, "text", childNode)
 * Strings among the children become text nodes, never markup.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function show(node, visible = true) {
  node.hidden = !visible;
}

/** Replace a container's children. */
export function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

/** A short human time: "14:05". */
export function clock(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

const LONG_DATE = { weekday: "long", year: "numeric", month: "long", day: "numeric", hour: "numeric", minute: "2-digit" };

export function longDate(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? ""
    : date.toLocaleString([], { ...LONG_DATE, timeZoneName: "short" }); // "… 3:00 PM CET": which clock
}

/** Show a message in an element with role=status/alert; kind is "error", "ok" or "info". */
export function say(node, text, kind = "info") {
  node.textContent = text || "";
  node.dataset.kind = kind;
  node.hidden = !text;
}

/** Run an async action from a button or form; disables while running and reports failures. */
export async function act(button, statusNode, action) {
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (err) {
    if (statusNode) say(statusNode, err.message || String(err), "error");
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}
