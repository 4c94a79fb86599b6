// The controls table (sortable, filterable, editable with a ReadWrite link) and the users view.
"use strict";

window.GraphsecTables = (() => {
  const STATES = ["Default", "Ignored", "ThirdParty", "Reviewed"];
  const VENDOR = { provider: "SecureScore", vendor: "Microsoft" };
  const USER_SELECT = "id,displayName,userPrincipalName,riskScore,accounts,tags,lastModifiedDateTime";
  const COLUMNS = [
    ["title", "Control", "text"], ["category", "Category", "text"], ["maxScore", "Max", "num"],
    ["points", "Points", "num"], ["tier", "Tier", "text"], ["userImpact", "User impact", "text"],
    ["cost", "Cost", "text"], ["rank", "Rank", "num"], ["state", "State", "text"],
  ];
  const $ = (id) => document.getElementById(id);
  const model = { rows: [], sort: { key: "rank", dir: 1 }, app: null, editing: null, users: null };

  function cell(text, tag = "td", className = "") {
    const el = document.createElement(tag);
    el.textContent = text === null || text === undefined || text === "" ? "–" : String(text);
    if (className) el.className = className;
    return el;
  }

  function wrap(node, className = "") {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.append(node);
    return td;
  }

  function latestUpdate(profile) {
    const updates = profile.controlStateUpdates || [];
    return updates.length ? updates[updates.length - 1] : {};
  }

  /** One row per control profile, joined with the newest score's controlScores by name. */
  function setProfiles(profiles, latest) {
    const points = new Map(((latest && latest.controlScores) || [])
      .map((c) => [c.controlName, typeof c.score === "number" ? c.score : null]));
    model.rows = profiles.map((p) => {
      const update = latestUpdate(p);
      return {
        id: p.id, title: p.title || p.id, category: p.controlCategory || "", profile: p,
        maxScore: typeof p.maxScore === "number" ? p.maxScore : null,
        points: points.has(p.id) ? points.get(p.id) : null, tier: p.tier || "",
        userImpact: p.userImpact || "", cost: p.implementationCost || "",
        rank: typeof p.rank === "number" ? p.rank : null, state: update.state || "Default", update,
      };
    });
    const categories = [...new Set(model.rows.map((r) => r.category).filter(Boolean))].sort();
    fillSelect($("control-category"), ["", ...categories], "All");
    fillSelect($("control-state"), ["", ...STATES], "All");
    renderControls();
  }

  function fillSelect(select, values, emptyLabel) {
    const chosen = select.value;
    select.replaceChildren(...values.map((v) =>
      Object.assign(document.createElement("option"), { value: v, textContent: v || emptyLabel })));
    select.value = values.includes(chosen) ? chosen : "";
  }

  function header() {
    const row = $("controls").tHead.rows[0];
    const cells = COLUMNS.map(([key, label, kind]) => {
      const th = document.createElement("th");
      th.scope = "col";
      if (kind === "num") th.className = "num";
      if (model.sort.key === key) th.setAttribute("aria-sort", model.sort.dir > 0 ? "ascending" : "descending");
      const button = Object.assign(document.createElement("button"), { type: "button", textContent: label });
      button.dataset.sort = key;
      button.addEventListener("click", () => {
        model.sort = { key, dir: model.sort.key === key ? -model.sort.dir : 1 };
        renderControls();
        $("controls").querySelector(`button[data-sort="${key}"]`).focus();
      });
      th.append(button);
      return th;
    });
    if (model.app && model.app.write) {
      const th = document.createElement("th");
      th.append(Object.assign(document.createElement("span"), { className: "sr-only", textContent: "Actions" }));
      cells.push(th);
    }
    row.replaceChildren(...cells);
  }

  function compare(a, b) {
    const { key, dir } = model.sort;
    const x = a[key];
    const y = b[key];
    if (x === y) return 0;
    if (x === null || x === "") return 1;
    if (y === null || y === "") return -1;
    return (typeof x === "number" ? x - y : String(x).localeCompare(String(y))) * dir;
  }

  function visible() {
    const text = $("control-search").value.trim().toLowerCase();
    const category = $("control-category").value;
    const wanted = $("control-state").value;
    return model.rows.filter((r) => (!text || `${r.title} ${r.id}`.toLowerCase().includes(text))
      && (!category || r.category === category) && (!wanted || r.state === wanted));
  }

  function stateCell(row) {
    const td = document.createElement("td");
    td.append(Object.assign(document.createElement("span"), { className: "state", textContent: row.state }));
    const u = row.update;
    const parts = [];
    if (u.assignedTo) parts.push(`assigned to ${u.assignedTo}`);
    if (u.updatedBy) parts.push(`by ${u.updatedBy}`);
    if (u.updatedDateTime) parts.push(u.updatedDateTime.slice(0, 10));
    if (parts.length) td.append(Object.assign(document.createElement("div"), { className: "by", textContent: parts.join(" · ") }));
    if (u.comment) td.append(Object.assign(document.createElement("div"), { className: "by", textContent: `“${u.comment}”` }));
    return td;
  }

  function renderControls() {
    header();
    const rows = visible().sort(compare);
    const fmt = (v) => (v === null ? "–" : v.toFixed(v % 1 ? 2 : 0));
    $("controls").tBodies[0].replaceChildren(...rows.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.id = r.id;
      tr.dataset.state = r.state;
      const title = cell(r.title, "th");
      title.scope = "row";
      tr.append(title, cell(r.category), cell(fmt(r.maxScore), "td", "num"), cell(fmt(r.points), "td", "num"),
                cell(r.tier), cell(r.userImpact), cell(r.cost), cell(r.rank, "td", "num"), stateCell(r));
      if (model.app && model.app.write) {
        const edit = Object.assign(document.createElement("button"),
          { type: "button", className: "edit", textContent: "Update" });
        edit.setAttribute("aria-label", `Update ${r.title}`);
        edit.addEventListener("click", () => openEditor(r));
        tr.append(wrap(edit));
      }
      return tr;
    }));
    $("control-count").textContent = `${rows.length} of ${model.rows.length} controls`;
  }

  function openEditor(row) {
    model.editing = row;
    fillSelect($("edit-state"), STATES, "");
    $("edit-state").value = row.state;
    $("edit-assigned").value = row.update.assignedTo || "";
    $("edit-comment").value = row.update.comment || "";
    $("edit-control").textContent = row.title;
    $("edit-error").hidden = true;
    $("edit").showModal();
  }

  /** PATCH the profile with the new state, assignee and comment; the answer (Prefer:
   *  return=representation) replaces the row, so the table shows the new controlStateUpdate. */
  async function save(event) {
    event.preventDefault();
    const row = model.editing;
    const body = {
      state: $("edit-state").value, assignedTo: $("edit-assigned").value, comment: $("edit-comment").value,
      vendorInformation: row.profile.vendorInformation || VENDOR,
    };
    $("edit-save").disabled = true;
    try {
      const url = `/v1.0/security/secureScoreControlProfiles/${encodeURIComponent(row.id)}`;
      const updated = await model.app.client.request("PATCH", url, body, { Prefer: "return=representation" });
      const profiles = model.rows.map((r) => (r.id === row.id ? { ...r.profile, ...updated } : r.profile));
      setProfiles(profiles, model.app.latest);
      $("edit").close();
    } catch (error) {
      if (error instanceof window.GraphsecClient.Expired) {
        $("edit").close();
        window.GraphsecApp.failed(error);
      } else {
        $("edit-error").textContent = error.message;
        $("edit-error").hidden = false;
      }
    } finally {
      $("edit-save").disabled = false;
    }
  }

  /** The beta userSecurityProfiles, every page, riskiest first; loaded when first shown. */
  async function loadUsers(client) {
    if (model.users || !client) return;
    model.users = [];
    $("users-caption").textContent = "Loading…";
    const first = await client.get("/beta/security/userSecurityProfiles" +
      window.GraphsecClient.query({ select: USER_SELECT, top: 500 }));
    model.users = await client.all(first);
    const risk = (u) => Number(u.riskScore) || 0;
    const rows = [...model.users].sort((a, b) => risk(b) - risk(a)).map((u) => {
      const tr = document.createElement("tr");
      tr.dataset.id = u.id;
      const who = cell(u.displayName || u.userPrincipalName, "th");
      who.scope = "row";
      who.append(Object.assign(document.createElement("div"), { className: "by", textContent: u.userPrincipalName || "" }));
      const accounts = document.createElement("ul");
      accounts.append(...(u.accounts || []).map((a) => Object.assign(document.createElement("li"), {
        textContent: `${a.signinName || a.displayName || "?"} (${[a.service, a.status].filter(Boolean).join(", ")})`,
      })));
      tr.append(who, cell(u.riskScore, "td", "num"), wrap(accounts), cell((u.tags || []).join(", ")),
                cell((u.lastModifiedDateTime || "").slice(0, 10)));
      return tr;
    });
    $("users").tBodies[0].replaceChildren(...rows);
    $("users-caption").textContent = `${rows.length} user security profiles (beta), riskiest first.`;
  }

  function wire(app) {
    model.app = app;
    for (const id of ["control-search", "control-category", "control-state"]) {
      $(id).addEventListener(id === "control-search" ? "input" : "change", renderControls);
    }
    $("edit-form").addEventListener("submit", save);
    $("edit-cancel").addEventListener("click", () => $("edit").close());
  }

  return { cell, wrap, setProfiles, loadUsers, wire };
})();
