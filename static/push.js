// Web Push subscription for the page: registers /sw.js, subscribes with the server's VAPID key and
// stores the subscription for the signed-in user. Usage (ES module):
//   import { enablePush, disablePush } from "/static/push.js";
//   await enablePush(accessToken);   // call from a click: browsers ask for permission then
"use strict";

function urlBase64ToUint8Array(text) {
  const padded = (text + "=".repeat((4 - (text.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

async function api(method, path, token, body) {
  const resp = await fetch(path, {
    method,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!resp.ok && resp.status !== 404) {
    throw new Error(`${method} ${path}: ${resp.status}`);
  }
  return resp.status === 204 ? null : resp.json();
}

export async function enablePush(token) {
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
    return false;
  }
  if ((await Notification.requestPermission()) !== "granted") {
    return false;
  }
  const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  const { public_key: key } = await (await fetch("/api/push/vapid-public-key")).json();
  const subscription =
    (await registration.pushManager.getSubscription()) ||
    (await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: urlBase64ToUint8Array(key),
    }));
  await api("POST", "/api/push/subscriptions", token, subscription.toJSON());
  return true;
}

export async function disablePush(token) {
  const registration = await navigator.serviceWorker.getRegistration("/");
  const subscription = registration && (await registration.pushManager.getSubscription());
  if (!subscription) {
    return;
  }
  await api("DELETE", "/api/push/subscriptions", token, { endpoint: subscription.endpoint });
  await subscription.unsubscribe();
}
