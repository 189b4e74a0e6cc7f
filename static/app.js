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

// No inline handlers anywhere (the Content-Security-Policy forbids them): behaviour is
// declared with data attributes and wired here.
// <select data-autosubmit> sends its form as soon as it changes.
document.addEventListener("change", (event) => {
  const select = event.target;
  if (select.matches && select.matches("select[data-autosubmit]") && select.form) select.form.requestSubmit();
});

// <input data-select-on-focus> selects its whole text (a key to copy).
document.addEventListener("focusin", (event) => {
  if (event.target.matches && event.target.matches("input[data-select-on-focus]")) event.target.select();
});

// <button data-copy="#field" hidden> copies that field's value; shown only where this script runs.
const showCopyButtons = (root) => root.querySelectorAll("button[data-copy]").forEach((b) => { b.hidden = false; });
showCopyButtons(document);
document.addEventListener("htmx:load", (event) => showCopyButtons(event.detail.elt));
document.addEventListener("click", async (event) => {
  const button = event.target.closest && event.target.closest("button[data-copy]");
  const field = button && document.querySelector(button.dataset.copy);
  if (!field) return;
  field.select();
  let copied = false;
  try {
    await navigator.clipboard.writeText(field.value);
    copied = true;
  } catch (error) {
    copied = document.execCommand("copy");  // no clipboard API (plain http): the selection
  }
  button.textContent = copied ? "Copied" : "Press Ctrl+C to copy";
});
