// The dashboard's Graph client: the token from the link, requests with it, $batch, paging.
// Every URL is relative to this origin (/v1.0/..., /beta/...), as the CSP's connect-src allows.
"use strict";

window.GraphsecClient = (() => {
  const STORAGE_KEY = "graphsec.token";
  const WRITE_PERMISSION = "SecurityEvents.ReadWrite.All";

  /** The token is not (or no longer) accepted: the server answered 401. */
  class Expired extends Error {}

  /** Any other answer outside 2xx: its status and Graph's error message. */
  class ApiError extends Error {
    constructor(status, body) {
      const detail = body && body.error ? `${body.error.code}: ${body.error.message}` : "";
      super(`HTTP ${status}${detail ? ` (${detail})` : ""}`);
      this.status = status;
    }
  }

  /** The token of the link (#token=…), kept in sessionStorage and removed from the address
   *  bar; else the one kept from an earlier load of this tab. */
  function takeToken() {
    const fragment = new URLSearchParams(location.hash.slice(1));
    const fromLink = fragment.get("token");
    if (fromLink) {
      sessionStorage.setItem(STORAGE_KEY, fromLink);
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(STORAGE_KEY);
  }

  /** The token's claims, read without verification (the server verifies): for display and
   *  to know whether writes are allowed. */
  function claimsOf(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const text = atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "="));
      return JSON.parse(new TextDecoder().decode(Uint8Array.from(text, (c) => c.charCodeAt(0))));
    } catch {
      return {};
    }
  }

  function canWrite(claims) {
    const roles = Array.isArray(claims.roles) ? claims.roles : [];
    const scopes = typeof claims.scp === "string" ? claims.scp.split(" ") : [];
    return roles.includes(WRITE_PERMISSION) || scopes.includes(WRITE_PERMISSION);
  }

  /** A query string of OData options: query({select: "a,b", top: 1}) → "?$select=a,b&$top=1". */
  function query(options) {
    const parts = Object.entries(options)
      .filter(([, value]) => value !== undefined && value !== null)
      .map(([name, value]) => `$${name}=${encodeURIComponent(String(value))}`);
    return parts.length ? `?${parts.join("&")}` : "";
  }

  /** The path and query of a nextLink, so that paging stays on this page's origin. */
  function relative(link) {
    const url = new URL(link, location.href);
    return url.pathname + url.search;
  }

  class Client {
    constructor(token) {
      this.token = token;
    }

    async request(method, url, body, extraHeaders) {
      const headers = { Authorization: `Bearer ${this.token}`, Accept: "application/json",
                        ...(extraHeaders || {}) };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      const response = await fetch(url, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store", credentials: "omit",
      });
      const text = await response.text();
      const doc = text ? JSON.parse(text) : null;
      if (response.status === 401) throw new Expired();
      if (!response.ok) throw new ApiError(response.status, doc);
      return doc;
    }

    get(url) {
      return this.request("GET", url);
    }

    /** Several GETs in one POST /{version}/$batch: { id: body } for [id, url] pairs (urls
     *  relative to the version root). A 401 inside means the token expired; any other
     *  failure is an ApiError. */
    async batch(version, pairs) {
      const requests = pairs.map(([id, url]) => ({ id, method: "GET", url }));
      const doc = await this.request("POST", `/${version}/$batch`, { requests });
      const out = {};
      for (const answer of doc.responses) {
        if (answer.status === 401) throw new Expired();
        if (answer.status < 200 || answer.status > 299) throw new ApiError(answer.status, answer.body);
        out[answer.id] = answer.body;
      }
      return out;
    }

    /** Every item of a collection whose first page is `page`, following @odata.nextLink. */
    async all(page) {
      const items = [...(page.value || [])];
      let next = page["@odata.nextLink"];
      while (next) {
        const more = await this.get(relative(next));
        items.push(...(more.value || []));
        next = more["@odata.nextLink"];
      }
      return items;
    }
  }

  return { Client, Expired, ApiError, takeToken, claimsOf, canWrite, query };
})();
