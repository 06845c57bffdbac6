// The notification bell: live unread count on user:<id>, an inbox dropdown, optional Web Push.
import { api } from "./realtime.js";
import { $, act, clock, el, fill, say } from "./dom.js";

export function mountBell(root, { client, userId, getToken }) {
  const badge = el("span", { class: "badge", "data-testid": "unread-count", hidden: true }, "0");
  const button = el(
    "button",
    { type: "button", class: "bell", "aria-haspopup": "true", "aria-expanded": "false", "aria-label": "Notifications" },
    el("span", { "aria-hidden": "true" }, "🔔"),
    badge,
  );
  const list = el("ul", { class: "inbox-list", "aria-label": "Inbox" });
  const status = el("p", { class: "status", role: "status", hidden: true });
  const readAll = el("button", { type: "button", class: "link" }, "Mark all read");
  const push = el("button", { type: "button", class: "link", hidden: true }, "Get browser notifications");
  const panel = el(
    "div",
    { class: "inbox", role: "region", "aria-label": "Notifications inbox", hidden: true },
    el("div", { class: "inbox-head" }, el("strong", {}, "Notifications"), readAll),
    list,
    status,
    push,
  );
  fill(root, button, panel);

  let unread = 0;
  const setUnread = (n) => {
    unread = Math.max(0, n | 0);
    badge.textContent = unread > 99 ? "99+" : String(unread);
    badge.hidden = unread === 0;
    button.setAttribute("aria-label", unread ? `Notifications, ${unread} unread` : "Notifications");
  };

  const item = (n) =>
    el(
      "li",
      { class: n.read ? "read" : "unread", dataset: { id: n.id } },
      el("strong", {}, n.title),
      n.body ? el("span", {}, n.body) : null,
      el("time", { datetime: n.created_at }, clock(n.created_at)),
      safeLink(n.url),
    );

  async function load() {
    try {
      const data = await api("/api/notifications?limit=20", { token: await getToken() });
      fill(list, data.items.map(item));
      if (!data.items.length) fill(list, el("li", { class: "empty" }, "Nothing yet."));
      setUnread(data.unread);
    } catch (err) {
      say(status, err.message, "error");
    }
  }

  button.addEventListener("click", () => {
    const open = panel.hidden;
    panel.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) load();
  });
  const close = (refocus) => {
    if (panel.hidden) return;
    panel.hidden = true;
    button.setAttribute("aria-expanded", "false");
    if (refocus) button.focus();
  };
  document.addEventListener("keydown", (event) => event.key === "Escape" && close(true));
  document.addEventListener("click", (event) => !root.contains(event.target) && close(false));
  readAll.addEventListener("click", () =>
    act(readAll, status, async () => {
      await api("/api/notifications/read-all", { method: "POST", body: {}, token: await getToken() });
      setUnread(0);
      for (const li of list.querySelectorAll("li.unread")) li.className = "read";
    }),
  );

  client.subscribe(`user:${userId}`, {
    onSubscribed: (msg, { resumed }) => {
      if (!resumed) load();
    },
    onReset: load,
    onMessage: (msg) => {
      if (msg.type === "notification") {
        $(".empty", list)?.remove();
        if (!list.querySelector(`li[data-id="${CSS.escape(msg.data.id)}"]`)) list.prepend(item(msg.data));
        if (typeof msg.data.unread === "number") setUnread(msg.data.unread);
        else setUnread(unread + 1);
      } else if (msg.type === "notification.unread") {
        setUnread(msg.data.unread);
      }
    },
  });

  if ("serviceWorker" in navigator && "PushManager" in window && window.isSecureContext) {
    push.hidden = false;
    push.addEventListener("click", () =>
      act(push, status, async () => {
        await enablePush(getToken);
        say(status, "Browser notifications are on.", "ok");
        push.hidden = true;
      }),
    );
  }
}

function safeLink(url) {
  if (!url) return null;
  try {
    const target = new URL(url, location.origin);
    if (target.protocol !== "https:" && target.protocol !== "http:") return null;
    return el("a", { href: target.href }, "Open");
  } catch (err) {
    return null;
  }
}

async function enablePush(getToken) {
  const permission = await Notification.requestPermission();
  if (permission !== "granted") throw new Error("Notifications are blocked for this site in your browser settings.");
  const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  const { public_key: key } = await api("/api/push/vapid-public-key");
  const subscription = await registration.pushManager.subscribe({
    userVisibleOnly: true,
    applicationServerKey: base64UrlToBytes(key),
  });
  await api("/api/push/subscriptions", { method: "POST", body: subscription.toJSON(), token: await getToken() });
}

function base64UrlToBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}
