/* The statistics page: fetch stats.json for the chosen period and draw it with uPlot. */
"use strict";
(function () {
  var form = document.getElementById("range");
  var key = form.getAttribute("data-key");
  var base = "/apps/keys/" + encodeURIComponent(key) + "/stats";
  var plot = null;

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "–" : String(text);
    row.appendChild(td);
  }

  function fill(id, rows, columns) {
    var body = document.querySelector("#" + id + " tbody");
    body.textContent = "";
    if (!rows.length) {
      var tr = document.createElement("tr");
      var td = document.createElement("td");
      td.colSpan = columns.length;
      td.textContent = "None in this period.";
      tr.appendChild(td);
      body.appendChild(tr);
    }
    rows.forEach(function (item) {
      var tr = document.createElement("tr");
      columns.forEach(function (name) { cell(tr, item[name]); });
      body.appendChild(tr);
    });
  }

  function day(t) { return new Date(t * 1000).toISOString().slice(0, 10); }

  function draw(data) {
    var chart = document.getElementById("chart");
    var total = data.series.reduce(function (sum, p) { return sum + p.calls; }, 0);
    document.getElementById("empty").hidden = total > 0;
    if (plot) { plot.destroy(); plot = null; }
    var xs = data.series.map(function (p) { return p.t; });
    var calls = data.series.map(function (p) { return p.calls; });
    var errors = data.series.map(function (p) { return p.errors; });
    var width = Math.max(320, Math.min(chart.clientWidth || 800, 1000));
    plot = new uPlot({
      width: width, height: 300,
      series: [{}, {label: "calls", stroke: "#1f5fa8", width: 2, fill: "rgba(31,95,168,0.08)"},
               {label: "errors", stroke: "#b3261e", width: 2}],
      axes: [{}, {label: "calls per " + data.step}],
      scales: {x: {time: true}, y: {range: function (u, min, max) { return [0, Math.max(1, max)]; }}}
    }, [xs, calls, errors], chart);
    fill("methods", data.methods, ["method", "calls", "errors", "p50_ms", "p95_ms", "p99_ms"]);
    fill("codes", data.codes, ["code", "calls"]);
    fill("users", data.users.map(function (u) { return {day: day(u.t), users: u.users}; }),
         ["day", "users"]);
  }

  function load() {
    var days = parseInt(document.getElementById("days").value, 10);
    var step = document.getElementById("step").value;
    var to = parseInt(form.getAttribute("data-now"), 10);  // the server's clock
    var query = "?from=" + (to - days * 86400) + "&to=" + to + "&step=" + step;
    document.getElementById("csv").href = base + ".csv" + query;
    var status = document.getElementById("status");
    status.textContent = "Loading…";
    fetch(base + ".json" + query, {credentials: "same-origin"})
      .then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) { throw new Error(body.error || ("HTTP " + r.status)); }
          return body;
        });
      })
      .then(function (data) { draw(data); status.textContent = ""; })
      .catch(function (e) { status.textContent = "Could not load the statistics: " + e.message; });
  }

  form.addEventListener("change", load);
  form.addEventListener("submit", function (e) { e.preventDefault(); load(); });
  load();
}());
