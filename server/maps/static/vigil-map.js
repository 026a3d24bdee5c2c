/* Vigil's threat map, in the browser: draws the layers the server sends as compact rows.
 *
 * Cells arrive as H3 ids and are turned into hexagons here with h3-js, so a page with 50,000
 * cells stays a few hundred kilobytes. Every text shown comes from the server's rows and is
 * escaped before it enters a popup. Nothing here fetches anything.
 */
(function () {
  "use strict";

  function esc(value) {
    if (value === null || value === undefined) return "";
    return String(value)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  function table(rows) {
    var html = "<table class='vigil-popup'>";
    rows.forEach(function (row) {
      if (row[1] === null || row[1] === undefined || row[1] === "") return;
      html += "<tr><th>" + esc(row[0]) + "</th><td>" + esc(row[1]) + "</td></tr>";
    });
    return html + "</table>";
  }

  var HOT = { "3": "#b2182b", "2": "#ef8a62", "1": "#fddbc7",
              "-1": "#d1e5f0", "-2": "#67a9cf", "-3": "#2166ac" };
  var CONFIDENCE = { "3": "hot, 99 %", "2": "hot, 95 %", "1": "hot, 90 %",
                     "-1": "cold, 90 %", "-2": "cold, 95 %", "-3": "cold, 99 %", "0": "not significant" };
  var EMERGING = {
    new_hot: "#ff00ff", consecutive_hot: "#e7298a", intensifying_hot: "#d7301f",
    persistent_hot: "#fc8d59", diminishing_hot: "#fdcc8a", sporadic_hot: "#fee391",
    oscillating_hot: "#c994c7", historical_hot: "#bdbdbd"
  };

  function polygon(cell, style) {
    var ring = h3.cellToBoundary(cell);  // [[lat, lng], ...]
    return L.polygon(ring, style);
  }

  function bindLazyPopup(layer, make) {
    layer.on("click", function (event) {
      L.popup().setLatLng(event.latlng).setContent(make()).openOn(layer._map);
    });
  }

  // One click listener per batch of cells, not one per cell: each shape keeps the function
  // that makes its popup, and the feature group (an event parent of its shapes) opens it.
  function addCells(group, shapes) {
    var batch = L.featureGroup(shapes);
    batch.on("click", function (event) {
      var make = event.layer && event.layer._vigilPopup;
      if (make) L.popup().setLatLng(event.latlng).setContent(make()).openOn(batch._map);
    });
    group.addLayer(batch);
    drawn += shapes.length;
  }

  var drawn = 0;

  var VigilMap = {
    esc: esc,

    hotspots: function (group, rows) {
      var shapes = [];
      rows.forEach(function (r) {
        if (r[1] === 0) return;
        var layer = polygon(r[0], { color: HOT[String(r[1])], weight: 0.5, fillOpacity: 0.55 });
        layer._vigilPopup = function () {
          return "<b>Hotspot cell</b>" + table([
            ["Confidence", CONFIDENCE[String(r[1])]], ["Incidents", r[3]], ["Gi* z", r[4]],
            ["Pattern", r[2].replace(/_/g, " ")], ["Surge", r[5] ? "yes" : ""],
            ["Precursors", r[6] ? "rising" : ""], ["Cell", r[0]]]);
        };
        shapes.push(layer);
      });
      addCells(group, shapes);
    },

    emerging: function (group, rows) {
      var shapes = [];
      rows.forEach(function (r) {
        // r = [cell, emerging category]
        var colour = EMERGING[r[1]];
        if (!colour) return;
        var layer = polygon(r[0], { color: colour, weight: 2, fill: false, dashArray: "4 3" });
        layer._vigilPopup = function () {
          return "<b>" + esc(r[1].replace(/_/g, " ")) + "</b>" + table([["Cell", r[0]]]);
        };
        shapes.push(layer);
      });
      addCells(group, shapes);
    },

    sensitive: function (group, rows) {
      var shapes = [];
      rows.forEach(function (r) {
        var layer = polygon(r[0], { color: "#6a3d9a", weight: 1, fillOpacity: 0.35 });
        layer._vigilPopup = function () {
          return "<b>Sensitive cases (coarse cell)</b>" + table([
            ["Incidents", r[1]], ["Note", "counts under the threshold are withheld"]]);
        };
        shapes.push(layer);
      });
      addCells(group, shapes);
    },

    gaps: function (group, rows) {
      rows.forEach(function (r) {
        var layer = polygon(r[0], { color: "#000000", weight: 2, fillColor: "#ffd92f",
                                    fillOpacity: 0.6 });
        var hours = r[3] === null ? "never patrolled" : r[3] + " h";
        // A fine cell is a speck at mission zoom: a pin at its centre keeps each gap visible.
        var pin = L.circleMarker(h3.cellToLatLng(r[0]), { radius: 6, color: "#000000",
                                                          weight: 2, fillColor: "#ffd92f",
                                                          fillOpacity: 0.9 });
        function describe() {
          return "<b>Coverage gap #" + esc(r[1]) + "</b>" + table([
            ["Threat", r[2]], ["Uncovered", hours], ["Allowed", r[4] + " h"],
            ["Responsible unit", r[5]], ["Why threatened", r[6]], ["Protected sites", r[7]],
            ["Cell", r[0]]]);
        }
        [layer, pin].forEach(function (shape) {
          shape.bindTooltip("Gap #" + esc(r[1]) + ": " + esc(hours));
          bindLazyPopup(shape, describe);
          group.addLayer(shape);
        });
        drawn += 1;
      });
    },

    incidents: function (cluster, rows) {
      var markers = rows.map(function (r) {
        var marker = L.circleMarker([r[0], r[1]], { radius: 5, color: "#7f0000",
                                                     weight: 1, fillOpacity: 0.8 });
        bindLazyPopup(marker, function () {
          return "<b>" + esc(r[2]) + "</b>" + table([
            ["When", r[4]], ["Killed", r[5]], ["Verification", r[6]],
            ["Family", r[3].replace(/_/g, " ")]]);
        });
        return marker;
      });
      cluster.addLayers(markers);
    },

    tracks: function (group, rows, colour) {
      rows.forEach(function (r) {
        var line = L.polyline(r[1], { color: colour, weight: 3, opacity: 0.8 });
        line.bindTooltip(esc(r[0]));
        group.addLayer(line);
      });
    },

    alerts: function (group, rows) {
      rows.forEach(function (r) {
        var colour = { red: "#b2182b", amber: "#e08214", yellow: "#c9a227" }[r[3]] || "#d7191c";
        var marker = L.circleMarker([r[1], r[2]], { radius: 9, color: colour, weight: 3,
                                                     fillOpacity: 0.2 });
        bindLazyPopup(marker, function () {
          return "<b>" + esc(r[4]) + "</b>" + table([["Severity", r[3]], ["State", r[5]],
                                                     ["Cell", r[0]]]);
        });
        group.addLayer(marker);
      });
    },

    ready: function (map) {
      // Time since navigation started: what a duty officer waits for the first full picture.
      window.vigilMapReady = { cells: drawn, ms: Math.round(performance.now()) };
      document.body.setAttribute("data-map-ready", "1");
    }
  };

  window.VigilMap = VigilMap;
})();
