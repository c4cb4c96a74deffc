"""The page's style sheet and its one script, sent once per full run (not on a form answer)."""

CSS = """<style>
mark.key { background: #ffe58f; font-weight: 600; padding: 0 1px; }
mark.cite { background: #fff4c2; padding: 0 1px; }
mark.num { background: #d0ebff; padding: 0 1px; }
.muted { color: #59636e; font-size: .92em; }
@media (max-width: 640px) { h1 { font-size: 1.7rem !important; }
  [data-testid="stMainBlockContainer"] { padding-top: 2.5rem; padding-left: .8rem; padding-right: .8rem; } }
/* the answer at the top */
.sum { border: 2px solid #1a7f37; border-radius: .6rem; padding: .6em .9em; margin: 0 0 .6em; }
.sum-head { font-weight: 600; } .sum .big { font-size: 1.9em; font-weight: 700; color: #1a7f37; line-height: 1.2; }
.sum-definite.none { font-weight: 600; margin: .2em 0; }
.sum-confirm { color: #9a6700; } .sum > div { margin: .15em 0; }
ul.top { margin: .3em 0 0; padding-left: 1.1em; } ul.top .amt { font-weight: 600; }
a.see-all { display: inline-block; margin-top: .3em; }
/* one benefit: a card (no table: it reads on a phone) */
h4.sec { margin: 1.1em 0 .3em; font-size: 1.05rem; }
details.ben { border: 1px solid rgba(127,127,127,.3); border-left: 4px solid #1a7f37; border-radius: .5rem;
  padding: .45em .8em; margin: .45em 0; }
details.ben > summary { cursor: pointer; list-style: none; display: flex; flex-wrap: wrap; gap: .1em .8em;
  align-items: baseline; }
details.ben > summary::-webkit-details-marker { display: none; }
details.ben .t { flex: 1 1 16em; font-weight: 600; } details.ben .amt { font-weight: 700; color: #1a7f37; }
details.ben .sub { flex: 1 1 100%; color: #59636e; font-size: .9em; }
details.ben[open] > summary { margin-bottom: .4em; }
details.ben .body p { margin: .3em 0; }
details.ben blockquote { margin: .4em 0; padding: .3em .8em; border-left: 4px solid #d1d9e0;
  background: rgba(127,127,127,.08); font-size: .92em; }
.alt { font-size: .92em; }
.mq { border: 1px dashed rgba(127,127,127,.45); border-radius: .5rem; padding: .4em .8em; margin: .4em 0; }
.answered ul { margin: .1em 0 .2em; padding-left: 1.1em; columns: 2 14em; } .answered li { break-inside: avoid; }
.mq-head { font-weight: 600; } .mq ul, ul.svc, ul.inel { margin: .2em 0; padding-left: 1.2em; }
details.more > summary { cursor: pointer; color: #0969da; font-size: .92em; }
/* the phone: the answer above the form, hidden where the results column sits beside it */
@media (min-width: 641px) { .st-key-phone_summary { display: none; } }
</style>"""


# Streamlit's date fields count a typed date only when the focus leaves the field (a "blur"). People
# type the day last and expect it to count: when the day is typed (or Enter pressed) in any date field,
# the focus moves to an invisible element, and the date counts at once. Installed once per page.
DATE_COMMIT_JS = """<script>
(() => {
  if (window.__eligibilityDates) return;
  window.__eligibilityDates = true;
  const sink = document.createElement("span");
  sink.tabIndex = -1;
  sink.setAttribute("aria-hidden", "true");
  sink.style.cssText = "position:fixed;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)";
  document.body.appendChild(sink);
  let typed = 0;  // digits typed into the day segment since it got the focus
  document.addEventListener("focusin", (ev) => { typed = 0; }, true);
  document.addEventListener("keydown", (ev) => {
    const field = ev.target.closest && ev.target.closest("[data-testid=stDateInputField]");
    if (!field) return;
    const isDay = ev.target.getAttribute("data-type") === "day";
    let done = ev.key === "Enter";
    if (isDay && /^[0-9]$/.test(ev.key)) {
      typed += 1;
      done = typed >= 2 || (typed === 1 && /^[4-9]$/.test(ev.key));
    }
    if (done) setTimeout(() => { if (field.querySelector("input[type=date]")?.value) sink.focus(); }, 50);
  }, true);
})();
</script>"""

