// qagen review: keyboard shortcuts and decisions. Model text is only ever set with
// textContent / value, never as HTML.
"use strict";

const pairs = Array.from(document.querySelectorAll("li.pair"));
let current = 0;

function say(text, kind) {
  const box = document.getElementById("message");
  box.textContent = text;
  box.className = kind || "";
}

function focusPair(i) {
  if (!pairs.length) return;
  current = Math.max(0, Math.min(pairs.length - 1, i));
  pairs.forEach((li, j) => li.classList.toggle("current", j === current));
  pairs[current].focus();
}

function showState(li, review) {
  const state = li.querySelector(".review-state");
  const edited = li.querySelector(".edited");
  li.dataset.base = review ? review.review_id : "";
  state.classList.toggle("stale", Boolean(review && review.stale));
  if (!review) {
    state.textContent = "not reviewed";
  } else if (review.stale) {
    state.textContent = "STALE: " + review.decision + " by " + review.reviewer + " on another text, not applied";
  } else {
    state.textContent = review.decision + (review.reason ? ": " + review.reason : "") + " · " + review.reviewer;
  }
  const isEdit = Boolean(review && !review.stale && review.decision === "edit");
  edited.hidden = !isEdit;
  edited.querySelector(".eq").textContent = isEdit ? review.question : "";
  edited.querySelector(".ea").textContent = isEdit ? review.answer : "";
}

function showProgress(data) {
  const p = data.progress, c = data.clip_progress;
  document.getElementById("progress").textContent = "reviewed " + p.reviewed + " of " + p.total;
  document.getElementById("clip-progress").textContent =
    "reviewed " + c.reviewed + " of " + c.total + " pairs of this clip";
}

async function decide(li, body) {
  body.content_hash = li.dataset.hash;
  body.base_id = li.dataset.base || null;
  let response, data;
  try {
    response = await fetch("/api/pairs/" + encodeURIComponent(li.dataset.pairId) + "/decisions", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    });
    data = await response.json();
  } catch (err) {
    say("not saved: " + err, "error");
    return false;
  }
  if (response.status === 201) {
    showState(li, data.review);
    showProgress(data);
    li.querySelector(".reject-form").hidden = true;
    li.querySelector(".edit-form").hidden = true;
    say("saved: " + data.review.decision, "ok");
    return true;
  }
  if (response.status === 409 && data.kind === "conflict") {
    if (data.latest) showState(li, data.latest);
    say("not saved: " + data.detail + " (shown now; decide again to override)", "error");
  } else {
    say("not saved (" + response.status + "): " + data.detail, "error");
  }
  return false;
}

function openReject(li) {
  const form = li.querySelector(".reject-form");
  form.hidden = false;
  form.querySelector(".reason").focus();
}

function openEdit(li) {
  const form = li.querySelector(".edit-form");
  const edited = li.querySelector(".edited");
  const useEdit = !edited.hidden;
  form.querySelector(".edit-q").value =
    (useEdit ? edited.querySelector(".eq") : li.querySelector(".q")).textContent;
  form.querySelector(".edit-a").value =
    (useEdit ? edited.querySelector(".ea") : li.querySelector(".a")).textContent;
  form.hidden = false;
  form.querySelector(".edit-a").focus();
}

function rejectNow(li) {
  const reason = li.querySelector(".reason").value.trim();
  if (!reason) { say("a reject needs a reason", "error"); return; }
  decide(li, {decision: "reject", reason: reason});
}

function editNow(li) {
  decide(li, {decision: "edit", question: li.querySelector(".edit-q").value,
              answer: li.querySelector(".edit-a").value});
}

pairs.forEach((li, i) => {
  li.addEventListener("focusin", () => { current = i; pairs.forEach((o, j) => o.classList.toggle("current", j === i)); });
  li.querySelector(".accept").addEventListener("click", () => decide(li, {decision: "accept"}));
  li.querySelector(".reject").addEventListener("click", () => openReject(li));
  li.querySelector(".edit").addEventListener("click", () => openEdit(li));
  li.querySelector(".reject-go").addEventListener("click", () => rejectNow(li));
  li.querySelector(".edit-go").addEventListener("click", () => editNow(li));
  li.querySelector(".reason").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); rejectNow(li); }
    if (ev.key === "Escape") { li.querySelector(".reject-form").hidden = true; li.focus(); }
  });
  li.querySelector(".edit-form").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); editNow(li); }
    if (ev.key === "Escape") { li.querySelector(".edit-form").hidden = true; li.focus(); }
  });
});

document.addEventListener("keydown", (ev) => {
  const tag = (ev.target.tagName || "").toLowerCase();
  if (tag === "input" || tag === "textarea" || tag === "select" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const li = pairs[current];
  if (ev.key === "j") focusPair(current + 1);
  else if (ev.key === "k") focusPair(current - 1);
  else if (!li) return;
  else if (ev.key === "a") decide(li, {decision: "accept"});
  else if (ev.key === "r") { ev.preventDefault(); openReject(li); }
  else if (ev.key === "e") { ev.preventDefault(); openEdit(li); }
  else return;
});

// The timeline: a playhead that follows the audio; a click seeks.
const player = document.getElementById("player");
const timeline = document.getElementById("timeline");
if (player && timeline) {
  const head = document.getElementById("playhead");
  const width = timeline.viewBox.baseVal.width;
  const duration = () => (isFinite(player.duration) && player.duration > 0)
    ? player.duration : parseFloat(timeline.dataset.duration);
  player.addEventListener("timeupdate", () => {
    const x = String(width * player.currentTime / duration());
    head.setAttribute("x1", x); head.setAttribute("x2", x);
  });
  timeline.addEventListener("click", (ev) => {
    const box = timeline.getBoundingClientRect();
    player.currentTime = duration() * (ev.clientX - box.left) / box.width;
  });
}
if (pairs.length) focusPair(0);
