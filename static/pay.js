// The public payment page: a countdown to expiry. Progressive only: without it the page
// still shows the time left (server-rendered), refreshes itself and has a "Check again" link.
(function () {
  function tick() {
    // Found afresh each second: htmx replaces the status element when it polls.
    const el = document.getElementById("pay-countdown");
    if (!el) return;
    const left = Math.max(0, Math.floor((Date.parse(el.dataset.expires) - Date.now()) / 1000));
    const minutes = Math.floor(left / 60);
    const seconds = String(left % 60).padStart(2, "0");
    const text = `${minutes}:${seconds}`;
    if (el.textContent !== text) el.textContent = text;
  }
  document.addEventListener("DOMContentLoaded", tick);
  setInterval(tick, 1000);
})();
