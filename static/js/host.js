// The host console at /host: sign in, webinars (create, edit, schedule), registrants, reports, and
// the live room controls (host-live.js).
import { RealtimeClient, api, readToken } from "./realtime.js";
import { $, act, el, fill, longDate, say, show } from "./dom.js";
import { mountConnectionState } from "./connection.js";
import { mountTabs } from "./tabs.js";
import { LiveConsole } from "./host-live.js";
import { mountPlayer } from "./player.js";

const status = $("#status");
// The access token lives in this page's memory only; the refresh token in an HttpOnly cookie that
// only /api/auth/refresh receives (handlers/accounts.py), so a reload or a second tab resumes it.
let session = null;
let client = null;
let live = null;
let webinars = [];
let current = null; // the selected webinar
let editing = null; // the webinar being edited, or null for a new one
let refreshing = null;
let selectTab = null;
const tabs = "BroadcastChannel" in window ? new BroadcastChannel("host-session") : null;

// -- session -----------------------------------------------------------------------------------------

function saveSession(data) {
  session = { access: data.access_token, user: data.user };
}

/** The CSRF header the refresh endpoint wants (the readable cookie's value), or null if signed out. */
function csrfHeader() {
  const match = document.cookie.match(/(?:^|;\s*)host_csrf=([^;]+)/);
  return match ? { "X-CSRF-Token": decodeURIComponent(match[1]) } : null;
}

/** A new access token from the refresh cookie, rotating it. Tabs take turns through a Web Lock: each
 * sends the cookie the previous rotation set, never one just used (a reused refresh token ends the
 * session everywhere). */
async function refreshSession() {
  const rotate = async () => {
    const headers = csrfHeader();
    if (!headers) throw Object.assign(new Error("You are signed out."), { code: "signed_out", status: 401 });
    saveSession(await api("/api/auth/refresh", { method: "POST", body: {}, headers }));
  };
  return navigator.locks ? navigator.locks.request("host-session-refresh", rotate) : rotate();
}

function signinMode(signup) {
  show($("#signin-name"), signup);
  show($("#signin-name-label"), signup);
  $("#signin-name").required = signup;
  $("#signin-title").textContent = signup ? "Create a host account" : "Sign in";
  $("#signin-submit").textContent = signup ? "Create account" : "Sign in";
  $("#signin-toggle").textContent = signup ? "Have an account? Sign in" : "No account yet? Create one";
  $("#signin-password").autocomplete = signup ? "new-password" : "current-password";
  $("#signin-form").dataset.mode = signup ? "signup" : "signin";
}

function signOut(message) {
  session = null;
  client?.close();
  client = null;
  live?.leave();
  live = null;
  current = null;
  show($("#console"), false);
  show($("#logout"), false);
  show($("#connection"), false);
  $("#me").textContent = "";
  signinMode(false);
  show($("#signin"));
  say(status, message || "", message ? "error" : "info");
}

/** The access token, refreshed a minute before it expires. */
async function token({ force = false } = {}) {
  if (!session) throw Object.assign(new Error("You are signed out."), { code: "signed_out" });
  const claims = readToken(session.access);
  if (!force && claims && claims.exp * 1000 - Date.now() > 60000) return session.access;
  refreshing ||= refreshSession()
    .catch((err) => {
      if (err.status === 401 || err.status === 403) signOut("Your session has expired. Please sign in again.");
      throw err;
    })
    .finally(() => (refreshing = null));
  await refreshing;
  return session.access;
}

async function call(path, options = {}) {
  return api(path, { ...options, token: await token() });
}

function wireSignin() {
  $("#signin-toggle").addEventListener("click", () => signinMode($("#signin-form").dataset.mode !== "signup"));
  $("#signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const signup = $("#signin-form").dataset.mode === "signup";
    const body = { email: $("#signin-email").value.trim(), password: $("#signin-password").value, cookie: true };
    if (signup) body.name = $("#signin-name").value.trim();
    act($("#signin-submit"), status, async () => {
      const data = await api(signup ? "/api/auth/signup" : "/api/auth/login", { method: "POST", body });
      saveSession(data);
      $("#signin-password").value = "";
      say(status, "");
      await start();
    });
  });
  $("#logout").addEventListener("click", async () => {
    // Each step on its own: signing out here is what matters even if the server cannot be reached.
    await api("/api/auth/logout", { method: "POST", body: {}, token: session?.access }).catch(() => {});
    await api("/api/auth/refresh", { method: "DELETE", headers: csrfHeader() || {} }).catch(() => {});
    tabs?.postMessage("signed-out");
    signOut();
  });
  tabs?.addEventListener("message", (event) => {
    if (event.data === "signed-out" && session) signOut("You signed out in another tab.");
  });
}

// -- where the console is: #webinar=ID&tab=NAME, so a reload or a shared link opens the same place ---

function place() {
  return new URLSearchParams(location.hash.slice(1));
}

function remember(changes) {
  const params = place();
  for (const [key, value] of Object.entries(changes)) {
    if (value) params.set(key, value);
    else params.delete(key);
  }
  history.replaceState(null, "", `${location.pathname}${location.search}#${params}`);
}

// -- webinars ----------------------------------------------------------------------------------------

async function loadWebinars(selectId) {
  const data = await call("/api/webinars");
  webinars = data.webinars.sort((a, b) => b.starts_at.localeCompare(a.starts_at));
  fill(
    $("#webinars"),
    webinars.map((w) =>
      el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: "webinar-item",
            "aria-current": current && current.id === w.id ? "true" : undefined,
            onclick: () => select(w.id),
          },
          el("strong", {}, w.title),
          el("span", { class: "muted" }, `${longDate(w.starts_at)} · ${w.status}`),
        ),
      ),
    ),
  );
  if (!webinars.length) fill($("#webinars"), el("li", { class: "muted" }, "No webinars yet."));
  if (selectId) await select(selectId);
}

function toLocalInput(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function openForm(webinar) {
  editing = webinar;
  $("#form-title").textContent = webinar ? "Edit webinar" : "New webinar";
  $("#f-title").value = webinar?.title || "";
  $("#f-description").value = webinar?.description || "";
  const start = webinar ? webinar.starts_at : new Date(Date.now() + 3600e3).toISOString();
  $("#f-starts").value = toLocalInput(start);
  $("#f-duration").value = webinar?.duration_minutes || 60;
  $("#f-capacity").value = webinar?.capacity || 0;
  $("#f-mode").value = webinar?.registration_mode || "open";
  $("#f-stream").value = webinar?.stream_url || "";
  $("#f-qa-moderation").checked = Boolean(webinar?.qa_moderation);
  $("#f-cohosts").value = (webinar?.cohosts || []).join(", ");
  $("#f-panelists").value = (webinar?.panelists || []).join(", ");
  $("#f-cta-url").value = webinar?.cta_url || "";
  $("#f-cta-label").value = webinar?.cta_label || "";
  say($("#form-status"), "");
  show($("#webinar"), false);
  show($("#webinar-form"));
  $("#f-title").focus();
}

function wireForm() {
  $("#new-webinar").addEventListener("click", () => openForm(null));
  $("#f-cancel").addEventListener("click", () => {
    show($("#webinar-form"), false);
    if (current) show($("#webinar"));
  });
  $("#webinar-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const starts = new Date($("#f-starts").value);
    if (Number.isNaN(starts.getTime())) return say($("#form-status"), "Pick a start date and time.", "error");
    const body = {
      title: $("#f-title").value.trim(),
      description: $("#f-description").value,
      starts_at: starts.toISOString(),
      timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
      duration_minutes: Number($("#f-duration").value),
      capacity: Number($("#f-capacity").value || 0),
      registration_mode: $("#f-mode").value,
      stream_url: $("#f-stream").value.trim(),
      qa_moderation: $("#f-qa-moderation").checked,
    };
    const emails = (id) => $(id).value.split(/[\s,;]+/).filter(Boolean);
    const cohosts = emails("#f-cohosts");
    if (cohosts.join() !== (editing?.cohosts || []).join()) body.cohosts = cohosts;
    const panelists = emails("#f-panelists");
    if (panelists.join() !== (editing?.panelists || []).join()) body.panelists = panelists;
    // empty clears the call to action (the thank-you view then shows none)
    body.cta_url = $("#f-cta-url").value.trim();
    body.cta_label = $("#f-cta-label").value.trim();
    if (!body.title) return say($("#form-status"), "Give the webinar a title.", "error");
    act($("#f-save"), $("#form-status"), async () => {
      const saved = editing
        ? await call(`/api/webinars/${editing.id}`, { method: "PATCH", body })
        : await call("/api/webinars", { method: "POST", body });
      show($("#webinar-form"), false);
      await loadWebinars(saved.id);
    });
  });
}

// -- the selected webinar ----------------------------------------------------------------------------

async function select(id) {
  const w = webinars.find((x) => x.id === id) || (await api(`/api/webinars/${id}`));
  current = w;
  remember({ webinar: w.id });
  show($("#webinar-form"), false);
  show($("#webinar"));
  renderHeader(w);
  for (const button of $("#webinars").querySelectorAll("button")) button.removeAttribute("aria-current");
  live?.leave();
  live = new LiveConsole({ client, webinar: w, call, onWebinar: renderHeader, onRegistration: registrationChanged });
  loadRegistrants();
  if (w.status === "ended") loadReports();
}

function renderHeader(w) {
  current = { ...current, ...w };
  const c = current;
  $("#w-title").textContent = c.title;
  $("#w-when").textContent = `${longDate(c.starts_at)} · ${c.duration_minutes} min`;
  $("#w-status").textContent = { scheduled: "Scheduled", live: "● Live", ended: "Ended", cancelled: "Cancelled" }[c.status] || c.status;
  $("#w-status").dataset.kind = c.status;
  $("#w-counts").textContent = `${c.seats_taken} registered${c.capacity ? ` of ${c.capacity}` : ""}`;
  const link = `${location.origin}/webinars/${c.id}/register`;
  $("#w-register-link").href = link;
  $("#w-register-link").textContent = link;
  preview(c);
  show($("#go-live"), c.status === "scheduled");
  show($("#end"), c.status === "live");
  show($("#cancel"), c.status === "scheduled");
  show($("#recording-form"), c.status === "ended");
  show($("#edit"), c.status === "scheduled");
  show($("#edit-stream"), c.status === "scheduled");
  if (c.status === "ended") $("#reports-note").textContent = "The webinar has ended: these reports are final.";
}

/** The host's preview of the stream: it plays before going live too, so a wrong address shows early. */
function preview(w) {
  const root = $("#preview");
  const key = [w.id, w.stream_url, w.status, w.recording_url].join(" ");
  if (root.dataset.key === key) return;
  root.dataset.key = key;
  const status = w.status === "scheduled" ? "live" : w.status;
  mountPlayer(root, w.stream_url, { status, recordingUrl: w.recording_url || "", label: "Stream preview" });
}

function wireLifecycle() {
  const line = $("#w-status-line");
  $("#go-live").addEventListener("click", () =>
    act($("#go-live"), line, async () => {
      renderHeader(await call(`/api/webinars/${current.id}/live`, { method: "POST", body: {} }));
      say(line, "You are live. Attendees in the lobby have been moved into the room.", "ok");
      loadWebinars();
    }),
  );
  $("#end").addEventListener("click", () => {
    if (!confirm("End the webinar for everyone?")) return;
    act($("#end"), line, async () => {
      renderHeader(await call(`/api/webinars/${current.id}/end`, { method: "POST", body: {} }));
      say(line, "The webinar has ended.", "ok");
      loadWebinars();
      loadReports();
    });
  });
  $("#cancel").addEventListener("click", () => {
    if (!confirm("Cancel this webinar? Registrants can no longer join.")) return;
    act($("#cancel"), line, async () => {
      renderHeader(await call(`/api/webinars/${current.id}/cancel`, { method: "POST", body: {} }));
      say(line, "The webinar is cancelled.", "ok");
      loadWebinars();
    });
  });
  $("#recording-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const url = $("#recording-url").value.trim();
    act($("#recording-save"), $("#recording-status"), async () => {
      await call(`/api/webinars/${current.id}/recording`, { method: "POST", body: { url } });
      renderHeader({ recording_url: url });
      say($("#recording-status"), "Saved: the registrants are being told where to watch the recording.", "ok");
    });
  });
  $("#edit").addEventListener("click", () => openForm(current));
  $("#edit-stream").addEventListener("click", () => {
    openForm(current);
    $("#f-stream").focus();
  });
}

// -- registrants -------------------------------------------------------------------------------------

async function loadRegistrants() {
  if (!current) return;
  const q = $("#reg-search").value.trim();
  const statusFilter = $("#reg-filter").value;
  const params = new URLSearchParams();
  if (q) params.set("q", q);
  if (statusFilter) params.set("status", statusFilter);
  try {
    const data = await call(`/api/webinars/${current.id}/registrations?${params}`);
    fill(
      $("#registrants"),
      data.registrations.map((r) => {
        const actions = el("td", {});
        if (r.status === "pending") {
          for (const [label, decision] of [["Approve", "approve"], ["Reject", "reject"]]) {
            const button = el("button", { type: "button", class: decision === "reject" ? "secondary" : "", "aria-label": `${label} ${r.name}` }, label);
            button.addEventListener("click", () =>
              act(button, $("#reg-status"), async () => {
                await call(`/api/webinars/${current.id}/registrations/${r.id}/${decision}`, { method: "POST", body: {} });
                await loadRegistrants();
              }),
            );
            actions.append(button);
          }
        }
        return el("tr", { dataset: { id: r.id } }, el("td", {}, r.name), el("td", {}, r.email_undeliverable ? `${r.email} (mail undeliverable)` : r.email), el("td", {}, r.status), actions);
      }),
    );
    if (!data.registrations.length) fill($("#registrants"), el("tr", {}, el("td", { colspan: "4", class: "muted" }, "No registrants yet.")));
  } catch (err) {
    say($("#reg-status"), err.message, "error");
  }
}

/** Download an authenticated CSV: fetch with the bearer token, then save the blob. */
async function download(path, filename, statusNode) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${await token()}` } });
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    say(statusNode, data.error?.message || `Export failed (${response.status})`, "error");
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  const a = el("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// A registration of the selected webinar changed (backstage:<id>, live): a new one awaiting approval
// is announced, and the list is loaded again.
function registrationChanged(r) {
  if (!current || r.webinar_id !== current.id) return;
  if (r.status === "pending") say($("#reg-status"), `New registration awaiting your approval: ${r.name} (${r.email})`);
  loadRegistrants();
}

function wireRegistrants() {
  let timer;
  $("#reg-search").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(loadRegistrants, 250);
  });
  $("#reg-filter").addEventListener("change", loadRegistrants);
  $("#reg-csv").addEventListener("click", () =>
    act($("#reg-csv"), $("#reg-status"), () =>
      download(`/api/webinars/${current.id}/registrations.csv`, `registrants-${current.id}.csv`, $("#reg-status")),
    ),
  );
}

// -- reports -----------------------------------------------------------------------------------------

const STAT_LABELS = {
  registrants: "Registered",
  attendees: "Attended",
  chat_messages: "Chat messages",
  questions: "Questions",
  question_upvotes: "Upvotes",
  poll_votes: "Poll votes",
  reactions: "Reactions",
};

async function loadReports() {
  if (!current) return;
  try {
    const [engagement, attendance, feedback] = await Promise.all([
      call(`/api/webinars/${current.id}/reports/engagement`),
      call(`/api/webinars/${current.id}/reports/attendance`),
      call(`/api/webinars/${current.id}/reports/feedback`),
    ]);
    renderRatings(feedback);
    fill(
      $("#engagement"),
      Object.entries(STAT_LABELS)
        .filter(([key]) => key in engagement)
        .map(([key, label]) => el("div", {}, el("dt", {}, label), el("dd", {}, String(engagement[key])))),
    );
    fill(
      $("#attendance"),
      attendance.attendance.map((a) =>
        el("tr", {}, el("td", {}, a.name), el("td", {}, String(a.minutes ?? 0)), el("td", {}, a.present_live ? "yes" : "no")),
      ),
    );
  } catch (err) {
    say($("#reports-status"), err.message, "error");
  }
}

const stars = (n) => "★".repeat(n) + "☆".repeat(5 - n);

/** The attendees' ratings (GET .../reports/feedback): the average, the count, each comment as text. */
function renderRatings(feedback) {
  const { count, average, ratings } = feedback;
  $("#ratings-summary").textContent = count
    ? `Average ${average.toFixed(1)} of 5 from ${count} ${count === 1 ? "rating" : "ratings"}`
    : "No ratings yet.";
  fill(
    $("#ratings"),
    ratings.map((r) =>
      el(
        "li",
        {},
        el("span", { class: "stars", "aria-label": `${r.rating} of 5` }, stars(r.rating)),
        " ",
        el("span", { class: "who" }, r.name),
        r.comment ? el("p", { class: "comment" }, r.comment) : null,
      ),
    ),
  );
}

function wireReports() {
  for (const button of document.querySelectorAll("[data-csv]")) {
    button.addEventListener("click", () =>
      act(button, $("#reports-status"), () =>
        download(`/api/webinars/${current.id}/${button.dataset.csv}`, button.dataset.csv.split("/").pop(), $("#reports-status")),
      ),
    );
  }
}

// -- start -------------------------------------------------------------------------------------------

async function start() {
  show($("#signin"), false);
  show($("#console"));
  show($("#logout"));
  show($("#connection"));
  $("#me").textContent = session.user?.name || session.user?.email || "";
  client = new RealtimeClient({ getToken: token });
  mountConnectionState($("#connection"), client);
  client.addEventListener("fatal", (event) => signOut(event.detail.message || "Signed out."));
  client.start();
  try {
    // A host's mail or notification links to /host#webinar=<id>, and a reload keeps the place.
    const { webinar, tab } = Object.fromEntries(place());
    await loadWebinars(webinar || undefined);
    const panel = tab && document.getElementById(`tab-${tab}`);
    if (current && panel) selectTab(panel);
  } catch (err) {
    if (err.status === 401) signOut("Your session has expired. Please sign in again.");
    else say(status, err.message, "error");
  }
}

wireSignin();
wireForm();
wireLifecycle();
wireRegistrants();
wireReports();
selectTab = mountTabs($("#webinar .tabs"), (id) => {
  remember({ tab: id.replace(/^tab-/, "") });
  if (id === "tab-registrants") loadRegistrants();
  if (id === "tab-reports") loadReports();
});

/** A reload or a new tab: resume the session from the refresh cookie, else ask to sign in. */
async function resume() {
  signinMode(false);
  if (csrfHeader()) {
    try {
      await refreshSession();
      await start();
      return;
    } catch (err) {
      if (err.status !== 401 && err.status !== 403) say(status, err.message, "error");
    }
  }
  show($("#signin"));
}

resume();
