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
// A form sent after the session ended keeps what was typed. On submit the form's typed
// fields go to sessionStorage (this tab only; emptied at logout by Clear-Site-Data). The
// answer decides: the login page (or the "form expired" page, [data-form-kept]) keeps them,
// and the next page holding the same form fills them in again with a note, to check and
// send again. Any other answer means the server got the form: they are dropped. Passwords,
// files and hidden fields are never kept.
(() => {
  const KEY = "paywatch:kept-form";
  const MAX_AGE_MS = 24 * 3600 * 1000;  // a login session's idle limit
  const target = (form) => new URL(form.getAttribute("hx-post") || form.getAttribute("action") || "",
                                   window.location.href).pathname;
  const keepable = (el) => el.name && !el.disabled && !["hidden", "password", "file", "submit", "button", "reset", "image"]
    .includes((el.type || "").toLowerCase()) && el.name !== "csrf_token";
  const read = () => {
    try {
      const saved = JSON.parse(window.sessionStorage.getItem(KEY) || "null");
      return saved && Date.now() - saved.at < MAX_AGE_MS ? saved : null;
    } catch (error) { return null; }
  };
  const write = (saved) => {
    try {
      if (saved) window.sessionStorage.setItem(KEY, JSON.stringify(saved));
      else window.sessionStorage.removeItem(KEY);
    } catch (error) { /* storage full or refused: nothing to keep */ }
  };
  const note = (text, cls) => {
    const p = document.createElement("p");
    p.className = `flash ${cls}`;
    p.setAttribute("role", "status");
    p.dataset.keptForm = "";
    p.textContent = text;
    return p;
  };

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (event.defaultPrevented || !(form instanceof HTMLFormElement) || form.id === "login-form") return;
    const method = (form.getAttribute("hx-post") ? "post" : form.getAttribute("method") || "get").toLowerCase();
    if (method !== "post") return;
    const fields = [];
    for (const el of form.elements) {
      if (!keepable(el)) continue;
      if ((el.type === "checkbox" || el.type === "radio")) {
        fields.push([el.name, el.checked ? el.value : null, el.type]);
      } else if (el.value !== "") {
        const label = el.labels && el.labels[0] ? el.labels[0].textContent : el.getAttribute("aria-label") || el.name;
        fields.push([el.name, el.value, el.type || el.tagName.toLowerCase(), label.trim().split("\n")[0].trim()]);
      }
    }
    if (!fields.some(([, value, type]) => value !== null && type !== "checkbox" && type !== "radio")) {
      write(null);  // nothing typed (a button form): nothing to lose
      return;
    }
    write({action: target(form), page: window.location.pathname, fields, at: Date.now(), state: "sent"});
  }, true);  // before htmx takes the submit over

  // An HTMX form the server answered (anything but 401) was received.
  document.addEventListener("htmx:afterRequest", (event) => {
    const saved = read();
    if (saved && saved.state === "sent" && event.detail.xhr && event.detail.xhr.status !== 401) write(null);
  });

  const restore = (saved) => {
    const form = [...document.querySelectorAll("form")].find((f) => f.id !== "login-form" && target(f) === saved.action);
    if (!form) return false;
    for (const [name, value, type] of saved.fields) {
      const els = [...form.elements].filter((el) => el.name === name && keepable(el));
      for (const el of els) {
        if (type === "checkbox" || type === "radio") el.checked = value !== null && el.value === value;
        else el.value = value;
      }
    }
    form.before(note("Your session had ended, so this form was not sent. What you typed is filled in again: "
                     + "check it and send it again.", "flash-warning"));
    return true;
  };

  const arrive = () => {
    const saved = read();
    if (!saved) return;
    const atLogin = document.getElementById("login-form");
    if (atLogin || document.querySelector("article[data-form-kept]")) {
      write({...saved, state: "kept"});
      if (atLogin) {
        atLogin.before(note(`What you typed on ${saved.page} is kept in this browser: after you log in, `
                            + "it is filled in again there, to check and send again.", "flash-warning"));
      }
      return;
    }
    if (saved.state !== "kept") { write(null); return; }
    write(null);
    if (restore(saved)) return;
    const typed = saved.fields.filter(([, value, type]) => value !== null && type !== "checkbox" && type !== "radio")
      .map(([name, value, , label]) => `${label || name}: ${value}`).join(" · ");
    const flashes = document.getElementById("flashes");
    if (flashes) {
      flashes.append(note(`Your session had ended, so a form on ${saved.page} was not sent, and it is not on this `
                          + `page to fill in again. What you typed: ${typed}`, "flash-error"));
    }
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", arrive);
  else arrive();
})();
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
