// The dashboard: loads what the views draw through graphsec's Graph API (client.js) and renders
// the four views. The controls table and the users view are in tables.js.
"use strict";

(() => {
  const { Client, Expired, takeToken, claimsOf, canWrite, query } = window.GraphsecClient;
  const Chart = window.GraphsecChart;
  const Tables = window.GraphsecTables;
  const DAY_MS = 86400000;
  const SCORES = "/security/secureScores";
  const SERIES_SELECT = "createdDateTime,currentScore,maxScore,averageComparativeScores";
  const PROFILE_SELECT = "id,title,controlCategory,maxScore,tier,userImpact,implementationCost," +
    "rank,deprecated,controlStateUpdates,vendorInformation";
  const $ = (id) => document.getElementById(id);

  // the link may choose the first range too (#token=…&range=all), read before the fragment goes
  const linked = new URLSearchParams(location.hash.slice(1)).get("range");
  if (linked && [...$("range").options].some((o) => o.value === linked)) $("range").value = linked;
  const token = takeToken();
  const claims = token ? claimsOf(token) : {};
  const state = {
    client: token ? new Client(token) : null, claims, write: canWrite(claims),
    latest: null, start: null, scores: [], profiles: [], chart: null, view: "score", loads: 0,
  };

  function status(text) {
    $("status").textContent = text;
  }

  /** The message for a link whose token the server refuses, with the command that makes a new
   *  one (for the same tenant, and with --write when the link could write). */
  function expired() {
    const tenant = state.claims.tid || "TENANT_ID";
    const command = `graphsec ui --tenant ${tenant}${state.write ? " --write" : ""}`;
    const box = $("message");
    box.replaceChildren(
      document.createTextNode(token ? "This link's token has expired or is no longer accepted. "
        : "This page needs the link that graphsec prints, with its token. "),
      document.createTextNode("Make a new link with: "),
      Object.assign(document.createElement("code"), { textContent: command }));
    box.hidden = false;
    box.dataset.kind = "expired";
    status("");
  }

  function failed(error) {
    if (error instanceof Expired) {
      expired();
      return;
    }
    const box = $("message");
    box.textContent = `Could not load the data: ${error.message}`;
    box.hidden = false;
    box.dataset.kind = "error";
    status("");
  }

  function rangeStart() {
    const value = $("range").value;
    if (value === "all" || !state.latest) return null;
    const newest = new Date(state.latest.createdDateTime);
    const day = Date.UTC(newest.getUTCFullYear(), newest.getUTCMonth(), newest.getUTCDate());
    return new Date(day - (Number(value) - 1) * DAY_MS).toISOString().replace(".000Z", "Z");
  }

  /** First load: the newest score (with its controlScores) and the control profiles, in one
   *  $batch; then the range. */
  async function load() {
    status("Loading…");
    const got = await state.client.batch("v1.0", [
      ["latest", SCORES + query({ select: "createdDateTime,currentScore,maxScore,controlScores",
                                  orderby: "createdDateTime desc", top: 1 })],
      ["profiles", "/security/secureScoreControlProfiles" + query({ select: PROFILE_SELECT, top: 500 })],
    ]);
    state.latest = (got.latest.value || [])[0] || null;
    state.profiles = await state.client.all(got.profiles);
    Tables.setProfiles(state.profiles, state.latest);
    if (!state.latest) {
      status("This tenant has no secure scores yet.");
      $("chart").dataset.state = "empty";
      renderCategories();
      return;
    }
    await loadRange();
  }

  /** The days of the chosen range (only the fields the chart draws, every page), and the
   *  range's first day with its controlScores, in one $batch. */
  async function loadRange() {
    const load = ++state.loads;
    const start = rangeStart();
    const filter = start ? `createdDateTime ge ${start}` : undefined;
    status("Loading…");
    $("chart").dataset.state = "loading";
    const got = await state.client.batch("v1.0", [
      ["series", SCORES + query({ select: SERIES_SELECT, filter, orderby: "createdDateTime asc", top: 999 })],
      ["start", SCORES + query({ select: "createdDateTime,controlScores", filter,
                                 orderby: "createdDateTime asc", top: 1 })],
    ]);
    const scores = await state.client.all(got.series);
    if (load !== state.loads) return;  // a later choice of range superseded this one
    state.scores = scores;
    state.start = (got.start.value || [])[0] || null;
    status(`${scores.length} days`);
    drawChart();
    renderSummary();
    renderCategories();
  }

  function drawChart() {
    if (!state.scores.length) return;
    state.chart = Chart.draw($("chart"), state.scores, $("scale").value === "percent", state.chart);
  }

  function renderSummary() {
    const newest = state.scores[state.scores.length - 1];
    const oldest = state.scores[0];
    const num = (v) => (typeof v === "number" ? v : null);
    const [now, then, max] = [num(newest.currentScore), num(oldest.currentScore), num(newest.maxScore)];
    const items = [
      ["Newest score", `${fixed(now)}${max === null ? "" : ` of ${max.toFixed(0)}`}`],
      ["Share of max", now !== null && max > 0 ? `${((100 * now) / max).toFixed(1)} %` : "–"],
      ["Change in range", now !== null && then !== null ? signed(now - then) : "–"],
      ["All tenants average", fixed(Chart.average(newest, "AllTenants"))],
    ];
    $("score-summary").replaceChildren(...items.map(([term, value]) => {
      const div = document.createElement("div");
      div.append(Object.assign(document.createElement("dt"), { textContent: term }),
                 Object.assign(document.createElement("dd"), { textContent: value }));
      return div;
    }));
  }

  function fixed(value) {
    return value === null || value === undefined ? "–" : value.toFixed(2);
  }

  function signed(value) {
    return `${value > 0 ? "+" : value < 0 ? "−" : "±"}${Math.abs(value).toFixed(2)}`;
  }

  function byCategory(score) {
    const sums = new Map();
    for (const c of (score && score.controlScores) || []) {
      const category = c.controlCategory || "Uncategorised";
      sums.set(category, (sums.get(category) || 0) + (typeof c.score === "number" ? c.score : 0));
    }
    return sums;
  }

  /** Points per controlCategory on the newest day, the category's max points (from the
   *  profiles) and the change since the first day of the range. */
  function renderCategories() {
    const now = byCategory(state.latest);
    const then = byCategory(state.start);
    const max = new Map();
    for (const p of state.profiles) {
      if (p.deprecated) continue;
      const category = p.controlCategory || "Uncategorised";
      max.set(category, (max.get(category) || 0) + (typeof p.maxScore === "number" ? p.maxScore : 0));
    }
    const names = [...new Set([...now.keys(), ...max.keys()])].sort();
    const rows = names.map((name) => {
      const points = now.get(name) || 0;
      const change = points - (then.get(name) || 0);
      const top = max.get(name) || 0;
      const tr = document.createElement("tr");
      tr.dataset.category = name;
      tr.dataset.points = String(points);
      tr.dataset.change = String(change);
      const bar = document.createElement("div");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.width = `${top > 0 ? Math.min(100, (100 * points) / top) : 0}%`;
      bar.append(fill);
      tr.append(Tables.cell(name, "th"), Tables.cell(points.toFixed(2), "td", "num"),
                Tables.cell(top ? top.toFixed(0) : "–", "td", "num"),
                Tables.cell(state.start ? signed(change) : "–", "td",
                            `num ${change > 0 ? "up" : change < 0 ? "down" : ""}`),
                Tables.wrap(bar, "bar-col"));
      tr.firstChild.scope = "row";
      return tr;
    });
    $("categories").tBodies[0].replaceChildren(...rows);
    const day = (s) => (s ? s.createdDateTime.slice(0, 10) : "–");
    $("categories-caption").textContent = state.latest
      ? `Points on ${day(state.latest)}; change since ${day(state.start)}, the first day of the range.`
      : "No secure scores yet.";
  }

  function show(view) {
    state.view = view;
    for (const tab of document.querySelectorAll("[role=tab]")) {
      const on = tab.id === `tab-${view}`;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
      $(tab.getAttribute("aria-controls")).hidden = !on;
    }
    $("range-bar").hidden = view === "controls" || view === "users";
    if (view === "score") drawChart();
    if (view === "users") Tables.loadUsers(state.client).catch(failed);
  }

  function wire() {
    const tabs = [...document.querySelectorAll("[role=tab]")];
    tabs.forEach((tab, i) => {
      tab.addEventListener("click", () => show(tab.id.slice(4)));
      tab.addEventListener("keydown", (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!step) return;
        const next = tabs[(i + step + tabs.length) % tabs.length];
        next.focus();
        show(next.id.slice(4));
      });
    });
    // a new link opened in this tab changes only the fragment: take its token and start over
    addEventListener("hashchange", () => {
      if (new URLSearchParams(location.hash.slice(1)).has("token")) {
        takeToken();
        location.reload();
      }
    });
    $("range").addEventListener("change", () => loadRange().catch(failed));
    $("scale").addEventListener("change", drawChart);
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", drawChart);
    let width = $("chart").clientWidth;
    new ResizeObserver(() => {
      const now = $("chart").clientWidth;
      if (now && Math.abs(now - width) > 8 && state.view === "score") {
        width = now;
        drawChart();
      }
    }).observe($("chart"));
  }

  wire();
  Tables.wire(state);
  if (!state.client) {
    expired();
  } else {
    $("who").textContent = `Tenant ${claims.tid || "?"} · ${state.write ? "read and write" : "read only"}` +
      (claims.exp ? ` · link valid until ${new Date(claims.exp * 1000).toLocaleString()}` : "");
    load().catch(failed);
  }
  window.GraphsecApp = { failed };
})();
