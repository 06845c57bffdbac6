// The registration page: /webinars/<id>/register. Name and email in, the personal join link out.
import { api } from "./realtime.js";
import { $, longDate, say, show } from "./dom.js";

const webinarId = decodeURIComponent(location.pathname.split("/")[2] || "");
const status = $("#status");

const CLOSED = {
  webinar_ended: "This webinar has ended; registration is closed.",
  webinar_cancelled: "This webinar was cancelled.",
  webinar_full: "This webinar is full: no seats are left.",
  already_registered: "This email is already registered. Use the join link you received.",
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
  if (webinar.capacity && webinar.seats_taken >= webinar.capacity && webinar.registration_mode === "open") {
    say(status, CLOSED.webinar_full, "error");
  }
  const form = $("#form");
  show(form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("#name").value.trim();
    const email = $("#email").value.trim();
    if (!name) return say(status, "Please enter your name.", "error"), $("#name").focus();
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) {
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
        body: { name, email },
      });
      show(form, false);
      show($("#done"));
      if (reg.join_url) {
        $("#done-text").textContent = `Thanks, ${reg.name}. Here is your personal link to the webinar.`;
        const link = $("#join-link");
        link.href = reg.join_url;
        show($("#link-row"));
        show($("#link-note"));
      } else {
        $("#done-title").textContent = "Awaiting approval";
        $("#done-text").textContent =
          "The host approves registrations for this webinar. You'll get your join link by notification once approved.";
      }
    } catch (err) {
      say(status, CLOSED[err.code] || err.message, "error");
    } finally {
      button.disabled = false;
    }
  });
}

main();
