// The score-over-time chart (uPlot): the tenant's score per day and the comparative averages.
// After each draw the chart element carries data-points (the days drawn) and data-state="drawn";
// the first draw sets the performance mark "graphsec:chart-drawn" (bench/ui.py reads it).
"use strict";

window.GraphsecChart = (() => {
  const BASES = [
    ["AllTenants", "All tenants", "--s-all"],
    ["TotalSeats", "Similar size", "--s-seats"],
    ["IndustryTypes", "Same industry", "--s-industry"],
  ];
  let marked = false;

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function average(score, basis) {
    const found = (score.averageComparativeScores || []).find((a) => a && a.basis === basis);
    return found && typeof found.averageScore === "number" ? found.averageScore : null;
  }

  /** uPlot's columns: seconds since the epoch, then the score and each basis, in points or as
   *  a percentage of each day's maxScore. */
  function columns(scores, percent) {
    const scale = (value, max) => {
      if (value === null || value === undefined) return null;
      if (!percent) return value;
      return max > 0 ? (100 * value) / max : null;
    };
    const xs = [];
    const ys = [[], [], [], []];
    for (const s of scores) {
      xs.push(Date.parse(s.createdDateTime) / 1000);
      const max = typeof s.maxScore === "number" ? s.maxScore : 0;
      ys[0].push(scale(typeof s.currentScore === "number" ? s.currentScore : null, max));
      BASES.forEach(([basis], i) => ys[i + 1].push(scale(average(s, basis), max)));
    }
    return [xs, ...ys];
  }

  function format(value, percent) {
    if (value === null || value === undefined) return "–";
    return percent ? `${value.toFixed(1)} %` : value.toFixed(2);
  }

  /** Draw `scores` (oldest first) in `element`, replacing the chart `previous`; returns the
   *  new uPlot instance. */
  function draw(element, scores, percent, previous) {
    if (previous) previous.destroy();
    const data = columns(scores, percent);
    const shareOf = (i) => {
      const s = scores[i];
      const ok = s && typeof s.currentScore === "number" && s.maxScore > 0;
      return ok ? ` (${((100 * s.currentScore) / s.maxScore).toFixed(1)} %)` : "";
    };
    const series = [
      { label: "Day", value: (u, v) => (v === null ? "–" : new Date(v * 1000).toISOString().slice(0, 10)) },
      { label: "Score", stroke: css("--s-score"), width: 2, fill: `${css("--s-score")}22`,
        value: (u, v, si, i) => format(v, percent) + (percent || i === null ? "" : shareOf(i)) },
      ...BASES.map(([, label, colour]) => ({
        label, stroke: css(colour), width: 1.5, dash: [6, 4], spanGaps: true,
        value: (u, v) => format(v, percent),
      })),
    ];
    const axis = { stroke: css("--muted"), grid: { stroke: css("--grid") }, ticks: { stroke: css("--grid") } };
    const narrow = element.clientWidth < 600;
    const options = {
      width: Math.max(element.clientWidth, 280),
      height: narrow ? 300 : 360,
      series,
      scales: { x: { time: true }, y: percent ? { range: [0, 100] } : {} },
      axes: [axis, { ...axis, size: 56, values: (u, ticks) => ticks.map((t) => (percent ? `${t}%` : t)) }],
      cursor: { focus: { prox: 24 } },
      legend: { live: true },
      hooks: {
        draw: [(u) => {
          element.dataset.points = String(u.data[1].filter((v) => v !== null).length);
          element.dataset.state = "drawn";
          if (!marked) {
            marked = true;
            performance.mark("graphsec:chart-drawn");
          }
        }],
      },
    };
    element.replaceChildren();
    return new uPlot(options, data, element);
  }

  return { draw, average };
})();
