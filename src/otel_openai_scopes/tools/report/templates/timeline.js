// A cursor over the timeline reading out the time under the mouse (UTC and relative to the first call).
(function () {
  var svg = document.getElementById("timeline");
  var t0 = Number(svg.dataset.start), t1 = Number(svg.dataset.end);
  var left = Number(svg.dataset.left), width = Number(svg.dataset.width);
  var cursor = document.getElementById("cursor"), readout = document.getElementById("readout");
  svg.addEventListener("mousemove", function (ev) {
    var box = svg.getBoundingClientRect(), x = ev.clientX - box.left;
    if (x < left || x > left + width) { return; }
    var t = t0 + (x - left) / width * (t1 - t0);
    cursor.setAttribute("x1", x); cursor.setAttribute("x2", x);
    readout.textContent = new Date(t / 1e6).toISOString() + "  +" + ((t - t0) / 1e9).toFixed(1) + "s";
  });
  document.body.dataset.timelineReady = String(svg.querySelectorAll("g.key-series").length);
})();
