"use strict";
(function () {
  function wire(formId, outId, method, url, shape) {
    const form = document.getElementById(formId); if (!form) return;
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const out = document.getElementById(outId);
      try {
        const r = await nb.api(method, url, shape(new FormData(form)));
        out.textContent = JSON.stringify(r);
        setTimeout(() => window.location.reload(), 600);
      } catch (err) { out.textContent = err.message; }
    });
  }
  wire("rule-form", "rule-out", "POST", "/review/api/admin/rules", (f) => ({ row: f.get("row"), text: f.get("text") }));
  wire("spot-form", "spot-out", "POST", "/review/api/admin/spot-checks",
       (f) => ({ batch_id: f.get("batch_id") || null, percent: f.get("percent") || null }));
})();
