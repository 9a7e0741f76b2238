// Shared by every review page: the CSRF token of this session and a JSON fetch helper.
"use strict";
(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";

  async function api(method, url, body) {
    const opts = { method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
    if (method !== "GET") opts.headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch(url, opts);
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (resp.status === 401) { window.location = "/review/login"; throw new Error("signed out"); }
    if (!resp.ok) {
      const err = new Error((data && data.error) || ("HTTP " + resp.status));
      err.code = data && data.code;
      throw err;
    }
    return data;
  }

  window.nb = { csrf, api };
  const out = document.getElementById("logout");
  if (out) out.addEventListener("click", async () => {
    try { await api("POST", "/review/logout"); } finally { window.location = "/review/login"; }
  });
})();
