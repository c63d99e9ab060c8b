// Gatehouse admin UI: small enhancements only; every page works without this script.
"use strict";
document.addEventListener("submit", (event) => {
  const message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) event.preventDefault();
});
document.addEventListener("click", (event) => {
  const id = event.target.getAttribute && event.target.getAttribute("data-copy");
  if (!id) return;
  const text = document.getElementById(id)?.textContent ?? "";
  navigator.clipboard?.writeText(text).then(() => { event.target.textContent = "Copied"; });
});
// The overview refreshes itself while visible.
const live = document.querySelector("[data-refresh]");
if (live) {
  const seconds = Number(live.getAttribute("data-refresh")) || 15;
  setInterval(() => { if (!document.hidden) window.location.reload(); }, seconds * 1000);
}
