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
  function drawScores(el, d) {
    var width = Math.max(320, el.clientWidth || 600);
    // An attack's scores are orders of magnitude above benign ones: an
    // asinh scale, linear below a quarter of the threshold and logarithmic
    // above, keeps both the threshold and the peak readable.
    var th = Math.max.apply(null, d.anomaly_threshold.concat([1e-6]));
    new uPlot({
      width: width, height: 240,
      scales: { y: { distr: 4, asinh: th / 4, range: function (u, min, max) { return [0, Math.max(max, th) * 1.5]; } } },
      axes: [{}, { label: "smoothed score", size: 60 }],
      series: [{},
        { label: "highest score", stroke: "#8250df", width: 2, fill: "rgba(130,80,223,0.12)" },
        { label: "threshold", stroke: "#cf222e", width: 1.5, dash: [6, 4], points: { show: false } }]
    }, [d.x, d.anomaly_score_max, d.anomaly_threshold], el);
  }
  function drawSensor(el, d) {
    var width = Math.max(320, el.clientWidth || 600);
    new uPlot({
      width: width, height: 220,
      scales: { pps: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } },
        n: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } } },
      axes: [{}, { scale: "pps", label: "packets/s", size: 60 }, { scale: "n", side: 1, label: "count", grid: { show: false } }],
      series: [{},
        { label: "packets/s", scale: "pps", stroke: "#1f6feb", width: 2 },
        { label: "signals", scale: "n", stroke: "#8250df", width: 2 },
        { label: "capture failures", scale: "n", stroke: "#cf222e", width: 2 }]
    }, [d.x, d.sensor_pps, d.sensor_signals, d.sensor_capture_errors], el);
  }
  function init() {
    var node = document.getElementById("chart-data");
    if (!node || typeof uPlot === "undefined") return;
    var data = JSON.parse(node.textContent);
    var risk = document.getElementById("risk-chart");
    if (risk && data.risk) drawRisk(risk, data.risk);
    var traffic = document.getElementById("traffic-chart");
    if (traffic && data.traffic) drawTraffic(traffic, data.traffic);
    var scores = document.getElementById("score-chart");
    if (scores && data.scores) drawScores(scores, data.scores);
    var sensor = document.getElementById("sensor-chart");
    if (sensor && data.sensor) drawSensor(sensor, data.sensor);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
