// The end of a webinar for an attendee: thanks, the replay when there is one, the host's call to
// action, and a short rating that lands in the host's reports (POST /api/webinars/{id}/feedback).
import { api } from "./realtime.js";
import { $, say, show } from "./dom.js";

const SAFE_LINK = /^https?:\/\//i; // the server validates too; never follow javascript: or data:

function link(anchor, url) {
  if (!url || !SAFE_LINK.test(url)) return false;
  anchor.href = url;
  return true;
}

/** Fill the thank-you view from ``webinar`` and the caller's rating; wire the rating form once. */
export async function mountThanks({ webinarId, token, webinar }) {
  const path = `/api/webinars/${encodeURIComponent(webinarId)}`;
  const form = $("#rating-form");
  const status = $("#rating-status");
  const done = (rating) => {
    show(form, false);
    say(status, `Thanks for rating it ${rating} out of 5. Your feedback goes to the host.`, "ok");
  };
  if (!form.dataset.wired) {
    form.dataset.wired = "1";
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      rate(form, status, path, token, done);
    });
  }
  // the room is closed: no connection state or head count to show any more
  document.body.classList.add("ended");
  fillView(webinar);
  try {
    fillView({ ...webinar, ...(await api(path)) }); // the replay may have been set after the end
  } catch {
    // keep what the room knew
  }
  if (!token) return show(form, false);
  try {
    const mine = await api(`${path}/feedback`, { token });
    if (mine.rating) done(mine.rating.rating);
  } catch {
    // the form stays; sending tells what is wrong
  }
  return undefined;
}

function fillView(w) {
  $("#thanks-title").textContent = w.title ? `, “${w.title}”` : "";
  const replay = link($("#replay-link"), w.recording_url);
  show($("#replay"), replay);
  show($("#replay-later"), !replay);
  const cta = link($("#cta-link"), w.cta_url);
  $("#cta-link").textContent = w.cta_label || "Learn more";
  show($("#cta"), cta);
}

async function rate(form, status, path, token, done) {
  const picked = form.querySelector("input[name=rating]:checked");
  if (!picked) return say(status, "Pick a rating from 1 to 5 first.", "error");
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const body = { rating: Number(picked.value), comment: $("#rating-comment").value.trim() };
    const saved = await api(`${path}/feedback`, { method: "POST", body, token });
    done(saved.rating);
  } catch (err) {
    if (err.code === "already_rated") return done(picked.value);
    const text = err.code === "rate_limited" ? "Too many ratings from this network; try again later." : err.message;
    say(status, text, "error");
  } finally {
    button.disabled = false;
  }
  return undefined;
}
