// hookwire console: follows a running run's output without a reload. Without JavaScript the
// page still shows the output so far and can be reloaded by hand.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const output = document.getElementById("output");
  const url = output && output.dataset.follow;
  if (!url || typeof EventSource === "undefined") {
    return;
  }
  // The stream starts with what was written so far, so the page's copy is replaced.
  let fresh = true;
  const source = new EventSource(url);
  source.addEventListener("output", (event) => {
    if (fresh) {
      output.textContent = "";
      fresh = false;
    }
    output.textContent += JSON.parse(event.data);
    output.scrollTop = output.scrollHeight;
  });
  source.addEventListener("missed", (event) => {
    output.textContent += "[" + JSON.parse(event.data) + " bytes of output were dropped]\n";
  });
  source.addEventListener("end", (event) => {
    source.close();
    const status = document.getElementById("run-status");
    if (status) {
      const outcome = JSON.parse(event.data).status;
      status.textContent = "";
      const badge = document.createElement("span");
      badge.className = "status status-" + outcome;
      badge.textContent = outcome;
      status.appendChild(badge);
    }
  });
});
