// The visible connection state: a small pill that says whether live updates are flowing.
import { say } from "./dom.js";

const LABELS = {
  connecting: ["Connecting…", "info"],
  open: ["Live", "ok"],
  reconnecting: ["Reconnecting…", "warn"],
  offline: ["Offline: waiting for the network", "error"],
  closed: ["Disconnected", "error"],
};

export function mountConnectionState(node, client) {
  node.setAttribute("role", "status");
  node.setAttribute("aria-live", "polite");
  client.addEventListener("state", (event) => {
    const { state, retryIn } = event.detail;
    const [label, kind] = LABELS[state] || [state, "info"];
    const text = state === "reconnecting" && retryIn ? `Reconnecting in ${Math.ceil(retryIn / 1000)} s…` : label;
    say(node, text, kind);
    node.dataset.state = state;
  });
}
