// Paywatch: progressive enhancement only. Pages work without it.
document.addEventListener("htmx:responseError", (event) => {
  const flashes = document.getElementById("flashes");
  if (!flashes) return;
  const p = document.createElement("p");
  p.className = "flash flash-error";
  p.textContent = `The server answered ${event.detail.xhr.status}; the view may be out of date.`;
  flashes.replaceChildren(p);
});
