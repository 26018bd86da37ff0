// The vodwatch dashboard: shows every <time datetime="...Z"> in the browser's time zone and the
// page's language. Without script the UTC text the server wrote stays.
"use strict";

(function () {
  function localTimes() {
    const language = document.documentElement.lang || undefined;
    const format = new Intl.DateTimeFormat(language, { dateStyle: "medium", timeStyle: "short" });
    for (const element of document.querySelectorAll("time[datetime]")) {
      const moment = new Date(element.getAttribute("datetime"));
      if (Number.isNaN(moment.getTime())) continue;
      element.title = element.textContent;
      element.textContent = format.format(moment);
      element.dataset.local = "true";
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", localTimes);
  } else {
    localTimes();
  }
})();
