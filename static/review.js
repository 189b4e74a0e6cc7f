// The review queue's keyboard and live behaviour. Progressive enhancement only:
// every action is an ordinary form that works without this file.
//   j / k  select the next / previous payment     c  confirm its best candidate
//   r      reject it (type the reason, Enter sends, Escape cancels)
//   l      type a reference to link an unmatched payment      ?  show the help line
(() => {
  const QUEUE_ID = "review-queue";
  let index = 0; // position of the selected item
  let selectedId = null; // its payment id, followed across a refresh of the queue

  const queue = () => document.getElementById(QUEUE_ID);
  const items = () => Array.from(document.querySelectorAll(`#${QUEUE_ID} .review-item`));

  function select(position, scroll = true) {
    const all = items();
    all.forEach((el) => {
      el.classList.remove("selected");
      el.removeAttribute("aria-current");
    });
    if (!all.length) return null;
    index = Math.max(0, Math.min(position, all.length - 1));
    const item = all[index];
    item.classList.add("selected");
    item.setAttribute("aria-current", "true");
    selectedId = item.dataset.payment;
    if (scroll) item.scrollIntoView({ block: "nearest" });
    return item;
  }

  const selected = () => document.querySelector(`#${QUEUE_ID} .review-item.selected`) || select(index);

  function typing(target) {
    return ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName) || target.isContentEditable;
  }

  function formInUse(root) {
    const active = document.activeElement;
    return Boolean(root.querySelector("details.reject[open]") || (active && root.contains(active) && active.closest("form")));
  }

  function confirmBest() {
    const form = selected()?.querySelector(".confirm-form"); // the first one is the best candidate
    if (form) form.requestSubmit();
  }

  function openReject() {
    const details = selected()?.querySelector("details.reject");
    if (!details) return;
    details.open = true;
    details.querySelector("input[name=reason]").focus();
  }

  function focusLink() {
    selected()?.querySelector(".link-form input[name=reference]")?.focus();
  }

  function cancel(form) {
    const details = form.closest("details.reject");
    if (details) details.open = false;
    form.reset();
    document.activeElement?.blur();
  }

  function toggleHelp() {
    const help = document.getElementById("review-help");
    if (help) help.hidden = !help.hidden;
  }

  const KEYS = { j: () => select(index + 1), k: () => select(index - 1), c: confirmBest, r: openReject, l: focusLink, "?": toggleHelp };

  document.addEventListener("keydown", (event) => {
    if (!queue()) return;
    if (event.key === "Escape") {
      const form = event.target.closest?.(`#${QUEUE_ID} form`);
      if (form) {
        event.preventDefault();
        cancel(form);
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    const action = KEYS[event.key];
    if (!action) return;
    event.preventDefault(); // so "r" or "l" is not typed into the field it focuses
    action();
  });

  document.addEventListener("click", (event) => {
    const item = event.target.closest?.(`#${QUEUE_ID} .review-item`);
    if (item) select(items().indexOf(item), false);
  });

  // The 5-s poll must not replace a form the user is filling in: skip it meanwhile.
  document.addEventListener("htmx:beforeRequest", (event) => {
    const elt = event.detail.elt;
    if (elt.id === QUEUE_ID && formInUse(elt)) event.preventDefault();
  });

  // A refused decision (404, 409, 422) answers with the payment's item, the error on its card
  // (HX-Retarget), or with the queue when the payment left it meanwhile: show either.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const status = event.detail.xhr.status;
    const target = event.detail.target;
    const ours = target?.id === QUEUE_ID || target?.matches?.(`#${QUEUE_ID} .review-item`);
    if (ours && [404, 409, 422].includes(status)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // After a swap, keep the selection: the same payment if it is still there, else the same position.
  document.addEventListener("htmx:afterSettle", () => {
    const all = items();
    const same = all.findIndex((el) => el.dataset.payment === selectedId);
    select(same >= 0 ? same : index, false);
  });

  select(0, false);
})();
