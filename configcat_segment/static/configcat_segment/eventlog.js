"use strict";
// The event log's optional live refresh: while "Refresh automatically" is ticked, the first
// page and the connection counts are reloaded from the JSON API every few seconds. Rows are
// built from the page's own <template> with textContent only, never as HTML.
(function () {
  const INTERVAL_MS = 5000;
  const STORAGE_KEY = "configcat_segment.event_log.live";

  function time(iso) {
    // The API writes times in the server's time zone, as the page does: keep its wall clock.
    return iso ? iso.slice(0, 19).replace("T", " ") : "";
  }

  function fill(row, event) {
    row.dataset.eventId = event.id;
    const link = row.querySelector('[data-field="created_at"]');
    link.href = event.url;
    link.textContent = time(event.created_at);
    row.querySelector('[data-field="connection"]').textContent = event.connection.name;
    row.querySelector('[data-field="kind"]').textContent = event.kind;
    row.querySelector('[data-field="source_display"]').textContent = event.source_display;
    row.querySelector('[data-field="flag_key"] code').textContent = event.flag_key;
    row.querySelector('[data-field="user_id"]').textContent = event.user_id;
    const badge = row.querySelector('[data-field="status"]');
    badge.className = "cs-badge cs-status-" + event.status;
    badge.textContent = event.status_display;
    row.querySelector('[data-field="attempts"]').textContent = event.attempts;
    const error = row.querySelector('[data-field="last_error"]');
    error.textContent = event.last_error.length > 120 ? event.last_error.slice(0, 119) + "…" : event.last_error;
    error.title = event.last_error;
    return row;
  }

  async function getJSON(url) {
    const response = await fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.json();
  }

  function setUp() {
    const toggle = document.getElementById("cs-live");
    const template = document.getElementById("cs-event-row");
    if (!toggle || !template) return;
    const body = document.querySelector("#cs-events tbody");
    const status = document.getElementById("cs-live-status");
    const health = document.querySelector("table.cs-health");
    let timer = null;

    async function refresh() {
      timer = null;
      try {
        const page = await getJSON(toggle.dataset.apiUrl);
        const known = new Set(Array.from(body.rows, (row) => row.dataset.eventId));
        const rows = page.results.map(function (event) {
          const row = fill(template.content.firstElementChild.cloneNode(true), event);
          if (!known.has(String(event.id))) row.classList.add("cs-new");
          return row;
        });
        body.replaceChildren(...rows);
        const empty = document.getElementById("cs-no-events");
        if (empty) empty.hidden = rows.length > 0;
        if (health) {
          const data = await getJSON(health.dataset.healthUrl);
          data.connections.forEach(function (connection) {
            const row = health.querySelector('tr[data-connection-id="' + CSS.escape(connection.id) + '"]');
            if (!row) return;
            ["pending", "failed", "dead"].forEach(function (name) {
              row.querySelector('[data-field="' + name + '"]').textContent = connection.counts[name];
            });
          });
        }
        status.textContent = "Updated " + new Date().toLocaleTimeString();
      } catch (error) {
        status.textContent = "Refresh failed (" + error.message + "); trying again.";
      }
      schedule();
    }

    function schedule() {
      if (toggle.checked && timer === null && !document.hidden) {
        timer = window.setTimeout(refresh, INTERVAL_MS);
      }
    }

    function stop() {
      if (timer !== null) window.clearTimeout(timer);
      timer = null;
    }

    toggle.addEventListener("change", function () {
      window.localStorage.setItem(STORAGE_KEY, toggle.checked ? "1" : "0");
      stop();
      if (toggle.checked) refresh();
      else status.textContent = "";
    });
    document.addEventListener("visibilitychange", function () {
      if (document.hidden) stop();
      else schedule();
    });
    toggle.checked = window.localStorage.getItem(STORAGE_KEY) === "1";
    schedule();
  }

  document.addEventListener("DOMContentLoaded", setUp);
})();
