/*
 * vodwatch.js: reports what a viewer really watched of an HTML <video> or <audio> to vodwatch.
 *
 * A classic script with no dependencies and no build step:
 *   <script src="https://stats.example.com/static/vodwatch.js"></script>  -> global `vodwatch`
 *   import { track } from "https://stats.example.com/static/vodwatch.mjs";  (ES module)
 *
 *   const handle = vodwatch.track(video, { endpoint: "https://stats.example.com", token });
 *   handle.stop();  // sends what is pending, detaches
 *
 * Options: `heartbeatSeconds` (10); `resume: true` seeks, once the media's metadata is loaded,
 * to where the viewer stopped last time in this attempt (the progress endpoint's `resumeAt`);
 * `onProgress(progress)` is called with the viewer's progress (SPEC §10: percent, completed,
 * counted and raw intervals) once at the start and after each beacon is answered.
 *
 * Beacons (SPEC §6) carry the media-time ranges actually played and the wall-clock time spent
 * playing since the previous beacon. The first goes out at the first `playing` event (the
 * server's clock bounds count from a session's first beacon), then one every
 * `heartbeatSeconds` while playing, and one at once on pause, seek, rate change, end, a hidden
 * page and page hide. Each beacon says the playback `rate` its segments played at (when not 1)
 * and `hidden: true` when the page was hidden meanwhile: a beacon goes out whenever either
 * changes, so one beacon's segments share them (completion rules may leave such parts out).
 *
 * Delivery: every beacon is written to this page's localStorage queue before it is sent and
 * leaves it when the server has answered it (2xx, or a 4xx that would never succeed). 429, 5xx
 * and network errors back off (Retry-After, else 1 s doubling to 5 min, with jitter); the
 * queue is re-sent when the backoff ends. (sessionId, seq) makes sending twice harmless, so
 * the rules always err towards a duplicate, never towards a loss.
 */
(function (root) {
  "use strict";

  var BEACON_PATH = "/vod/webapi/beacon";
  var PROGRESS_PATH = "/vod/webapi/progress";
  var POLL_MS = 250; // `timeupdate` fires only ~3 times a second: poll currentTime instead
  // A seek's start is estimated from the last poll (currentTime already holds the target at
  // `seeking`): at most this much, the longest a background tab's timers are held back.
  var SEEK_ESTIMATE_MAX_MS = 1000;

  var QUEUE_PREFIX = "vodwatch:queue:"; // + page id: one queue per page, see "the queue" below
  var LEGACY_QUEUE_KEY = "vodwatch:queue"; // the one shared queue of earlier versions
  var CLAIM_PREFIX = "vodwatch:claim:"; // + queue key: a page is adopting that queue
  var BACKOFF_KEY = "vodwatch:backoff"; // {endpoint URL: {until, delay, network}}
  var QUEUE_MAX_ITEMS = 200;
  var QUEUE_MAX_CHARS = 200000;
  var BATCH_MAX = 100; // beacons per re-send request (the server takes up to 1000)
  var BACKOFF_MIN_MS = 1000;
  var BACKOFF_MAX_MS = 300000;
  var RETRY_AFTER_MAX_MS = 3600000; // a Retry-After beyond an hour is taken as an hour
  var STALE_MS = 600000; // a queue not written for 10 min belongs to a page that is gone
  var ALIVE_EVERY_MS = 60000; // how often a page with a queue says it is still there
  var CLAIM_WAIT_MS = 500; // between claiming a queue and taking it, see adoptOrphans()
  var CLAIM_EXPIRY_MS = 30000; // a claim older than this was abandoned

  function track(video, options) {
    if (!video || typeof video.addEventListener !== "function" || !("currentTime" in video)) {
      throw new TypeError("vodwatch.track: the first argument must be a <video> or <audio>");
    }
    options = options || {};
    if (typeof options.token !== "string" || !options.token) {
      throw new TypeError("vodwatch.track: options.token (the playback token) is required");
    }
    if (typeof options.endpoint !== "string") {
      throw new TypeError("vodwatch.track: options.endpoint (the vodwatch URL) is required");
    }
    var url = beaconUrl(options.endpoint);
    var progressUrl = url.slice(0, url.length - BEACON_PATH.length) + PROGRESS_PATH;
    var token = options.token;
    var onProgress = typeof options.onProgress === "function" ? options.onProgress : null;
    var wantsResume = options.resume === true;
    var heartbeatMs = Math.max(1, Number(options.heartbeatSeconds) || 10) * 1000;
    var sessionId = randomId();

    var seq = 0;
    var segments = []; // closed ranges [start, end] (media seconds) since the previous beacon
    var openStart = null; // where the range being played started, or null
    var lastPos = null; // media position at the last observation, null when there is none
    var lastWall = 0; // performance.now() at that observation
    var lastRate = 1; // playbackRate since that observation (ratechange fires after the change)
    var playedMs = 0; // wall-clock ms of playing since the previous beacon (fractional)
    var lastSentWall = 0;
    var started = false; // the first `playing` was seen: beacons may go out
    var isStalled = false; // `waiting` was seen since the last `playing`
    var isPageGone = false; // between pagehide and pageshow: the page's last beacon is out
    var poller = null;
    var inFlight = []; // promises of requests not yet settled, for flush()
    var stopped = false;
    // How the pending segments play: the rate and whether the page is hidden. A beacon goes
    // out when either changes, so that all segments of one beacon share them.
    var segmentRate = currentRate();
    var isHidden = document.visibilityState === "hidden";
    var progressPending = null; // the progress request in flight, if any
    var progressAgain = false; // another beacon was answered meanwhile: ask again after it

    // -- observing playback ---------------------------------------------------------------

    // Where playback (re)starts: the next tick measures from here.
    function observe() {
      lastPos = video.currentTime;
      lastWall = now();
      lastRate = currentRate();
    }

    // One look at currentTime. Only media that moved counts, and only as much wall time as
    // that media plausibly took: a sleeping laptop or a stalled decoder accumulates nothing.
    function tick() {
      // Mid-seek, currentTime is the target already: keep the last observation, which
      // `seeking` needs to credit what was played up to the seek.
      if (video.seeking) return;
      if (lastPos === null) {
        observe();
        return;
      }
      var pos = video.currentTime;
      var wall = now();
      var mediaDelta = pos - lastPos;
      var wallDelta = wall - lastWall;
      var rate = lastRate;
      // A move much further than the elapsed time allows (or backwards) is a jump, not play:
      // a seek without events, a loop, a source change. What lies in between was not played.
      var jumped = mediaDelta < 0 || mediaDelta > (wallDelta / 1000) * rate * 1.5 + 1;
      if (jumped) {
        closeSegment();
      } else if (mediaDelta > 0) {
        isStalled = false;
        if (openStart === null) openStart = lastPos;
        playedMs += Math.min(wallDelta, ((mediaDelta * 1000) / rate) * 1.25 + 50);
      }
      lastPos = pos;
      lastWall = wall;
      lastRate = currentRate();
      if (wall - lastSentWall >= heartbeatMs) send(false);
    }

    // At `seeking` the media stopped where it was playing, but currentTime already says where
    // it goes: credit the time since the last poll at the rate it played, up to the end of
    // the media. Nothing when it was not playing (paused, stalled, or already seeking).
    function creditUntilSeek() {
      if (lastPos === null || poller === null || isStalled || video.paused) return;
      var wall = now();
      var elapsedMs = Math.min(wall - lastWall, SEEK_ESTIMATE_MAX_MS);
      var pos = lastPos + (elapsedMs / 1000) * lastRate;
      if (isFinite(video.duration) && video.duration > 0) pos = Math.min(pos, video.duration);
      if (pos > lastPos) {
        if (openStart === null) openStart = lastPos;
        playedMs += Math.min(elapsedMs, ((pos - lastPos) * 1000) / lastRate);
        lastPos = pos;
      }
      lastWall = wall;
    }

    function closeSegment() {
      if (openStart !== null && lastPos > openStart) segments.push([ms(openStart), ms(lastPos)]);
      openStart = null;
    }

    function currentRate() {
      return Math.abs(video.playbackRate) || 1;
    }

    function startPolling() {
      if (poller === null) poller = setInterval(tick, POLL_MS);
    }

    function stopPolling() {
      if (poller !== null) clearInterval(poller);
      poller = null;
    }

    // -- beacons --------------------------------------------------------------------------

    // The beacon for what was played since the previous one, or null when there is nothing
    // to say (an empty heartbeat gains nothing; only seq 1 goes out empty, to open the visit).
    // Nothing goes out before the first `playing`: a page opened but never played is no visit.
    function takeBeacon() {
      if (!started) return null;
      var parts = segments;
      if (openStart !== null && lastPos > openStart) {
        parts = parts.concat([[ms(openStart), ms(lastPos)]]);
        openStart = lastPos; // the range goes on in the next beacon
      }
      var whole = Math.floor(playedMs);
      if (seq > 0 && parts.length === 0 && whole === 0) return null;
      segments = [];
      playedMs -= whole;
      seq += 1;
      var beacon = {
        token: token,
        sessionId: sessionId,
        seq: seq,
        segments: parts,
        playedMs: whole,
        position: ms(video.currentTime || 0),
        ended: Boolean(video.ended),
      };
      if (segmentRate !== 1) beacon.rate = Math.min(16, Math.round(segmentRate * 1000) / 1000);
      if (isHidden) beacon.hidden = true;
      var duration = video.duration;
      if (isFinite(duration) && duration > 0) beacon.duration = ms(duration);
      return beacon;
    }

    // Sends what is pending. `isClosing`: pagehide, the page may be gone in a moment.
    function send(isClosing) {
      var beacon = takeBeacon();
      lastSentWall = now();
      if (beacon === null) return;
      var delivered = deliver(url, beacon, isClosing);
      remember(delivered);
      if (onProgress && !isClosing) delivered.then(refreshProgress);
    }

    // -- the viewer's progress (resume, onProgress) ---------------------------------------

    function fetchProgress() {
      return fetch(progressUrl, { headers: { Authorization: "Bearer " + token } }).then(
        function (response) {
          if (!response.ok) return null;
          return response.json().then(function (body) {
            return body && body.result === 0 ? body.data : null;
          });
        },
        function () {
          return null; // offline: no progress to show, playback goes on
        }
      );
    }

    // At most one request at a time; one more after it when beacons were answered meanwhile.
    function refreshProgress() {
      if (!onProgress || stopped) return;
      if (progressPending !== null) {
        progressAgain = true;
        return;
      }
      progressPending = fetchProgress().then(function (progress) {
        progressPending = null;
        if (progress !== null && !stopped) {
          try {
            onProgress(progress);
          } catch (error) {
            setTimeout(function () {
              throw error; // the page's own error: reported, not swallowed, not ours to stop
            });
          }
        }
        if (progressAgain) {
          progressAgain = false;
          refreshProgress();
        }
      });
    }

    // Once: seek to where this attempt stopped, when the media can seek (metadata loaded).
    function resume() {
      var asked = fetchProgress();
      function seek() {
        video.removeEventListener("loadedmetadata", seek);
        asked.then(function (progress) {
          if (progress === null || stopped || !(progress.resumeAt > 0)) return;
          var at = progress.resumeAt / 1000;
          var duration = video.duration;
          // Near the end (or past it) there is nothing left to resume: start over.
          if (isFinite(duration) && duration > 0 && at >= duration - 1) return;
          if (video.currentTime < at) video.currentTime = at;
        });
      }
      if (video.readyState >= 1) seek();
      else video.addEventListener("loadedmetadata", seek);
    }

    function remember(promise) {
      inFlight.push(promise);
      promise.then(function () {
        inFlight.splice(inFlight.indexOf(promise), 1);
      });
    }

    function settled() {
      return Promise.all(inFlight.slice()).then(function () {});
    }

    // -- the media element's events -------------------------------------------------------

    var onMedia = {
      playing: function () {
        isStalled = false;
        if (!started) {
          started = true;
          send(false); // seq 1 at once: the server's clock bounds start here
        }
        // Resuming after a pause: the pause is not playing time. The media may have moved a
        // little before this event: the range goes on from where it paused, with no time.
        if (poller === null) lastWall = now();
        tick();
        startPolling();
      },
      pause: function () {
        tick(); // currentTime is where it paused: the last stretch counts in full
        stopPolling();
        closeSegment();
        send(false);
      },
      ended: function () {
        tick();
        stopPolling();
        closeSegment();
        send(false);
      },
      waiting: function () {
        tick();
        isStalled = true;
        closeSegment();
      },
      seeking: function () {
        creditUntilSeek();
        closeSegment();
        lastPos = null; // measure afresh once the seek is done
      },
      seeked: function () {
        send(false);
        tick();
        if (!video.paused) startPolling();
      },
      ratechange: function () {
        tick(); // measured at the rate that was in effect since the previous poll
        closeSegment();
        send(false); // what played at the old rate, as such
        segmentRate = currentRate();
      },
    };

    // A hidden page may never be seen again (mobile browsers discard them without pagehide):
    // report now, with fetch keepalive, whose answer the page can still read.
    // Shown again: what played while hidden goes out as such, before anything visible joins.
    function onVisibility() {
      var hidden = document.visibilityState === "hidden";
      if (hidden === isHidden) return;
      if (!isPageGone) {
        tick();
        closeSegment();
        send(false);
      }
      isHidden = hidden;
    }

    function onPageHide() {
      tick();
      closeSegment();
      send(true);
      isPageGone = true; // the visibilitychange that follows has nothing more to say
    }

    function onPageShow() {
      isPageGone = false; // back from the back/forward cache
    }

    Object.keys(onMedia).forEach(function (name) {
      video.addEventListener(name, onMedia[name]);
    });
    document.addEventListener("visibilitychange", onVisibility);
    root.addEventListener("pagehide", onPageHide);
    root.addEventListener("pageshow", onPageShow);

    startOutbox();
    remember(resendQueue()); // beacons an earlier page on this origin could not deliver
    if (wantsResume) resume();
    refreshProgress();
    if (!video.paused && !video.ended && video.readyState > 2) onMedia.playing(); // autoplayed

    return {
      sessionId: sessionId,
      /** Sends what is pending; resolves when every request of this tracker has settled. */
      flush: function () {
        if (!stopped) {
          tick();
          send(false);
        }
        return settled();
      },
      /** Sends what is pending and detaches every listener and timer. */
      stop: function () {
        if (!stopped) {
          tick();
          closeSegment();
          send(false);
          stopped = true;
          stopPolling();
          Object.keys(onMedia).forEach(function (name) {
            video.removeEventListener(name, onMedia[name]);
          });
          document.removeEventListener("visibilitychange", onVisibility);
          root.removeEventListener("pagehide", onPageHide);
          root.removeEventListener("pageshow", onPageShow);
        }
        return settled();
      },
    };
  }

  // -- delivery -----------------------------------------------------------------------------

  var sending = {}; // "sessionId seq" of the beacons in a request not answered yet
  var resending = null; // one re-send at a time per page
  var retryTimer = null;
  var isOutboxStarted = false;

  // A tracker's beacon: into the queue first, then to the network, so that a page closed or
  // discarded before the answer loses nothing (the next page sends it again: a duplicate at
  // worst). When beacons already wait for this endpoint, it joins them: during a backoff it
  // waits, else the queue goes now, in one request. Except seq 1, which always goes at once:
  // the server's clock bounds count from a visit's first beacon, so a late seq 1 would cap the
  // whole visit at the server's slack (15 s); it is one small request per visit.
  function deliver(url, beacon, isClosing) {
    var isJoining = beacon.seq !== 1 && hasWaiting(url);
    enqueue([beacon], url, isClosing);
    if (beacon.seq !== 1 && isBackingOff(url)) {
      scheduleRetry();
      return Promise.resolve();
    }
    if (isClosing && navigator.sendBeacon) {
      // The browser delivers it after the page is gone, but nobody will read the answer: it
      // stays queued until a later page on this origin gets it through (or a duplicate).
      navigator.sendBeacon(url, JSON.stringify(beacon));
      return Promise.resolve();
    }
    return isJoining && !isClosing ? resendQueue() : post(url, [beacon], true);
  }

  // POSTs beacons as text/plain: a "simple" CORS request, so no preflight. Resolves (never
  // rejects) to true when the server stored them. Answers: 2xx delivered; network errors, 5xx
  // and 429 leave them queued and back off; other 4xx drop them (they would never succeed).
  function post(url, beacons, isLive) {
    var keys = beacons.map(beaconKey);
    keys.forEach(function (key) {
      sending[key] = true;
    });
    var isDelivered = false;
    return fetch(url, {
      method: "POST",
      body: JSON.stringify(beacons.length === 1 ? beacons[0] : beacons),
      headers: { "Content-Type": "text/plain;charset=UTF-8" },
      // keepalive lets a live beacon outlive a navigation; browsers cap keepalive bodies at
      // 64 KB in all, so batches re-sent from the queue go without it.
      keepalive: isLive,
      credentials: "omit",
    })
      .then(
        function (response) {
          if (response.ok) {
            isDelivered = true;
            unqueue(beacons);
            // A live beacon got through while others wait: they go now, but the backoff is
            // over only once they do (else a queue the server keeps refusing would go again
            // after every live beacon).
            if (!isLive || !hasWaiting(url)) clearBackoff(url, false);
            return undefined;
          }
          if (response.status >= 500 || response.status === 429) {
            backOff(url, retryAfterMs(response), false);
            return undefined;
          }
          unqueue(beacons);
          return response.text().then(function (text) {
            console.warn("vodwatch: beacon refused (HTTP " + response.status + "): " + text);
          });
        },
        function () {
          // Offline, or the page's origin is not allowed (CORS hides which): keep it for later.
          backOff(url, null, true);
        }
      )
      .catch(function (error) {
        console.warn("vodwatch:", error);
      })
      .then(function () {
        keys.forEach(function (key) {
          delete sending[key];
        });
        // Not after every live beacon: only when something waits and may go now.
        if (isLive && isDelivered && (hasResendable() || hasOrphans())) return resendQueue();
        return undefined;
      })
      .then(function () {
        return isDelivered;
      });
  }

  // Re-sends the queue: one request per endpoint and token (the server takes a request all or
  // nothing, so one expired token must not sink other beacons), at most BATCH_MAX each, and
  // none to an endpoint that asked to wait. Beacons stay queued until the server has answered
  // them: a page closed meanwhile loses nothing, and a beacon sent twice is a duplicate.
  function resendQueue() {
    if (resending !== null) return resending;
    resending = adoptOrphans()
      .then(function () {
        var groups = {};
        var isWaiting = false;
        readQueue().forEach(function (item) {
          if (sending[beaconKey(item.b)]) return;
          if (isBackingOff(item.u)) {
            isWaiting = true;
            return;
          }
          var key = item.u + " " + item.b.token;
          groups[key] = groups[key] || { url: item.u, beacons: [] };
          if (groups[key].beacons.length < BATCH_MAX) groups[key].beacons.push(item.b);
        });
        if (isWaiting) scheduleRetry();
        return Promise.all(
          Object.keys(groups).map(function (key) {
            return post(groups[key].url, groups[key].beacons, false);
          })
        );
      })
      .then(
        function (delivered) {
          resending = null;
          // More than BATCH_MAX were waiting: go on while the server takes them.
          if (delivered.indexOf(true) >= 0 && hasResendable()) return resendQueue();
          return undefined;
        },
        function (error) {
          resending = null;
          console.warn("vodwatch:", error);
        }
      );
    return resending;
  }

  function hasResendable() {
    return readQueue().some(function (item) {
      return !sending[beaconKey(item.b)] && !isBackingOff(item.u);
    });
  }

  function hasWaiting(url) {
    return readQueue().some(function (item) {
      return !sending[beaconKey(item.b)] && item.u === url;
    });
  }

  // Listeners for the page's queue, once per page whatever the number of trackers: they stay
  // when trackers stop, as the queue outlives them.
  function startOutbox() {
    if (isOutboxStarted) return;
    isOutboxStarted = true;
    root.addEventListener("online", function () {
      clearBackoff(null, true); // waits for the network are over, those a server asked for not
      resendQueue();
    });
    root.addEventListener("pagehide", closeQueue);
    root.addEventListener("pageshow", function (event) {
      if (event.persisted) resendQueue(); // back from the back/forward cache: adopt our queue
    });
  }

  // -- backoff (shared by the pages of this origin, in localStorage) -----------------------

  function readBackoffs() {
    var all = readJson(BACKOFF_KEY);
    return all && typeof all === "object" && !Array.isArray(all) ? all : {};
  }

  function backoffUntil(url) {
    var entry = readBackoffs()[url];
    return entry && typeof entry.until === "number" ? entry.until : 0;
  }

  function isBackingOff(url) {
    return Date.now() < backoffUntil(url);
  }

  // A 429, a 5xx or a network error from `url`: wait `waitMs` (Retry-After) or else the
  // doubled delay, within [0.75, 1] of it so that many pages do not retry in step. An answer
  // to a request sent before the current wait began does not double it again.
  function backOff(url, waitMs, isNetwork) {
    var all = readBackoffs();
    var previous = all[url];
    var t = Date.now();
    var isWaiting = previous && t < previous.until;
    if (isWaiting && waitMs === null) return;
    var isRecent = previous && t - previous.until < BACKOFF_MAX_MS;
    var delay = isRecent ? Math.min(BACKOFF_MAX_MS, previous.delay * 2) : BACKOFF_MIN_MS;
    if (isWaiting) delay = previous.delay;
    var wait =
      waitMs !== null
        ? Math.min(Math.max(waitMs, BACKOFF_MIN_MS), RETRY_AFTER_MAX_MS)
        : delay * (0.75 + Math.random() / 4);
    all[url] = {
      until: Math.max(isWaiting ? previous.until : 0, t + wait),
      delay: delay,
      network: isNetwork,
    };
    writeJson(BACKOFF_KEY, all);
    scheduleRetry();
  }

  // The server took a request from `url` (or, with `url` null and `onlyNetwork`, the browser
  // is back online): its backoff is over.
  function clearBackoff(url, onlyNetwork) {
    var all = readBackoffs();
    var changed = false;
    Object.keys(all).forEach(function (key) {
      if ((url === null || key === url) && (!onlyNetwork || all[key].network)) {
        delete all[key];
        changed = true;
      }
    });
    if (changed) writeJson(BACKOFF_KEY, all);
  }

  // One timer per page, for the soonest end of a backoff: then the queue goes again.
  function scheduleRetry() {
    var all = readBackoffs();
    var soonest = Infinity;
    Object.keys(all).forEach(function (key) {
      if (all[key].until > Date.now()) soonest = Math.min(soonest, all[key].until);
    });
    if (soonest === Infinity) return;
    if (retryTimer !== null) clearTimeout(retryTimer);
    retryTimer = setTimeout(function () {
      retryTimer = null;
      resendQueue();
    }, soonest - Date.now() + 10);
  }

  // Retry-After in seconds or as an HTTP date; null when absent (or not exposed by CORS).
  function retryAfterMs(response) {
    var value = response.headers.get("Retry-After");
    if (!value) return null;
    if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
    var date = Date.parse(value);
    return isNaN(date) ? null : Math.max(0, date - Date.now());
  }

  // -- the queue: one per page, in localStorage -------------------------------------------
  //
  // localStorage has no transactions: two tabs doing read-modify-write on one shared key lose
  // each other's changes (and Chrome shows a tab the other tabs' writes a few ms late). So
  // each page writes only its own key, vodwatch:queue:<page id>. Web Locks would need an
  // asynchronous grant, but pagehide must queue its beacon synchronously, and a lock held for
  // a page's lifetime keeps the page out of the back/forward cache.
  //
  // A page's queue is adopted by a later page of the origin once its owner is gone: marked
  // closed at pagehide (the owner never writes that key again; back from the back/forward
  // cache it takes a new one), or not written for STALE_MS (a crash; a living page rewrites it
  // every ALIVE_EVERY_MS). The adopter first writes a claim next to the queue and waits
  // CLAIM_WAIT_MS; the owner checks for a claim before each write and, finding one, leaves
  // that key for a new one. After the wait the adopter takes the queue only if it is still
  // its claim and the queue still looks orphaned: an owner that wrote meanwhile keeps it. Two
  // adopters racing both lose at worst to a duplicate, never a beacon.

  var pageId = null; // this page's queue is QUEUE_PREFIX + pageId; null until it needs one
  var claimerId = randomId(); // who this page is in claims
  var aliveTimer = null;

  function ownKey() {
    return pageId === null ? null : QUEUE_PREFIX + pageId;
  }

  function readQueue() {
    return pageId === null ? [] : readRecord(ownKey()).items;
  }

  // Read-modify-write of this page's queue, synchronous from the claim check to the write.
  // `isClosing`: the last write before the page goes away.
  function updateQueue(change, isClosing) {
    if (pageId !== null && storageGet(CLAIM_PREFIX + ownKey()) !== null) pageId = null;
    if (pageId === null) pageId = randomId();
    var key = ownKey();
    var items = change(readRecord(key).items);
    var isKept = writeRecord(key, items, isClosing);
    if (isClosing) pageId = null;
    keepAlive(isKept && !isClosing);
  }

  function enqueue(beacons, url, isClosing) {
    updateQueue(function (items) {
      return items.concat(
        beacons.map(function (beacon) {
          return { u: url, b: beacon };
        })
      );
    }, isClosing);
  }

  function unqueue(beacons) {
    if (pageId === null) return;
    var done = {};
    beacons.forEach(function (beacon) {
      done[beaconKey(beacon)] = true;
    });
    updateQueue(function (items) {
      return items.filter(function (item) {
        return !done[beaconKey(item.b)];
      });
    }, false);
  }

  // pagehide: whatever this page still has queued may be adopted by the next page.
  function closeQueue() {
    if (pageId === null) return;
    updateQueue(function (items) {
      return items;
    }, true);
  }

  function keepAlive(isNeeded) {
    if (isNeeded && aliveTimer === null) {
      aliveTimer = setInterval(function () {
        if (pageId === null) keepAlive(false);
        else
          updateQueue(function (items) {
            return items;
          }, false);
      }, ALIVE_EVERY_MS);
    } else if (!isNeeded && aliveTimer !== null) {
      clearInterval(aliveTimer);
      aliveTimer = null;
    }
  }

  function isOrphan(key, record) {
    return key === LEGACY_QUEUE_KEY || record.closed || Date.now() - record.at > STALE_MS;
  }

  function orphanKeys() {
    var keys = [];
    try {
      for (var i = 0; i < localStorage.length; i++) {
        var key = localStorage.key(i);
        if (key === LEGACY_QUEUE_KEY || (key.indexOf(QUEUE_PREFIX) === 0 && key !== ownKey())) {
          keys.push(key);
        }
      }
    } catch (error) {
      return []; // storage disabled
    }
    return keys.filter(function (key) {
      return isOrphan(key, readRecord(key));
    });
  }

  function hasOrphans() {
    return orphanKeys().length > 0;
  }

  // Moves the queues of pages that are gone into this page's queue (see above).
  function adoptOrphans() {
    var claimed = orphanKeys().filter(function (key) {
      var claim = readJson(CLAIM_PREFIX + key);
      var isTaken = claim && claim.by !== claimerId && Date.now() - claim.at < CLAIM_EXPIRY_MS;
      if (!isTaken) writeJson(CLAIM_PREFIX + key, { by: claimerId, at: Date.now() });
      return !isTaken;
    });
    if (claimed.length === 0) return Promise.resolve();
    return new Promise(function (resolve) {
      setTimeout(resolve, CLAIM_WAIT_MS);
    }).then(function () {
      claimed.forEach(function (key) {
        var claim = readJson(CLAIM_PREFIX + key);
        if (!claim || claim.by !== claimerId) return; // another page took it over
        var record = readRecord(key);
        if (isOrphan(key, record)) {
          updateQueue(function (items) {
            return record.items.concat(items); // older first: the bounds drop the oldest
          }, false);
          storageRemove(key);
        }
        storageRemove(CLAIM_PREFIX + key);
      });
    });
  }

  // {at, closed, items: [{u: url, b: beacon}]}; the legacy shared queue is a bare array.
  function readRecord(key) {
    var value = readJson(key);
    var record = { at: 0, closed: false, items: [] };
    if (Array.isArray(value)) record.items = value;
    else if (value && typeof value === "object") {
      record.at = typeof value.at === "number" ? value.at : 0;
      record.closed = value.closed === true;
      record.items = Array.isArray(value.items) ? value.items : [];
    }
    record.items = record.items.filter(function (item) {
      return item && typeof item.u === "string" && item.b && typeof item.b === "object";
    });
    return record;
  }

  // Writes a page's queue within the bounds (the oldest beacons go first); false when nothing
  // is left in it (or storage refuses it: the beacons are lost, playback goes on).
  function writeRecord(key, items, isClosed) {
    var record = { at: Date.now(), closed: isClosed, items: items };
    var text = JSON.stringify(record);
    while (items.length > QUEUE_MAX_ITEMS || text.length > QUEUE_MAX_CHARS) {
      items.shift();
      text = JSON.stringify(record);
    }
    if (items.length === 0) {
      storageRemove(key);
      return false;
    }
    return storageSet(key, text);
  }

  function readJson(key) {
    try {
      return JSON.parse(storageGet(key) || "null");
    } catch (error) {
      return null; // garbage under our key
    }
  }

  function writeJson(key, value) {
    if (Object.keys(value).length === 0) storageRemove(key);
    else storageSet(key, JSON.stringify(value));
  }

  function storageGet(key) {
    try {
      return localStorage.getItem(key);
    } catch (error) {
      return null; // storage disabled
    }
  }

  function storageSet(key, text) {
    try {
      localStorage.setItem(key, text);
      return true;
    } catch (error) {
      return false; // no storage (private mode, quota)
    }
  }

  function storageRemove(key) {
    try {
      localStorage.removeItem(key);
    } catch (error) {
      // storage disabled: nothing to remove
    }
  }

  // -- small helpers ------------------------------------------------------------------------

  function beaconKey(beacon) {
    return beacon.sessionId + " " + beacon.seq;
  }

  function beaconUrl(endpoint) {
    var base = endpoint.replace(/\/+$/, "");
    if (base.slice(-BEACON_PATH.length) !== BEACON_PATH) base += BEACON_PATH;
    return new URL(base, root.location.href).href;
  }

  // 22 characters of [A-Za-z0-9_-]: 132 random bits (the server takes 8 to 64 such).
  function randomId() {
    var alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    var bytes = crypto.getRandomValues(new Uint8Array(22));
    var id = "";
    for (var i = 0; i < bytes.length; i++) id += alphabet[bytes[i] & 63];
    return id;
  }

  function ms(seconds) {
    return Math.round(seconds * 1000) / 1000;
  }

  function now() {
    return performance.now();
  }

  root.vodwatch = { track: track };
})(globalThis);
