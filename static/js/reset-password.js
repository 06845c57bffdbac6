// The password-reset page: /reset-password#token=<single-use token from the mail>.
import { api } from "./realtime.js";
import { $, say, show } from "./dom.js";

const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const status = $("#status");
const form = $("#form");

if (!token) {
  say(status, "This reset link is incomplete. Ask for a new one from the sign-in page.", "error");
  show(form, false);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const password = $("#password").value;
  if (password.length < 8) return say(status, "Please use 8 characters or more.", "error");
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    await api("/api/auth/password-reset/confirm", { method: "POST", body: { token, password } });
    show(form, false);
    show(status, false);
    show($("#done"));
    history.replaceState(null, "", location.pathname); // the used token leaves the address bar
  } catch (err) {
    say(status, err.code === "reset_invalid" ? "This reset link is invalid, used or expired. Ask for a new one." : err.message, "error");
  } finally {
    button.disabled = false;
  }
});
