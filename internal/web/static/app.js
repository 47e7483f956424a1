// fleetward dashboard: draws the charts whose data the page carries in
// <script type="application/json" id="chart-data">. No inline scripts, so
// the Content-Security-Policy can forbid them.
(function () {
  "use strict";
  function drawRisk(el, d) {
    var width = Math.max(320, el.clientWidth || 600);
    var bars = uPlot.paths.bars({ size: [0.9, 60] });
    new uPlot({
      width: width, height: 240,
      scales: { x: { time: false, range: [0, 100] }, y: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } } },
      axes: [{ label: "risk score", values: function (u, vals) { return vals.map(function (v) { return v; }); } }, { label: "devices" }],
      series: [{}, { label: "devices", fill: "rgba(31,111,235,0.55)", stroke: "#1f6feb", paths: bars, points: { show: false } }],
      legend: { show: false }
    }, [d.x, d.y], el);
  }
  function drawTraffic(el, d) {
    var width = Math.max(320, el.clientWidth || 600);
    new uPlot({
      width: width, height: 220,
      scales: { y: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } } },
      axes: [{}, { label: "per interval" }],
      series: [{},
        { label: "messages in", stroke: "#1f6feb", width: 2 },
        { label: "messages out", stroke: "#2da44e", width: 2 },
        { label: "authorization failures", stroke: "#cf222e", width: 2 }]
    }, [d.x, d.messages_in, d.messages_out, d.authorization_failures], el);
  }
  function init() {
    var node = document.getElementById("chart-data");
    if (!node || typeof uPlot === "undefined") return;
    var data = JSON.parse(node.textContent);
    var risk = document.getElementById("risk-chart");
    if (risk && data.risk) drawRisk(risk, data.risk);
    var traffic = document.getElementById("traffic-chart");
    if (traffic && data.traffic) drawTraffic(traffic, data.traffic);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
