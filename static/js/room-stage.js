// One's own place on the stage: the raised hand, a host's mute, and the announcement banner with a
// short history. The snapshot's `me` restores hand and mute after a reload; the user's own channel
// (`hand.raised`, `hand.lowered`, `moderation`) changes them at once, in every tab. A dismissed
// banner stays dismissed across reloads and reconnects (its id is remembered in localStorage).
import { $, act, clock, el, fill, say, show } from "./dom.js";

const KEEP_DISMISSED = 50;
const KEEP_HISTORY = 10;

export function createStage({ rpc, webinarId }) {
  const dismissedKey = `room:${webinarId}:dismissed-announcements`;
  let dismissed = readDismissed();
  let raised = false;
  let muted = null; // unknown until the snapshot
  let banner = null; // the announcement in the banner
  let history = [];

  function readDismissed() {
    try {
      const ids = JSON.parse(localStorage.getItem(dismissedKey) || "[]");
      return Array.isArray(ids) ? ids.filter((id) => typeof id === "string") : [];
    } catch (err) {
      return [];
    }
  }

  // -- hand ----------------------------------------------------------------------------------------

  function setHand(up) {
    raised = Boolean(up);
    const hand = $("#hand");
    hand.setAttribute("aria-pressed", String(raised));
    hand.textContent = raised ? "✋ Lower hand" : "✋ Raise hand";
  }

  // -- mute ----------------------------------------------------------------------------------------

  function setMuted(on, { live = false } = {}) {
    const was = muted;
    muted = Boolean(on);
    const input = $("#chat-text");
    input.disabled = muted;
    $("#chat-form button[type=submit]").disabled = muted;
    input.placeholder = muted ? "A host has muted you" : "Say something…";
    const note = $("#muted-note");
    if (muted) say(note, "A host has muted you: you can read the chat, but not write in it.", "error");
    else if (live && was) say(note, "A host unmuted you: you can chat again.", "ok");
    else say(note, "");
  }

  // -- announcements -------------------------------------------------------------------------------

  function showBanner(a) {
    banner = a;
    $("#announcement-text").textContent = a ? a.text : "";
    show($("#announcement"), Boolean(a));
  }

  function renderHistory() {
    show($("#announcement-history"), history.length > 0);
    fill(
      $("#announcements"),
      history.map((a) => el("li", {}, el("time", { datetime: a.created_at }, clock(a.created_at)), " ", el("span", {}, a.text))),
    );
  }

  /** A live `announcement`; `banner: false` for one replayed from the snapshot's history. */
  function announce(a, { banner: toBanner = true } = {}) {
    if (!a || a.audience === "backstage") return;
    if (!history.some((h) => h.id === a.id)) {
      history = [a, ...history].sort((x, y) => y.created_at.localeCompare(x.created_at)).slice(0, KEEP_HISTORY);
      renderHistory();
    }
    const newer = !banner || a.created_at >= banner.created_at;
    if (toBanner && newer && !dismissed.includes(a.id)) showBanner(a);
  }

  function dismiss() {
    if (banner) {
      dismissed = [...dismissed.filter((id) => id !== banner.id), banner.id].slice(-KEEP_DISMISSED);
      try {
        localStorage.setItem(dismissedKey, JSON.stringify(dismissed));
      } catch (err) {
        // storage full or blocked: it stays dismissed for this page only
      }
    }
    showBanner(null);
  }

  // -- from the server -----------------------------------------------------------------------------

  /** The room snapshot: the active banner (unless dismissed), the history, and `me`. */
  function setSnapshot(snapshot) {
    history = [...(snapshot.announcements || [])];
    renderHistory();
    const active = snapshot.announcement;
    showBanner(active && !dismissed.includes(active.id) ? active : null);
    if (snapshot.me) {
      setHand(snapshot.me.hand_raised);
      setMuted(snapshot.me.muted);
    }
  }

  /** A message on the user's own channel about this webinar. */
  function onMine(msg) {
    const d = msg.data;
    if (msg.type === "hand.raised") setHand(true);
    else if (msg.type === "hand.lowered") {
      setHand(false);
      if (d.by === "host") say($("#hand-status"), "A host lowered your hand.", "info");
    } else if (msg.type === "moderation" && (d.action === "mute" || d.action === "unmute")) {
      setMuted(d.action === "mute", { live: true });
    }
  }

  function wire() {
    const hand = $("#hand");
    hand.addEventListener("click", () =>
      act(hand, $("#hand-status"), async () => {
        const result = await rpc(raised ? "hand.lower" : "hand.raise", {});
        setHand(result.raised);
        say($("#hand-status"), "");
      }),
    );
    $("#announcement-close").addEventListener("click", dismiss);
  }

  return { announce, setSnapshot, onMine, setMuted, wire };
}
