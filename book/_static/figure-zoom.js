// Click (or Enter) on a figure of the lesson opens it at full size in a dialog; Escape, the Close button or a
// click outside the image closes it. Without JavaScript the link simply opens the image itself.
(function () {
  "use strict";
  function open(link) {
    const img = link.querySelector("img");
    const dialog = document.createElement("dialog");
    dialog.className = "lesson-zoom-dialog";
    dialog.setAttribute("aria-label", "Enlarged figure");
    const bar = document.createElement("div");
    bar.className = "lesson-zoom-bar";
    const note = document.createElement("span");
    note.textContent = "Full size: scroll to pan.";
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "Close";
    close.addEventListener("click", () => dialog.close());
    bar.append(note, close);
    const body = document.createElement("div");
    body.className = "lesson-zoom-body";
    const big = document.createElement("img");
    big.src = link.href;
    big.alt = img ? img.alt : "";
    body.append(big);
    dialog.append(bar, body);
    dialog.addEventListener("click", (event) => { if (event.target === dialog) dialog.close(); });
    dialog.addEventListener("close", () => { dialog.remove(); link.focus(); });
    document.body.append(dialog);
    dialog.showModal();
    close.focus();
  }
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a.lesson-zoom");
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    if (typeof HTMLDialogElement !== "function") return;  // old browser: follow the link
    event.preventDefault();
    open(link);
  });
})();
