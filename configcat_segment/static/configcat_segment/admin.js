"use strict";
(function () {
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http on a non-local host: fall back to a selection.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    const ok = document.execCommand("copy");
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function setUpCopyButtons() {
    document.querySelectorAll("button.cs-copy[data-copy-target]").forEach(function (button) {
      const label = button.textContent;
      button.addEventListener("click", function () {
        const source = document.getElementById(button.dataset.copyTarget);
        if (!source) return;
        copyText(source.textContent.trim()).then(
          function () { button.textContent = "Copied"; },
          function () { button.textContent = "Press Ctrl+C"; }
        ).finally(function () {
          setTimeout(function () { button.textContent = label; }, 2000);
        });
      });
    });
  }

  function setUpRegionToggle() {
    const region = document.getElementById("id_region");
    const row = document.querySelector(".field-custom_endpoint");
    if (!region || !row) return;
    const sync = function () { row.hidden = region.value !== "custom"; };
    region.addEventListener("change", sync);
    sync();
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpCopyButtons();
    setUpRegionToggle();
  });
})();
