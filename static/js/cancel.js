// The cancel page: /cancel/<webinar_id>#token=<the join link's token>, linked from every mail that
// carries the personal link and from the lobby.
import { api, readToken } from "./realtime.js";
import { $, longDate, say, show } from "./dom.js";

const webinarId = decodeURIComponent(location.pathname.split("/")[2] || "");
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const status = $("#status");
const form = $("#form");
const page = `/webinars/${encodeURIComponent(webinarId)}`;

async function start() {
  const claims = token ? readToken(token) : null;
  if (!claims) return say(status, "This cancel link is incomplete. Open it exactly as you received it.", "error");
  $("#keep").href = `/join/${encodeURIComponent(webinarId)}#token=${encodeURIComponent(token)}`;
  $("#again").href = page;
  try {
    const webinar = await api(page.replace("/webinars/", "/api/webinars/"));
    $("#title").textContent = webinar.title || "this webinar";
    $("#when").textContent = webinar.starts_at ? ` (${longDate(webinar.starts_at)})` : "";
  } catch (err) {
    return say(status, err.status === 404 ? "There is no such webinar. Check your link." : err.message, "error");
  }
  show(form);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = $("#confirm");
  button.disabled = true;
  try {
    await api(`/api/webinars/${encodeURIComponent(webinarId)}/registration`, { method: "DELETE", token });
    show(form, false);
    show(status, false);
    show($("#done"));
    history.replaceState(null, "", location.pathname); // the ended link leaves the address bar
  } catch (err) {
    const ended = err.code === "token_revoked" || err.code === "forbidden" || err.code === "not_active";
    say(status, ended ? "This registration is already cancelled." : err.message, "error");
  } finally {
    button.disabled = false;
  }
});

start();
