// Rule builder: "Use selection" copies the text selected in the message into the field.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.mark");
  if (!button) return;
  const selected = String(window.getSelection() || "").trim();
  if (selected) document.getElementById("mark-" + button.dataset.field).value = selected;
});
