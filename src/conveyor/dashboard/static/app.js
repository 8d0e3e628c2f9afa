// Live updates: one EventSource on the API's /events; each event asks the page's live parts to
// re-fetch themselves (at most once a second). Closed while the tab is hidden; the parts also
// poll every 15 s (htmx, skipped while hidden) in case the stream cannot be opened.
(function () {
  const body = document.body;
  const api = body.dataset.api || "";
  const job = body.dataset.job || "";
  const dot = document.querySelector(".live");
  let source = null, pending = false;

  function refresh() {
    if (pending) return;
    pending = true;
    setTimeout(() => { pending = false; htmx.trigger(body, "refresh"); }, 1000);
  }

  function progress(event) {
    const data = JSON.parse(event.data).data || {};
    const bar = document.getElementById("progress");
    if (!bar) return;
    if (data.total) { bar.max = data.total; bar.value = data.current; }
    const text = document.getElementById("progress-text");
    if (text) text.textContent = `${data.current}${data.total ? " / " + data.total : ""} ${data.message || ""}`;
  }

  function open() {
    if (source || document.hidden) return;
    const query = job ? `?job=${encodeURIComponent(job)}` : "";
    source = new EventSource(`${api}/events${query}`);
    source.onopen = () => dot && dot.classList.add("on");
    source.onerror = () => dot && dot.classList.remove("on");
    source.onmessage = refresh;
    for (const type of ["job.enqueued", "job.started", "job.succeeded", "job.failed", "job.retrying",
                        "job.cancelled", "job.expired", "job.requeued", "job.deleted", "job.cancel_requested",
                        "queue.paused", "queue.resumed", "queue.purged"]) {
      source.addEventListener(type, refresh);
    }
    source.addEventListener("job.progress", job ? progress : refresh);
  }

  function close() {
    if (source) { source.close(); source = null; }
    dot && dot.classList.remove("on");
  }

  document.addEventListener("visibilitychange", () => (document.hidden ? close() : open()));
  open();
})();
