// The registration page: /webinars/<id>/register. Name and email in, the personal join link out.
import { api } from "./realtime.js";
import { $, longDate, say, show } from "./dom.js";

const webinarId = decodeURIComponent(location.pathname.split("/")[2] || "");
const status = $("#status");
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

/** The browser's IANA time zone, so mails show times in it (undefined when the browser has none). */
function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || undefined;
  } catch {
    return undefined;
  }
}

/** "Email me my link again": the same answer whether or not the address is registered. */
function wireResend() {
  const form = $("#resend");
  const note = $("#resend-status");
  show(form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const email = $("#resend-email").value.trim();
    if (!EMAIL.test(email)) return say(note, "Please enter a valid email address.", "error"), $("#resend-email").focus();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await api(`/api/webinars/${encodeURIComponent(webinarId)}/join-link`, { method: "POST", body: { email } });
      say(note, `If ${email} is registered for this webinar, its join link is on its way. Check your inbox.`, "ok");
    } catch (err) {
      say(note, CLOSED[err.code] || err.message, "error");
    } finally {
      button.disabled = false;
    }
  });
}

const CLOSED = {
  webinar_ended: "This webinar has ended; registration is closed.",
  webinar_cancelled: "This webinar was cancelled.",
  webinar_full: "This webinar is full: no seats are left.",
  already_registered: "This email is already registered: we emailed your join link to it again.",
  rate_limited: "Too many requests for this address. Please try again later.",
};

async function main() {
  let webinar;
  try {
    webinar = await api(`/api/webinars/${encodeURIComponent(webinarId)}`);
  } catch (err) {
    say(status, err.status === 404 ? "There is no such webinar. Check the address." : err.message, "error");
    return;
  }
  document.title = `Register: ${webinar.title}`;
  $("#title").textContent = webinar.title;
  $("#when").textContent = `${longDate(webinar.starts_at)} · ${webinar.duration_minutes} min`;
  $("#description").textContent = webinar.description || "";
  if (webinar.capacity) {
    const left = Math.max(0, webinar.capacity - webinar.seats_taken);
    $("#seats").textContent = `${left} of ${webinar.capacity} seats left`;
  }
  show($("#details"));
  if (webinar.status === "ended" || webinar.status === "cancelled") {
    say(status, CLOSED[`webinar_${webinar.status}`], "error");
    return;
  }
  const form = $("#form");
  show(form);
  if (webinar.capacity && webinar.seats_taken >= webinar.capacity && webinar.registration_mode === "open") {
    say(status, CLOSED.webinar_full, "error");
    for (const control of form.elements) control.disabled = true; // nothing to submit into
    form.querySelector("button[type=submit]").textContent = "Full: no seats left";
  }
  wireResend();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("#name").value.trim();
    const email = $("#email").value.trim();
    if (!name) return say(status, "Please enter your name.", "error"), $("#name").focus();
    if (!EMAIL.test(email)) {
      say(status, "Please enter a valid email address.", "error");
      $("#email").focus();
      return;
    }
    const button = form.querySelector("button");
    button.disabled = true;
    say(status, "");
    try {
      const reg = await api(`/api/webinars/${encodeURIComponent(webinarId)}/registrations`, {
        method: "POST",
        body: { name, email, timezone: browserZone() },
      });
      show(form, false);
      show($("#resend"), false);
      show($("#done"));
      if (reg.join_url) {
        $("#done-text").textContent = `Thanks, ${reg.name}. Here is your personal link to the webinar; we emailed it to you too.`;
        const link = $("#join-link");
        link.href = reg.join_url;
        show($("#link-row"));
        show($("#link-note"));
      } else {
        $("#done-title").textContent = "Awaiting approval";
        $("#done-text").textContent =
          "The host approves registrations for this webinar. We'll email you as soon as they decide, with your join link if approved.";
      }
    } catch (err) {
      say(status, CLOSED[err.code] || err.message, "error");
    } finally {
      button.disabled = false;
    }
  });
}

main();
