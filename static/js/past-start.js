// The webinar form's start field warns while a host picks a time that has passed; the server
// refuses a new or moved start more than 5 minutes in the past (409 starts_in_the_past).
import { el } from "./dom.js";

const GRACE_MS = 5 * 60 * 1000;

function watchStart(input) {
  const note = el("p", { id: "f-starts-warning", class: "status", role: "status", hidden: true, dataset: { kind: "error" } });
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const hint = el("p", { class: "muted", id: "f-starts-zone" }, zone ? `Time zone: ${zone}` : "");
  input.after(hint, note);
  input.setAttribute("aria-describedby", "f-starts-zone f-starts-warning");
  const check = () => {
    const at = new Date(input.value).getTime();
    const past = Number.isFinite(at) && at < Date.now() - GRACE_MS;
    note.textContent = past ? "This time has already passed. Pick a time from now on." : "";
    note.hidden = !past;
    input.setAttribute("aria-invalid", String(past));
  };
  input.addEventListener("input", check);
  input.addEventListener("change", check);
  check();
}

const input = document.querySelector("#f-starts");
if (input) watchStart(input);
