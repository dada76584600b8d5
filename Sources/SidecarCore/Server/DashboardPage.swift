/// `GET /sidecar/`: one self-contained page (no CDN, no build step) that draws
/// `/sidecar/stats` and refreshes itself every 5 seconds.
enum DashboardPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>llm-sidecar</title>
        <style>
          body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2430; background: #f6f7f9; }
          h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 24px 0 8px; }
          .muted { color: #6b7383; } .cards { display: flex; gap: 12px; flex-wrap: wrap; }
          .card { background: #fff; border-radius: 8px; padding: 12px 16px; min-width: 150px;
                  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
          .card .value { font-size: 22px; font-weight: 600; }
          table { border-collapse: collapse; background: #fff; min-width: 480px;
                  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
          th, td { text-align: left; padding: 6px 12px; border-bottom: 1px solid #eceef2; }
          td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
          .bar { display: inline-block; height: 10px; background: #4c7bd9; border-radius: 2px; }
          .open { color: #c0392b; font-weight: 600; } .half_open { color: #d68910; } .closed { color: #1e8449; }
          svg { background: #fff; border-radius: 8px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
        </style>
        </head>
        <body>
        <h1>llm-sidecar</h1>
        <div class="muted" id="status">loading /sidecar/stats ...</div>
        <h2>Today (UTC)</h2>
        <div class="cards">
          <div class="card"><div class="muted">spend</div><div class="value" id="spend-today">-</div></div>
          <div class="card"><div class="muted">saved by the cache</div><div class="value" id="saved-today">-</div></div>
          <div class="card"><div class="muted">requests</div><div class="value" id="requests-today">-</div></div>
          <div class="card"><div class="muted">cache hit rate</div><div class="value" id="hit-rate">-</div></div>
        </div>
        <h2>Spend and savings, last 24 hours (per minute)</h2>
        <svg id="chart" width="720" height="160" role="img" aria-label="spend and savings per minute"></svg>
        <div class="muted"><span style="color:#4c7bd9">&#9632;</span> spend
          <span style="color:#27ae60">&#9632;</span> saved</div>
        <h2>Models today</h2>
        <table><thead><tr><th>model</th><th class="num">requests</th><th class="num">cache hits</th>
          <th class="num">spend</th><th class="num">saved</th></tr></thead><tbody id="models"></tbody></table>
        <h2>Apps today</h2>
        <table><thead><tr><th>app</th><th class="num">requests</th><th class="num">spend</th>
          <th class="num">budget</th></tr></thead><tbody id="apps"></tbody></table>
        <h2>Routing since start</h2>
        <table><thead><tr><th>split</th><th class="num">requests</th><th></th></tr></thead>
          <tbody id="routing"></tbody></table>
        <h2>Upstreams</h2>
        <table><thead><tr><th>upstream</th><th>traffic</th><th>breaker</th></tr></thead>
          <tbody id="breakers"></tbody></table>
        <h2>Slowest upstreams (time to first byte, moving average)</h2>
        <table><thead><tr><th>upstream</th><th>model</th><th class="num">first byte</th></tr></thead>
          <tbody id="slowest"></tbody></table>
        <script>
        "use strict";
        const usd = v => "$" + (v >= 1 ? v.toFixed(2) : v.toFixed(6));
        const esc = s => String(s).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
          '"': "&quot;", "'": "&#39;"}[c]));
        function rows(id, list, cells) {
          document.getElementById(id).innerHTML = list.length
            ? list.map(item => "<tr>" + cells(item).join("") + "</tr>").join("")
            : '<tr><td class="muted" colspan="5">none yet</td></tr>';
        }
        function chart(history) {
          const svg = document.getElementById("chart"), w = 720, h = 160, pad = 8;
          if (!history.length) { svg.innerHTML = ""; return; }
          const first = history[0].minute, last = history[history.length - 1].minute;
          const span = Math.max(1, last - first);
          const top = Math.max(1e-9, ...history.map(m => Math.max(m.cost_usd, m.saved_usd)));
          const line = (key, color) => '<polyline fill="none" stroke="' + color + '" stroke-width="2" points="' +
            history.map(m => (pad + (m.minute - first) / span * (w - 2 * pad)).toFixed(1) + "," +
              (h - pad - m[key] / top * (h - 2 * pad)).toFixed(1)).join(" ") + '"/>';
          svg.innerHTML = line("cost_usd", "#4c7bd9") + line("saved_usd", "#27ae60");
        }
        async function refresh() {
          try {
            const response = await fetch("/sidecar/stats", {cache: "no-store"});
            const s = await response.json();
            document.getElementById("status").textContent =
              "version " + s.version + ", up " + Math.round(s.uptime_seconds) + " s, day " + s.today.day;
            document.getElementById("spend-today").textContent = usd(s.today.cost_usd);
            document.getElementById("saved-today").textContent = usd(s.today.saved_usd);
            document.getElementById("requests-today").textContent = s.today.requests;
            document.getElementById("hit-rate").textContent = (s.today.hit_rate * 100).toFixed(1) + "%";
            rows("models", s.models, m => ["<td>" + esc(m.model) + "</td>", '<td class="num">' + m.requests + "</td>",
              '<td class="num">' + m.cache_hits + "</td>", '<td class="num">' + usd(m.cost_usd) + "</td>",
              '<td class="num">' + usd(m.saved_usd) + "</td>"]);
            rows("apps", s.apps, a => ["<td>" + esc(a.app) + "</td>", '<td class="num">' + a.requests + "</td>",
              '<td class="num">' + usd(a.cost_usd) + "</td>",
              '<td class="num">' + (a.budget_usd == null ? "-" : usd(a.budget_usd)) + "</td>"]);
            const split = [];
            for (const [tier, n] of Object.entries(s.since_start.tiers)) split.push(["tier " + tier, n]);
            for (const [router, n] of Object.entries(s.since_start.routers)) split.push(["router " + router, n]);
            for (const [cache, n] of Object.entries(s.since_start.cache)) split.push(["cache " + cache, n]);
            const most = Math.max(1, ...split.map(x => x[1]));
            rows("routing", split, x => ["<td>" + esc(x[0]) + "</td>", '<td class="num">' + x[1] + "</td>",
              '<td><span class="bar" style="width:' + Math.round(x[1] / most * 200) + 'px"></span></td>']);
            rows("breakers", s.breakers, b => ["<td>" + esc(b.upstream) + "</td>", "<td>" + esc(b.traffic) + "</td>",
              '<td class="' + esc(b.state) + '">' + esc(b.state) + "</td>"]);
            rows("slowest", s.slowest, l => ["<td>" + esc(l.upstream) + "</td>", "<td>" + esc(l.model) + "</td>",
              '<td class="num">' + l.first_byte_ms.toFixed(1) + " ms</td>"]);
            chart(s.history);
          } catch (error) {
            document.getElementById("status").textContent = "cannot read /sidecar/stats: " + error;
          }
        }
        refresh();
        setInterval(refresh, 5000);
        </script>
        </body>
        </html>
        """#
}
