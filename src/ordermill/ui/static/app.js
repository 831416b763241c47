// ordermill UI behaviour: toasts, dialogs, flow graphs (mermaid) and htmx error feedback.
// No inline scripts anywhere (the Content-Security-Policy forbids them); pages opt in through
// data attributes.
(function () {
  "use strict";

  // --- toasts -----------------------------------------------------------------------------
  const toasts = () => document.getElementById("toasts");

  function showToast(text, kind) {
    const region = toasts();
    if (!region) return;
    for (const existing of region.querySelectorAll(".toast-text")) {
      if (existing.textContent === text) return; // a repeated failure (polling) shows once
    }
    const toast = document.createElement("div");
    toast.className = "toast toast-" + kind;
    toast.setAttribute("role", kind === "error" ? "alert" : "status");
    const span = document.createElement("span");
    span.className = "toast-text";
    span.textContent = text;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("data-dismiss-toast", "");
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    toast.append(span, close);
    region.append(toast);
    armToast(toast);
  }

  function armToast(toast) {
    if (toast.dataset.armed) return;
    toast.dataset.armed = "1";
    // Errors stay until dismissed: they say what to do, and people need time to read that.
    if (!toast.classList.contains("toast-error")) {
      setTimeout(() => toast.remove(), 6000);
    }
  }

  function armToasts() {
    const region = toasts();
    if (region) region.querySelectorAll(".toast").forEach(armToast);
  }

  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    const dismiss = target.closest("[data-dismiss-toast]");
    if (dismiss) dismiss.closest(".toast")?.remove();

    const opener = target.closest("[data-open-dialog]");
    if (opener) {
      const dialog = document.getElementById(opener.getAttribute("data-open-dialog"));
      if (dialog && typeof dialog.showModal === "function") dialog.showModal();
    }
    const closer = target.closest("[data-close-dialog]");
    if (closer) closer.closest("dialog")?.close();

    const copy = target.closest("[data-copy]");
    if (copy) {
      const source = document.getElementById(copy.getAttribute("data-copy"));
      if (source && navigator.clipboard) {
        navigator.clipboard.writeText(source.textContent.trim()).then(
          () => showToast("Copied to the clipboard.", "success"),
          () => showToast("Copying failed: select the text and copy it yourself.", "error"),
        );
      }
    }
  });

  // --- htmx feedback: nothing fails silently ----------------------------------------------
  document.addEventListener("htmx:sendError", () => {
    showToast("Cannot reach the server. Check your connection; the page retries on its own.", "error");
  });
  document.addEventListener("htmx:responseError", (event) => {
    const xhr = event.detail.xhr;
    if (xhr && xhr.getResponseHeader("HX-Retarget")) return; // the server sent its own message
    const status = xhr ? xhr.status : "?";
    showToast("The server answered " + status + ". Reload the page and try again.", "error");
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    const dialog = event.detail.elt && event.detail.elt.closest && event.detail.elt.closest("dialog");
    if (dialog && dialog.open) dialog.close();
  });
  document.addEventListener("htmx:afterSettle", (event) => {
    armToasts();
    renderGraphs(event.detail.elt instanceof Element ? event.detail.elt : document);
  });

  // --- live refreshes keep your place: focus, open panels, scroll ---------------------------
  // Every focusable element and panel of a refreshed region has a stable id; after a swap the
  // element with the same id gets focus back and the same panels are open again.
  let kept = null;
  document.addEventListener("htmx:beforeSwap", (event) => {
    const target = event.detail.target;
    if (!(target instanceof Element)) return;
    const active = document.activeElement;
    kept = {
      focus: active && active !== document.body && target.contains(active) && active.id ? active.id : null,
      open: Array.from(target.querySelectorAll("details[open][id]")).map((d) => d.id),
      closed: Array.from(target.querySelectorAll("details[id]:not([open])")).map((d) => d.id),
      x: window.scrollX,
      y: window.scrollY,
    };
  });
  document.addEventListener("htmx:afterSwap", () => {
    if (!kept) return;
    const state = kept;
    kept = null;
    for (const id of state.open) document.getElementById(id)?.setAttribute("open", "");
    for (const id of state.closed) document.getElementById(id)?.removeAttribute("open");
    if (state.focus && (document.activeElement === document.body || !document.activeElement)) {
      document.getElementById(state.focus)?.focus({ preventScroll: true });
    }
    window.scrollTo(state.x, state.y);
  });

  // --- flow graphs ---------------------------------------------------------------------------
  const drawn = new Map(); // mermaid source -> svg; a refresh with an unchanged graph reuses it
  let queue = Promise.resolve();
  let counter = 0;
  let initialised = false;

  function initMermaid() {
    if (initialised || !window.mermaid) return Boolean(window.mermaid);
    window.mermaid.initialize({
      startOnLoad: false,
      securityLevel: "strict",
      theme: "base",
      flowchart: { htmlLabels: true, curve: "basis", padding: 12 },
      themeVariables: {
        fontFamily: "system-ui, -apple-system, Segoe UI, Roboto, DejaVu Sans, sans-serif",
        fontSize: "14px",
        primaryColor: "#f8fafc",
        primaryBorderColor: "#94a3b8",
        primaryTextColor: "#1c2430",
        lineColor: "#94a3b8",
        clusterBkg: "#fafbfc",
        clusterBorder: "#d5dae1",
      },
    });
    initialised = true;
    return true;
  }

  function wireNodes(element) {
    let nodes = {};
    try {
      nodes = JSON.parse(element.getAttribute("data-nodes") || "{}");
    } catch (_) {
      nodes = {};
    }
    element.querySelectorAll("g.node").forEach((node) => {
      const match = /flowchart-(n\d+)-/.exec(node.id || "");
      const key = match ? nodes[match[1]] : undefined;
      if (key === undefined) return;
      node.setAttribute("data-task-key", key);
      node.addEventListener("click", () => {
        const button = document.querySelector('button.task-button[data-task-key="' + CSS.escape(key) + '"]');
        if (button) button.click();
      });
    });
  }

  function renderGraph(element) {
    const source = element.getAttribute("data-graph");
    if (!source || element.dataset.drawn === source) return Promise.resolve();
    const cached = drawn.get(source);
    if (cached) {
      element.innerHTML = cached;
      element.dataset.drawn = source;
      wireNodes(element);
      return Promise.resolve();
    }
    if (!initMermaid()) return Promise.resolve();
    counter += 1;
    return window.mermaid
      .render("graph-svg-" + counter, source)
      .then(({ svg }) => {
        if (drawn.size > 50) drawn.clear();
        drawn.set(source, svg);
        element.innerHTML = svg;
        element.dataset.drawn = source;
        element.classList.remove("graph-failed");
        wireNodes(element);
      })
      .catch(() => {
        element.dataset.drawn = source;
        element.classList.add("graph-failed");
        element.textContent = "The graph cannot be drawn yet: fix the problems listed and it appears.";
      });
  }

  function renderGraphs(root) {
    const scope = root || document;
    const found = Array.from(scope.querySelectorAll ? scope.querySelectorAll(".graph[data-graph]") : []);
    if (scope.matches && scope.matches(".graph[data-graph]")) found.push(scope);
    // mermaid renders one diagram at a time; a queue keeps concurrent refreshes apart.
    for (const element of found) queue = queue.then(() => renderGraph(element));
  }

  // The chosen task stays chosen across refreshes, and its panel follows its status: after an
  // action (or a change seen by the refresh) the panel is read again.
  let chosenTask = null;
  function markChosen() {
    document.querySelectorAll("button.task-button[aria-pressed]").forEach((b) => {
      b.setAttribute("aria-pressed", b.getAttribute("data-task-key") === chosenTask ? "true" : "false");
    });
  }
  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("button.task-button") : null;
    if (!button) return;
    chosenTask = button.getAttribute("data-task-key");
    markChosen();
  });
  document.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.target;
    if (!(target instanceof Element) || target.id !== "order-live" || chosenTask === null) return;
    const live = document.getElementById("order-live");
    if (!live) return;
    markChosen();
    const detail = document.querySelector("#task-detail [data-task-detail]");
    const button = live.querySelector('.task-list button.task-button[data-task-key="' + CSS.escape(chosenTask) + '"]');
    if (!detail || !button || !window.htmx) return;
    if (detail.getAttribute("data-status") !== button.getAttribute("data-status")) {
      window.htmx.ajax("GET", button.getAttribute("hx-get"), { target: "#task-detail", swap: "innerHTML" });
    }
  });

  function start() {
    armToasts();
    renderGraphs(document);
  }
  // Deferred scripts (mermaid among them) have all run by DOMContentLoaded.
  if (document.readyState === "complete") start();
  else document.addEventListener("DOMContentLoaded", start);
  window.ordermill = { showToast, renderGraphs };
})();
