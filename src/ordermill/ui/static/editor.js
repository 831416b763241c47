// The flow editor: a line-number gutter for the stages textarea, problem lines marked in it,
// and "line N" buttons that move the caret there. Validation itself is htmx (server-side).
(function () {
  "use strict";

  function editor() {
    return document.getElementById("stages");
  }

  function badLines() {
    const lines = new Set();
    document.querySelectorAll("#problems [data-line]").forEach((item) => {
      lines.add(Number(item.getAttribute("data-line")));
    });
    return lines;
  }

  function paintGutter() {
    const area = editor();
    const gutter = document.getElementById("gutter");
    if (!area || !gutter) return;
    const count = area.value.split("\n").length;
    const bad = badLines();
    const fragment = document.createDocumentFragment();
    for (let n = 1; n <= count; n += 1) {
      const span = document.createElement("span");
      span.textContent = String(n);
      if (bad.has(n)) {
        span.className = "bad";
        span.title = "A problem points here";
      }
      fragment.append(span);
    }
    gutter.replaceChildren(fragment);
    gutter.scrollTop = area.scrollTop;
  }

  function jumpTo(line) {
    const area = editor();
    if (!area) return;
    const lines = area.value.split("\n");
    let offset = 0;
    for (let n = 1; n < line && n <= lines.length; n += 1) offset += lines[n - 1].length + 1;
    area.focus();
    area.setSelectionRange(offset, offset + (lines[line - 1] || "").length);
    const lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 19;
    area.scrollTop = Math.max(0, (line - 3) * lineHeight);
  }

  document.addEventListener("input", (event) => {
    if (event.target === editor()) paintGutter();
  });
  document.addEventListener(
    "scroll",
    (event) => {
      const gutter = document.getElementById("gutter");
      if (event.target === editor() && gutter) gutter.scrollTop = event.target.scrollTop;
    },
    true,
  );
  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("[data-jump-line]") : null;
    if (button) jumpTo(Number(button.getAttribute("data-jump-line")));
  });
  document.addEventListener("htmx:afterSettle", paintGutter);
  document.addEventListener("DOMContentLoaded", paintGutter);
})();
