// Paywatch: progressive enhancement only. Pages work without it.
document.addEventListener("htmx:responseError", (event) => {
  const flashes = document.getElementById("flashes");
  if (!flashes) return;
  const p = document.createElement("p");
  p.className = "flash flash-error";
  p.textContent = `The server answered ${event.detail.xhr.status}; the view may be out of date.`;
  flashes.replaceChildren(p);
});

// <form data-confirm="…"> asks before submitting; the text is data, never script.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
}, true);
