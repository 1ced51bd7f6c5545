// cardcore console: live refresh of the page's fragment and the bucket detail panel.
// No dependency, no network beyond this origin (the CSP allows nothing else).
(function () {
  "use strict";
  var live = document.getElementById("live");
  var stamp = document.getElementById("stamp");
  var detail = document.getElementById("detail");
  var picked = null;

  function show(cell) {
    if (!detail || !cell) { return; }
    var d = cell.dataset;
    var rows = [
      ["bucket", d.b], ["shard", d.shard], ["served by", d.state], ["gateway pool", d.pool],
      ["customers", d.customers], ["from CCS", d.legacy],
      ["last verify", d.verify], ["last freeze", d.freeze]
    ];
    var dl = document.createElement("dl");
    rows.forEach(function (r) {
      var dt = document.createElement("dt"); dt.textContent = r[0];
      var dd = document.createElement("dd"); dd.textContent = r[1];
      dl.appendChild(dt); dl.appendChild(dd);
    });
    var h = document.createElement("h3"); h.textContent = "Bucket " + d.b;
    detail.replaceChildren(h, dl);
    detail.dataset.bucket = d.b;
  }

  function cellOf(target) {
    return target && target.classList && target.classList.contains("cell") ? target : null;
  }

  if (live) {
    live.addEventListener("mouseover", function (e) { var c = cellOf(e.target); if (c && picked === null) { show(c); } });
    live.addEventListener("click", function (e) {
      var c = cellOf(e.target);
      if (!c) { return; }
      picked = c.dataset.b;
      live.querySelectorAll(".cell.picked").forEach(function (x) { x.classList.remove("picked"); });
      c.classList.add("picked");
      show(c);
    });
  }

  function refresh() {
    var src = live && live.dataset.src;
    if (!src) { return; }
    fetch(src, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.status === 401) { window.location.assign("/login"); return null; }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        live.innerHTML = html;
        if (picked !== null) {
          var c = live.querySelector('.cell[data-b="' + picked + '"]');
          if (c) { c.classList.add("picked"); show(c); }
        }
        if (stamp) { stamp.textContent = "live " + new Date().toLocaleTimeString(); stamp.classList.remove("stale"); }
      })
      .catch(function () { if (stamp) { stamp.textContent = "stale"; stamp.classList.add("stale"); } });
  }

  var seconds = live ? parseFloat(live.dataset.refresh || "0") : 0;
  if (seconds > 0) { window.setInterval(refresh, seconds * 1000); }
})();
