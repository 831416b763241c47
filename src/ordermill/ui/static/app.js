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

  let lastBulkOpener = null;
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

    // A bulk action's panel: remember which button opened it, and give focus back on close.
    const bulkOpener = target.closest("[data-bulk-open]");
    if (bulkOpener) lastBulkOpener = bulkOpener;
    if (target.closest("[data-close-bulk]")) {
      const panel = document.getElementById("bulk-panel");
      if (panel) panel.replaceChildren();
      (lastBulkOpener || document.getElementById("bulk-actions"))?.focus();
    }

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
  // A refresh would replace an open dialog (and what is typed in it): refreshes wait.
  document.addEventListener("htmx:beforeRequest", (event) => {
    const config = event.detail.requestConfig;
    if (config && config.verb === "get" && document.querySelector("dialog[open]")) {
      event.preventDefault();
    }
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
  // A task action replaces the task's panel (and the button pressed): focus goes to the panel.
  document.addEventListener("htmx:oobAfterSwap", (event) => {
    const target = event.detail.target;
    if (!(target instanceof HTMLElement) || target.id !== "task-detail") return;
    if (!document.activeElement || document.activeElement === document.body) {
      target.focus({ preventScroll: true });
    }
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
      showView(element);
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
        showView(element);
      })
      .catch(() => {
        element.dataset.drawn = source;
        element.classList.add("graph-failed");
        element.textContent = "The graph cannot be drawn yet: fix the problems listed and it appears.";
      });
  }

  // --- graph pan and zoom: only the SVG's viewBox changes, so the page never grows ---------
  // Each graph's chosen view outlives the live refreshes that redraw it; Fit forgets it.
  const views = new Map(); // graph element id -> [x, y, width, height]
  const ZOOM_STEP = 1.4;

  function fitBox(svg) {
    if (!svg.dataset.fit) svg.dataset.fit = svg.getAttribute("viewBox") || "";
    const box = svg.dataset.fit.split(/[\s,]+/).map(Number);
    return box.length === 4 && box.every(Number.isFinite) && box[2] > 0 ? box : null;
  }

  function showView(element) {
    const svg = element.querySelector("svg");
    const fit = svg && fitBox(svg);
    if (!fit) return;
    const view = views.get(element.id) || fit;
    svg.setAttribute("viewBox", view.join(" "));
    element.classList.toggle("graph-zoomed", views.has(element.id));
  }

  function zoom(element, factor) {
    const svg = element.querySelector("svg");
    const fit = svg && fitBox(svg);
    if (!fit) return;
    const [x, y, w, h] = views.get(element.id) || fit;
    // Between the whole graph and an eighth of it: further out or in shows nothing new.
    const width = Math.min(fit[2], Math.max(fit[2] / 8, w / factor));
    if (width >= fit[2]) {
      views.delete(element.id);
    } else {
      const height = (h * width) / w;
      views.set(element.id, [x + (w - width) / 2, y + (h - height) / 2, width, height]);
    }
    showView(element);
  }

  function pan(element, dx, dy) {
    const view = views.get(element.id);
    if (!view) return; // the whole graph is shown: nothing to pan to
    const [x, y, w, h] = view;
    views.set(element.id, [x + dx * w, y + dy * h, w, h]);
    showView(element);
  }

  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("[data-graph-zoom]") : null;
    if (!button) return;
    const element = document.getElementById(button.getAttribute("data-graph-target"));
    if (!element) return;
    const how = button.getAttribute("data-graph-zoom");
    if (how === "fit") {
      views.delete(element.id);
      showView(element);
    } else {
      zoom(element, how === "in" ? ZOOM_STEP : 1 / ZOOM_STEP);
    }
  });

  const PAN_KEYS = { ArrowLeft: [-0.15, 0], ArrowRight: [0.15, 0], ArrowUp: [0, -0.15], ArrowDown: [0, 0.15] };
  document.addEventListener("keydown", (event) => {
    const element = event.target instanceof Element ? event.target.closest(".graph[data-graph]") : null;
    if (!element || event.target !== element) return;
    if (PAN_KEYS[event.key] && views.has(element.id)) {
      pan(element, ...PAN_KEYS[event.key]);
    } else if (event.key === "+" || event.key === "=") {
      zoom(element, ZOOM_STEP);
    } else if (event.key === "-") {
      zoom(element, 1 / ZOOM_STEP);
    } else if (event.key === "0") {
      views.delete(element.id);
      showView(element);
    } else {
      return;
    }
    event.preventDefault();
  });

  // Dragging (mouse, pen or one finger) pans a zoomed graph; a drag is not a click on a task.
  let drag = null;
  document.addEventListener("pointerdown", (event) => {
    const element = event.target instanceof Element ? event.target.closest(".graph.graph-zoomed") : null;
    if (!element || event.button > 0) return;
    drag = { element, x: event.clientX, y: event.clientY, moved: false };
  });
  document.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const svg = drag.element.querySelector("svg");
    const rect = svg && svg.getBoundingClientRect();
    if (!rect || !rect.width || !rect.height) return;
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    drag.moved = true;
    pan(drag.element, -dx / rect.width, -dy / rect.height);
    drag.x = event.clientX;
    drag.y = event.clientY;
  });
  const endDrag = () => {
    if (drag && drag.moved) {
      const swallow = (event) => {
        event.stopPropagation();
        event.preventDefault();
      };
      window.addEventListener("click", swallow, { capture: true, once: true });
      setTimeout(() => window.removeEventListener("click", swallow, { capture: true }), 0);
    }
    drag = null;
  };
  document.addEventListener("pointerup", endDrag);
  document.addEventListener("pointercancel", () => {
    drag = null;
  });

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
  // After the settle, so htmx has wired the new buttons and a click makes their request.
  document.addEventListener("htmx:afterSettle", (event) => {
    const target = event.detail.target;
    if (!(target instanceof Element) || target.id !== "order-live" || chosenTask === null) return;
    const live = document.getElementById("order-live");
    if (!live) return;
    markChosen();
    const detail = document.querySelector("#task-detail [data-task-detail]");
    const button = live.querySelector('.task-list button.task-button[data-task-key="' + CSS.escape(chosenTask) + '"]');
    if (!detail || !button || !window.htmx) return;
    if (detail.getAttribute("data-status") !== button.getAttribute("data-status")) {
      // The button's own request (not htmx.ajax, whose queued calls leave promises nobody
      // awaits: a failed read would surface as an unhandled rejection).
      button.click();
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
