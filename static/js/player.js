// The stage video: an HLS stream (.m3u8) through the vendored hls.js, or an embeddable player URL.
import { el, fill } from "./dom.js";

export function mountPlayer(root, url) {
  if (root._hls) {
    root._hls.destroy();
    root._hls = null;
  }
  if (!url) {
    fill(root, el("div", { class: "player-empty" }, el("p", {}, "The host's video will appear here.")));
    return;
  }
  let target;
  try {
    target = new URL(url, location.origin);
  } catch (err) {
    fill(root, el("div", { class: "player-empty" }, el("p", {}, "The stream address is not valid.")));
    return;
  }
  if (target.protocol !== "https:" && target.protocol !== "http:") return;
  if (!/\.m3u8$/i.test(target.pathname)) {
    fill(
      root,
      el("iframe", {
        src: target.href,
        title: "Webinar video",
        allow: "autoplay; fullscreen; picture-in-picture",
        allowfullscreen: true,
        referrerpolicy: "no-referrer",
      }),
    );
    return;
  }
  const video = el("video", { controls: true, playsinline: true, autoplay: true, muted: true, "aria-label": "Webinar video" });
  const note = el("p", { class: "player-note", role: "status", hidden: true });
  fill(root, video, note);
  if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = target.href;
  } else if (window.Hls && window.Hls.isSupported()) {
    const hls = new window.Hls({ enableWorker: false, lowLatencyMode: true });
    root._hls = hls;
    hls.on(window.Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) {
        note.textContent = "The video stream is not reachable right now. Retrying…";
        note.hidden = false;
        setTimeout(() => hls.loadSource(target.href), 5000);
      }
    });
    hls.on(window.Hls.Events.MANIFEST_PARSED, () => {
      note.hidden = true;
      video.play().catch(() => {});
    });
    hls.loadSource(target.href);
    hls.attachMedia(video);
  } else {
    note.textContent = "This browser cannot play the stream.";
    note.hidden = false;
  }
}
