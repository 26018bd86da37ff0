// The charts of one video's page, drawn with uPlot from the page's JSON data block
// (#chart-data): the retention curve (viewers and views per part of the video) and the
// coverage distribution (ten bars). Each chart's element gets data-points: how many points
// or bars it drew.
"use strict";

(function () {
  const ACCENT = "#2458d6";
  const VIEWS = "#e08a1e";
  const HEIGHT = 260;

  function clock(seconds) {
    const whole = Math.max(0, Math.round(seconds));
    const hours = Math.floor(whole / 3600);
    const minutes = Math.floor((whole % 3600) / 60);
    const rest = String(whole % 60).padStart(2, "0");
    if (hours > 0) return `${hours}:${String(minutes).padStart(2, "0")}:${rest}`;
    return `${minutes}:${rest}`;
  }

  function integerTicks(u, axisIndex, min, max) {
    const top = Math.max(1, Math.ceil(max));
    const step = Math.max(1, Math.ceil(top / 5));
    const ticks = [];
    for (let value = 0; value <= top; value += step) ticks.push(value);
    return ticks;
  }

  function width(element) {
    return Math.max(240, Math.floor(element.getBoundingClientRect().width));
  }

  function retention(element, data) {
    const label = element.dataset;
    const options = {
      width: width(element),
      height: HEIGHT,
      scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
      axes: [
        { values: (u, ticks) => ticks.map(clock), label: label.labelTime },
        { splits: integerTicks, values: (u, ticks) => ticks.map(String) },
      ],
      series: [
        { label: label.labelTime, value: (u, value) => (value == null ? "" : clock(value)) },
        { label: label.labelViewers, stroke: ACCENT, width: 2, fill: "rgba(36, 88, 214, 0.10)" },
        { label: label.labelViews, stroke: VIEWS, width: 2, dash: [6, 4] },
      ],
      legend: { live: true },
    };
    const chart = new uPlot(options, [data.x, data.viewers, data.views], element);
    element.dataset.points = String(data.x.length);
    return chart;
  }

  function distribution(element, data) {
    const label = element.dataset;
    const bins = data.bins;
    const x = bins.map((_, index) => index);
    const options = {
      width: width(element),
      height: HEIGHT,
      scales: {
        x: { time: false, range: [-0.6, bins.length - 0.4] },
        y: { range: (u, min, max) => [0, Math.max(1, max)] },
      },
      axes: [
        {
          splits: () => x,
          // Each bar is named by where its bin starts; the legend names the whole bin.
          values: (u, ticks) => ticks.map((tick) => (tick in bins ? `${tick * 10}%` : "")),
          label: label.labelShare,
          size: 40,
        },
        { splits: integerTicks, values: (u, ticks) => ticks.map(String) },
      ],
      series: [
        { label: label.labelShare, value: (u, value) => (value == null ? "" : bins[value]) },
        {
          label: label.labelViewers,
          stroke: ACCENT,
          fill: "rgba(36, 88, 214, 0.75)",
          paths: uPlot.paths.bars({ size: [0.7, 80] }),
          points: { show: false },
        },
      ],
      cursor: { points: { show: false } },
    };
    const chart = new uPlot(options, [x, data.distribution], element);
    element.dataset.points = String(data.distribution.length);
    return chart;
  }

  function draw() {
    const block = document.getElementById("chart-data");
    if (!block || typeof uPlot === "undefined") return;
    const data = JSON.parse(block.textContent);
    const charts = [];
    const curve = document.getElementById("retention-chart");
    if (curve && data.x.length) charts.push([curve, retention(curve, data)]);
    const bars = document.getElementById("distribution-chart");
    if (bars) charts.push([bars, distribution(bars, data)]);
    let pending = null;
    window.addEventListener("resize", () => {
      clearTimeout(pending);
      pending = setTimeout(() => {
        for (const [element, chart] of charts) chart.setSize({ width: width(element), height: HEIGHT });
      }, 100);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
