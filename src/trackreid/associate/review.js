// report.html's review mode (trackreid.associate.report): decisions kept in this browser (localStorage)
// and downloaded as corrections.json for `trackreid associate --corrections`. No network: one file.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("review-data").textContent);
  var key = "trackreid-review:" + data.key;
  var state = load();

  function empty() { return {must_link: [], cannot_link: [], confirmed: []}; }
  // a page of a corrected association starts from the corrections it was made with
  function initial() { return JSON.parse(JSON.stringify(data.initial || empty())); }
  function load() {
    try {
      var s = JSON.parse(localStorage.getItem(key) || "null");
      if (s && Array.isArray(s.must_link) && Array.isArray(s.cannot_link) && Array.isArray(s.confirmed)) return s;
    } catch (e) { /* unreadable: start again */ }
    return initial();
  }
  function save() {
    try { localStorage.setItem(key, JSON.stringify(state)); } catch (e) { /* private mode: kept until closed */ }
    render();
  }
  function same(p, a, b) { return (p[0] === a && p[1] === b) || (p[0] === b && p[1] === a); }
  function has(list, a, b) { return list.some(function (p) { return same(p, a, b); }); }
  function drop(list, a, b) { return list.filter(function (p) { return !same(p, a, b); }); }
  // one answer per pair: the latest
  function link(kind, a, b) {
    var other = kind === "must_link" ? "cannot_link" : "must_link";
    state[other] = drop(state[other], a, b);
    if (!has(state[kind], a, b)) state[kind].push([a, b]);
  }
  function split(track, gid) {
    (data.identities[gid] || []).forEach(function (t) { if (t !== track) link("cannot_link", track, t); });
  }
  function confirm(gid) {
    var m = data.identities[gid] || [];
    state.confirmed = state.confirmed.filter(function (g) { return g.join(" ") !== m.join(" "); });
    state.confirmed.push(m.slice());
  }
  function corrections() {
    return {must_link: state.must_link, cannot_link: state.cannot_link, confirmed: state.confirmed,
            model_sha256: data.model_sha256};
  }
  function download() {
    var blob = new Blob([JSON.stringify(corrections(), null, 1) + "\n"], {type: "application/json"});
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "corrections.json";
    document.body.appendChild(a);
    a.click();
    a.remove();
  }
  function render() {
    document.getElementById("review-count").textContent =
      String(state.must_link.length + state.cannot_link.length + state.confirmed.length);
    document.querySelectorAll(".question").forEach(function (q) {
      var a = q.dataset.a, b = q.dataset.b;
      var answer = has(state.must_link, a, b) ? "same person" : has(state.cannot_link, a, b) ? "not the same person" : "";
      q.classList.toggle("answered", answer !== "");
      q.querySelector(".answer").textContent = answer;
    });
    var list = document.getElementById("decisions");
    list.textContent = "";
    function add(text, undo) {
      var li = document.createElement("li");
      li.className = "decision";
      li.textContent = text + " ";
      var b = document.createElement("button");
      b.className = "undo";
      b.textContent = "undo";
      b.addEventListener("click", function () { undo(); save(); });
      li.appendChild(b);
      list.appendChild(li);
    }
    [["must_link", "same person"], ["cannot_link", "not the same person"]].forEach(function (kv) {
      state[kv[0]].slice().forEach(function (p) {
        add(kv[1] + ": " + p[0] + " - " + p[1], function () { state[kv[0]] = drop(state[kv[0]], p[0], p[1]); });
      });
    });
    state.confirmed.slice().forEach(function (g) {
      add("confirmed: " + g.join(" "), function () { state.confirmed = state.confirmed.filter(function (x) { return x !== g; }); });
    });
  }
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("button[data-act]") : null;
    if (!b) return;
    var act = b.dataset.act;
    if (act === "download") { download(); return; }
    if (act === "same" || act === "different") {
      var q = b.closest(".question");
      link(act === "same" ? "must_link" : "cannot_link", q.dataset.a, q.dataset.b);
    } else if (act === "split") {
      split(b.dataset.track, b.dataset.gid);
    } else if (act === "confirm") {
      confirm(b.dataset.gid);
    } else if (act === "clear") {
      state = initial();
    }
    save();
  });
  render();
})();
