// Inline editing of the agents list (templates/partials/agents/cell.html).
// Enter submits the form (htmx posts it); leaving the field saves too; Escape
// fetches the unchanged cell back. A form is sent at most once: its editor is
// replaced by the answer (the saved cell, or the editor again with the error).
(() => {
  const editorOf = (node) => node && node.closest && node.closest("form.inline-edit");

  document.addEventListener("keydown", (event) => {
    const form = editorOf(event.target);
    if (!form || event.key !== "Escape") return;
    event.preventDefault();
    form.dataset.state = "cancelled";
    htmx.ajax("GET", form.dataset.cancelUrl, { target: form.closest("td"), swap: "outerHTML" });
  });

  document.addEventListener("focusout", (event) => {
    const form = editorOf(event.target);
    if (!form || form.dataset.state || form.contains(event.relatedTarget) || !form.isConnected) return;
    form.requestSubmit();
  });

  // Capture phase: runs before htmx's own submit handler on the form.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.matches || !form.matches("form.inline-edit")) return;
    if (form.dataset.state) {
      event.preventDefault();
      event.stopPropagation();
      return;
    }
    form.dataset.state = "saving";
  }, true);

  // A fresh editor takes the focus with its text selected, ready to type over.
  document.addEventListener("htmx:afterSettle", (event) => {
    const input = event.detail.elt && event.detail.elt.querySelector && event.detail.elt.querySelector("form.inline-edit input[name=value]");
    if (input) { input.focus(); input.select(); }
  });
})();
