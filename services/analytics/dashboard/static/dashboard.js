// Live adoption dashboard: one server-sent-events stream (/api/v1/analytics/live) per filter choice.
// fetch() instead of EventSource so the bearer token travels in a header, never in a URL.
(function () {
  "use strict";
  const state = window.hearthDashboard = { ready: false, updates: 0, last: null, error: null };
  const token = new URLSearchParams(location.hash.slice(1)).get("token") || localStorage.getItem("hearth.token");
  if (token) localStorage.setItem("hearth.token", token);
  const status = document.getElementById("status");
  let controller = null;

  const activity = new Chart(document.getElementById("activity-chart"), {
    type: "line",
    data: { labels: [], datasets: ["DAU", "WAU", "MAU"].map((label) => ({ label, data: [], tension: 0.2, pointRadius: 2 })) },
    options: { animation: false, responsive: true, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
               plugins: { title: { display: true, text: "Active members per day" } } },
  });
  const segments = new Chart(document.getElementById("segments-chart"), {
    type: "bar",
    data: { labels: [], datasets: [{ label: "Active rate %", data: [], backgroundColor: "#4c78a8" }] },
    options: { animation: false, indexAxis: "y", responsive: true, scales: { x: { min: 0, max: 100 } },
               plugins: { title: { display: true, text: "Active rate by segment" } } },
  });

  function format(value, kind) {
    if (value === null || value === undefined) return "–";
    return kind === "pct" ? (value * 100).toFixed(1) + "%" : String(value);
  }

  function render(data) {
    const o = data.overview;
    document.querySelectorAll("[data-metric]").forEach((el) => {
      el.textContent = format(o[el.dataset.metric], el.dataset.format);
      el.dataset.raw = o[el.dataset.metric] === null ? "" : String(o[el.dataset.metric]);
    });
    activity.data.labels = o.series.map((r) => r.day.slice(5));
    ["dau", "wau", "mau"].forEach((k, i) => { activity.data.datasets[i].data = o.series.map((r) => r[k]); });
    activity.update();
    const shown = data.segments.items.filter((s) => !s.suppressed);
    const hidden = data.segments.items.filter((s) => s.suppressed);
    segments.data.labels = shown.map((s) => s.segment);
    segments.data.datasets[0].data = shown.map((s) => (s.active_rate || 0) * 100);
    segments.options.plugins.title.text = "Active rate by " + data.segments.by;
    segments.update();
    document.getElementById("suppressed").textContent = hidden.length
      ? "Suppressed (under " + data.segments.min_members + " members): " + hidden.map((s) => s.segment).join(", ") : "";
    state.last = data; state.updates += 1; state.ready = true;
    status.className = "live";
    status.textContent = "live · updated " + new Date().toLocaleTimeString();
  }

  function windowParams() {
    const days = Number(document.getElementById("period").value);
    const end = new Date(); end.setUTCDate(end.getUTCDate() + 1);
    const start = new Date(end); start.setUTCDate(end.getUTCDate() - days);
    const iso = (d) => d.toISOString().slice(0, 10);
    return new URLSearchParams({ from: iso(start), to: iso(end), by: document.getElementById("segment").value });
  }

  async function connect() {
    if (controller) controller.abort();
    controller = new AbortController();
    const mine = controller;
    try {
      const response = await fetch("/api/v1/analytics/live?" + windowParams(), {
        headers: { Authorization: "Bearer " + token, Accept: "text/event-stream" }, signal: mine.signal });
      if (!response.ok) throw new Error((await response.json()).detail || response.statusText);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          const data = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5)).join("\n");
          if (data) render(JSON.parse(data));
        }
      }
    } catch (err) {
      if (mine.signal.aborted) return;
      state.error = String(err); status.className = ""; status.textContent = "reconnecting… (" + err.message + ")";
    }
    if (!mine.signal.aborted) setTimeout(connect, 2000);
  }

  document.getElementById("period").addEventListener("change", connect);
  document.getElementById("segment").addEventListener("change", connect);
  if (!token) { status.textContent = "sign in: open this page with #token=<access token>"; return; }
  connect();
})();
