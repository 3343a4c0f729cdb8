// The admin UI's copy buttons: a button with data-copy="ID" copies the text of element ID.
// Without this script (or a clipboard) the buttons stay hidden; the text can be selected by hand.
"use strict";
for (const button of document.querySelectorAll("button[data-copy]")) {
  if (!navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    try {
      await navigator.clipboard.writeText(source.textContent.trim());
      button.textContent = "Copied";
    } catch {
      button.textContent = "Select it and copy by hand";
    }
  });
}
