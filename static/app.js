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

// On a phone a table of controls shows one block per row (app.css): each cell gets its
// column's heading as data-label, shown above the value.
function labelCells(root) {
  const tables = root.matches && root.matches("table") ? [root] : root.querySelectorAll ? root.querySelectorAll("table") : [];
  for (const table of tables) {
    const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    if (!heads.length) continue;
    for (const row of table.querySelectorAll("tbody tr")) {
      let column = 0;
      for (const cell of row.children) {
        if (cell.dataset.label === undefined) cell.dataset.label = heads[column] || "";
        column += cell.colSpan || 1;
      }
    }
  }
}
document.addEventListener("DOMContentLoaded", () => labelCells(document));
document.addEventListener("htmx:load", (event) => labelCells(event.target.closest("table") || event.target));
