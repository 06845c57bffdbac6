// The stage video: an HLS stream (.m3u8) through the vendored hls.js or the browser's own HLS, or an
// embeddable player URL. The player always says what it is doing, in words (root.dataset.state):
//   waiting    the webinar has not started, or the host has set no stream yet
//   retrying   the stream has not started or cannot be reached; it tries again with a capped backoff
//   playing    frames are arriving
//   ended      the webinar or the stream ended (with the replay link when there is one)
//   unplayable the address cannot be played here
import { el, fill } from "./dom.js";

const RETRY_FIRST_MS = 3000;
const RETRY_MAX_MS = 30000;

const TEXT = {
  waiting: "Waiting for the host to start the stream.",
  connecting: "Connecting to the stream…",
  retrying: "The stream has not started yet or cannot be reached. Retrying…",
  playing: "",
  ended: "The webinar has ended.",
  unplayable: "This stream cannot be played here.",
};

function stop(root) {
  root._player?.stop();
  root._player = null;
}

/** A line of text in the player: the state, and for the end the replay link when there is one. */
function notice(root, state, { text = TEXT[state], replay = "" } = {}) {
  root.dataset.state = state;
  const children = [el("p", {}, text)];
  if (state === "ended" && replay) {
    children.push(el("p", {}, el("a", { href: replay, class: "button", rel: "noopener", target: "_blank" }, "Watch the replay")));
  }
  return el("div", { class: "player-empty", role: "status", dataset: { testid: "player-state" } }, ...children);
}

/**
 * Show ``url`` in ``root``. ``status`` is the webinar's (scheduled, live, ended, cancelled):
 * only a live webinar plays; ``recordingUrl`` is offered once it ended. ``label`` names the video.
 * Calling it again replaces whatever played before.
 */
export function mountPlayer(root, url, { status = "live", recordingUrl = "", label = "Webinar video" } = {}) {
  stop(root);
  if (status === "ended" || status === "cancelled") {
    const text = status === "cancelled" ? "This webinar was cancelled." : TEXT.ended;
    fill(root, notice(root, "ended", { text, replay: status === "ended" ? safeUrl(recordingUrl) : "" }));
    return;
  }
  if (!url || status === "scheduled") {
    fill(root, notice(root, "waiting"));
    return;
  }
  const target = safeUrl(url);
  if (!target) {
    fill(root, notice(root, "unplayable", { text: "The stream address is not valid (it must start with https://)." }));
    return;
  }
  if (!/\.m3u8$/i.test(new URL(target).pathname)) {
    root.dataset.state = "playing";
    fill(
      root,
      el("iframe", {
        src: target,
        title: label,
        allow: "autoplay; fullscreen; picture-in-picture",
        allowfullscreen: true,
        referrerpolicy: "no-referrer",
      }),
    );
    return;
  }
  playHls(root, target, { label, recordingUrl });
}

/** The URL if the pages may load it (https only, as their Content-Security-Policy), else "". */
function safeUrl(url) {
  try {
    const parsed = new URL(url, location.origin);
    return parsed.protocol === "https:" ? parsed.href : "";
  } catch (err) {
    return "";
  }
}

function playHls(root, src, { label, recordingUrl }) {
  const video = el("video", { controls: true, playsinline: true, autoplay: true, muted: true, "aria-label": label });
  const note = el("p", { class: "player-note", role: "status", dataset: { testid: "player-state" } });
  fill(root, video, note);
  let delay = RETRY_FIRST_MS;
  let timer = null;
  let hls = null;
  let stopped = false;
  const set = (state, text = TEXT[state]) => {
    root.dataset.state = state;
    note.textContent = text;
    note.hidden = !text;
    // a black 0:00 player tells nobody anything: the words stand alone until frames arrive
    video.hidden = state !== "playing";
    if (state === "ended" && safeUrl(recordingUrl)) {
      note.append(" ", el("a", { href: safeUrl(recordingUrl), rel: "noopener", target: "_blank" }, "Watch the replay"));
    }
  };
  const load = () => {
    if (stopped) return;
    if (hls) hls.loadSource(src);
    else {
      video.src = src;
      video.load();
    }
  };
  const retry = () => {
    if (stopped || timer) return;
    set("retrying");
    timer = setTimeout(() => {
      timer = null;
      load();
    }, delay);
    delay = Math.min(delay * 2, RETRY_MAX_MS);
  };
  video.addEventListener("playing", () => {
    delay = RETRY_FIRST_MS;
    set("playing");
  });
  video.addEventListener("ended", () => set("ended", "The stream has ended."));
  set("connecting");
  if (window.Hls && window.Hls.isSupported()) {
    hls = new window.Hls({ enableWorker: false, lowLatencyMode: true });
    hls.on(window.Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else retry();
    });
    hls.on(window.Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {}));
    hls.attachMedia(video);
    hls.loadSource(src);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    // The browser's own HLS reports a failure only as the element's error event.
    video.addEventListener("error", retry);
    video.src = src;
  } else {
    set("unplayable", "This browser cannot play the stream.");
  }
  root._player = {
    stop() {
      stopped = true;
      clearTimeout(timer);
      hls?.destroy();
      video.removeAttribute("src");
      video.load();
    },
  };
}
