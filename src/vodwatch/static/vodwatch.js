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
 * Beacons (SPEC §6) carry the media-time ranges actually played and the wall-clock time spent
 * playing since the previous beacon. The first goes out at the first `playing` event (the
 * server's clock bounds count from a session's first beacon), then one every
 * `heartbeatSeconds` while playing, and one at once on pause, seek, rate change, end, a hidden
 * page and page hide. A beacon that cannot be delivered is kept in localStorage and re-sent
 * later: (sessionId, seq) makes sending twice harmless.
 */
(function (root) {
  "use strict";

  var BEACON_PATH = "/vod/webapi/beacon";
  var POLL_MS = 250; // `timeupdate` fires only ~3 times a second: poll currentTime instead
  var QUEUE_KEY = "vodwatch:queue";
  var QUEUE_MAX_ITEMS = 200;
  var QUEUE_MAX_CHARS = 200000;
  var BATCH_MAX = 100; // beacons per re-send request (the server takes up to 1000)

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
    var token = options.token;
    var heartbeatMs = Math.max(1, Number(options.heartbeatSeconds) || 10) * 1000;
    var sessionId = randomId();

    var seq = 0;
    var segments = []; // closed ranges [start, end] (media seconds) since the previous beacon
    var openStart = null; // where the range being played started, or null
    var lastPos = null; // media position at the last observation, null when there is none
    var lastWall = 0; // performance.now() at that observation
    var playedMs = 0; // wall-clock ms of playing since the previous beacon (fractional)
    var lastSentWall = 0;
    var started = false; // the first `playing` was seen: beacons may go out
    var poller = null;
    var inFlight = []; // promises of requests not yet settled, for flush()
    var stopped = false;

    // -- observing playback ---------------------------------------------------------------

    // Where playback (re)starts: the next tick measures from here.
    function observe() {
      lastPos = video.currentTime;
      lastWall = now();
    }

    // One look at currentTime. Only media that moved counts, and only as much wall time as
    // that media plausibly took: a sleeping laptop or a stalled decoder accumulates nothing.
    function tick() {
      if (lastPos === null || video.seeking) {
        observe();
        return;
      }
      var pos = video.currentTime;
      var wall = now();
      var mediaDelta = pos - lastPos;
      var wallDelta = wall - lastWall;
      var rate = Math.abs(video.playbackRate) || 1;
      // A move much further than the elapsed time allows (or backwards) is a jump, not play:
      // a seek without events, a loop, a source change. What lies in between was not played.
      var jumped = mediaDelta < 0 || mediaDelta > (wallDelta / 1000) * rate * 1.5 + 1;
      if (jumped) {
        closeSegment();
      } else if (mediaDelta > 0) {
        if (openStart === null) openStart = lastPos;
        playedMs += Math.min(wallDelta, ((mediaDelta * 1000) / rate) * 1.25 + 50);
      }
      lastPos = pos;
      lastWall = wall;
      if (wall - lastSentWall >= heartbeatMs) send(false);
    }

    function closeSegment() {
      if (openStart !== null && lastPos > openStart) segments.push([ms(openStart), ms(lastPos)]);
      openStart = null;
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
      var duration = video.duration;
      if (isFinite(duration) && duration > 0) beacon.duration = ms(duration);
      return beacon;
    }

    // Sends what is pending. `unloading`: the page may be gone in a moment, so hand the beacon
    // to navigator.sendBeacon, which the browser delivers after the page is closed.
    function send(unloading) {
      var beacon = takeBeacon();
      lastSentWall = now();
      if (beacon === null) return;
      if (unloading && navigator.sendBeacon) {
        if (!navigator.sendBeacon(url, JSON.stringify(beacon))) enqueue([beacon], url);
        return;
      }
      remember(post(url, [beacon], true));
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
        tick();
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
        closeSegment();
      },
      // currentTime already holds the new position: close the range where the last tick saw
      // playback, and measure afresh once the seek is done.
      seeking: function () {
        closeSegment();
        lastPos = null;
      },
      seeked: function () {
        send(false);
        tick();
        if (!video.paused) startPolling();
      },
      ratechange: function () {
        tick(); // measured at the new rate already: off by a few ms at most
        closeSegment();
        send(false);
      },
    };

    function onVisibility() {
      if (document.visibilityState !== "hidden") return;
      tick();
      closeSegment();
      send(true);
    }

    function onPageHide() {
      tick();
      closeSegment();
      send(true);
    }

    function onOnline() {
      remember(resendQueue());
    }

    Object.keys(onMedia).forEach(function (name) {
      video.addEventListener(name, onMedia[name]);
    });
    document.addEventListener("visibilitychange", onVisibility);
    root.addEventListener("pagehide", onPageHide);
    root.addEventListener("online", onOnline);

    remember(resendQueue()); // beacons an earlier page on this origin could not deliver
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
          root.removeEventListener("online", onOnline);
        }
        return settled();
      },
    };
  }

  // -- delivery and the localStorage queue ------------------------------------------------

  // POSTs beacons as text/plain: a "simple" CORS request, so no preflight. Resolves (never
  // rejects) once the answer is handled: 2xx delivered, network errors / 5xx / 429 queued,
  // other 4xx dropped (they would never succeed).
  function post(url, beacons, isLive) {
    var body = JSON.stringify(beacons.length === 1 ? beacons[0] : beacons);
    return fetch(url, {
      method: "POST",
      body: body,
      headers: { "Content-Type": "text/plain;charset=UTF-8" },
      // keepalive lets a live beacon outlive a navigation; browsers cap keepalive bodies at
      // 64 KB in all, so batches re-sent from the queue go without it.
      keepalive: isLive,
      credentials: "omit",
    }).then(
      function (response) {
        if (response.ok) {
          if (!isLive) unqueue(beacons);
          return isLive ? resendQueue() : undefined;
        }
        if (response.status >= 500 || response.status === 429) {
          if (isLive) enqueue(beacons, url);
          return undefined;
        }
        if (!isLive) unqueue(beacons);
        return response.text().then(function (text) {
          console.warn("vodwatch: beacon refused (HTTP " + response.status + "): " + text);
        });
      },
      function () {
        // Offline, or the page's origin is not allowed (CORS hides which): keep it for later.
        if (isLive) enqueue(beacons, url);
      }
    ).catch(function (error) {
      console.warn("vodwatch:", error);
    });
  }

  var resending = null; // one re-send at a time per page

  // Re-sends the queue: one request per endpoint and token (the server takes a request all or
  // nothing, so one expired token must not sink other beacons), at most BATCH_MAX each.
  // Beacons stay queued until the server has answered them: a page closed meanwhile loses
  // nothing, and a beacon sent twice is a duplicate.
  function resendQueue() {
    if (resending !== null) return resending;
    var groups = {};
    readQueue().forEach(function (item) {
      var key = item.u + " " + item.b.token;
      groups[key] = groups[key] || { url: item.u, beacons: [] };
      if (groups[key].beacons.length < BATCH_MAX) groups[key].beacons.push(item.b);
    });
    var requests = Object.keys(groups).map(function (key) {
      return post(groups[key].url, groups[key].beacons, false);
    });
    if (requests.length === 0) return Promise.resolve();
    resending = Promise.all(requests).then(function () {
      resending = null;
    });
    return resending;
  }

  function readQueue() {
    try {
      var items = JSON.parse(localStorage.getItem(QUEUE_KEY) || "[]");
      return Array.isArray(items) ? items : [];
    } catch (error) {
      return []; // storage disabled, or garbage under our key
    }
  }

  function writeQueue(items) {
    try {
      var text = JSON.stringify(items);
      // Bounded: the oldest beacons go first.
      while (items.length > QUEUE_MAX_ITEMS || text.length > QUEUE_MAX_CHARS) {
        items.shift();
        text = JSON.stringify(items);
      }
      if (items.length === 0) localStorage.removeItem(QUEUE_KEY);
      else localStorage.setItem(QUEUE_KEY, text);
    } catch (error) {
      // No storage (private mode, quota): the beacon is lost, playback goes on.
    }
  }

  function enqueue(beacons, url) {
    writeQueue(
      readQueue().concat(
        beacons.map(function (beacon) {
          return { u: url, b: beacon };
        })
      )
    );
  }

  function unqueue(beacons) {
    var done = {};
    beacons.forEach(function (beacon) {
      done[beacon.sessionId + " " + beacon.seq] = true;
    });
    writeQueue(
      readQueue().filter(function (item) {
        return !done[item.b.sessionId + " " + item.b.seq];
      })
    );
  }

  // -- small helpers ------------------------------------------------------------------------

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
