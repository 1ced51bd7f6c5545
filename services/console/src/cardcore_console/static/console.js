// cardcore console: live refresh of the page's fragment and the bucket detail panel.
// No dependency, no network beyond this origin (the CSP allows nothing else).
(function () {
  "use strict";
  var live = document.getElementById("live");
  var stamp = document.getElementById("stamp");
  var detail = document.getElementById("detail");
  var picked = null;

  function facts() {
    var block = document.getElementById("bucket-data");
    return block ? JSON.parse(block.textContent) : null;
  }

  function text(value) { return value === null || value === undefined ? "\u2014" : String(value); }

  function show(cell) {
    var data = facts();
    if (!detail || !cell || !data) { return; }
    var b = parseInt(cell.dataset.b, 10);
    var rows = [
      ["bucket", b], ["shard", data.shard[b]], ["served by", data.state[b]],
      ["gateway pool", data.pool[b]], ["customers", data.customers[b]],
      ["from CCS", data.legacy[b]], ["last verify", data.verify[b]],
      ["last freeze", data.freeze[b]]
    ];
    var dl = document.createElement("dl");
    rows.forEach(function (r) {
      var dt = document.createElement("dt"); dt.textContent = r[0];
      var dd = document.createElement("dd"); dd.textContent = text(r[1]);
      dl.appendChild(dt); dl.appendChild(dd);
    });
    var h = document.createElement("h3"); h.textContent = "Bucket " + b;
    detail.replaceChildren(h, dl);
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
