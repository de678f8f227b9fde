//! What a person sees on `report.html`, measured in the browser: the grid's entries, whether the
//! page scrolls and shows every row whole, whether anything covers a video, how failures and
//! labels read.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::chromium::Browser;

impl Browser {
    /// Waits until every video in view has data and plays (its time moves); returns how many.
    pub fn wait_for_playing(&mut self) -> u64 {
        // On screen: inside the window and inside its grid's scrolled box.
        let in_view = "[...document.querySelectorAll('video.cell-video')].filter(v => { \
            const r = v.getBoundingClientRect(), g = v.closest('.grid').getBoundingClientRect(); \
            return r.bottom > Math.max(0, g.top) && r.top < Math.min(innerHeight, g.bottom) \
                && r.right > Math.max(0, g.left) && r.left < Math.min(innerWidth, g.right); })";
        self.wait_until(
            "the videos in view play",
            &format!("(() => {{ const vs = {in_view}; return vs.every(v => !v.paused && v.readyState >= 2 && v.currentTime > 0); }})()"),
        );
        // Playing, not stuck on a first frame: the time of each moves on.
        let count = self.eval(&format!(
            "(() => {{ const vs = {in_view}; window.started = new Map(vs.map(v => [v, v.currentTime])); return vs.length; }})()"
        ));
        self.wait_until(
            "the time of every video in view moves on",
            &format!("{in_view}.every(v => window.started.has(v) && v.currentTime !== window.started.get(v))"),
        );
        count.as_u64().unwrap()
    }

    /// Scrolls down the page a window at a time, each stretch's videos loading and playing, then
    /// back to the top: a picture of the whole page then shows every video.
    pub fn scroll_through(&mut self) {
        let height = self.eval("document.documentElement.scrollHeight").as_f64().unwrap();
        let step = self.eval("innerHeight").as_f64().unwrap() * 0.8;
        let mut y = 0.0;
        while y < height {
            self.eval(&format!("window.scrollTo(0, {y})"));
            self.wait_for_playing();
            y += step;
        }
        self.eval("window.scrollTo(0, 0)");
        self.wait_for_playing();
    }

    /// Each job's entry: where it is in the grid and what it shows.
    pub fn entries(&mut self) -> Vec<Value> {
        let value = self.eval(
            r#"[...document.querySelectorAll('.entry')].map(e => {
                const td = e.closest('td'), table = e.closest('table');
                const video = e.querySelector('video');
                return {
                    job: e.dataset.job, status: e.dataset.status, label: e.dataset.label,
                    section: e.closest('section').querySelector('h2').textContent,
                    row: td.parentElement.querySelector('th').title,
                    column: table.querySelectorAll('thead th')[td.cellIndex].textContent,
                    src: video ? video.dataset.src : null,
                    error: video ? null : (e.querySelector('.error') || {textContent: ''}).textContent,
                    next: (e.querySelector('.next') || {textContent: ''}).textContent,
                };
            })"#,
        );
        value.as_array().unwrap().clone()
    }

    /// The page scrolls, and no box inside it does; every row of every grid can be brought into
    /// the window whole (below its grid's sticky header), the page's last row too.
    pub fn assert_the_page_scrolls_and_every_row_is_seen_whole(&mut self) {
        let inner = self.eval(
            "[...document.querySelectorAll('body *')].filter(e => { const s = getComputedStyle(e); \
             const scrolls = v => v === 'auto' || v === 'scroll'; \
             return (scrolls(s.overflowY) && e.scrollHeight > e.clientHeight + 1) \
                 || (scrolls(s.overflowX) && e.scrollWidth > e.clientWidth + 1); \
             }).map(e => e.tagName + '.' + e.className)",
        );
        assert_eq!(inner, json!([]), "these scroll inside the page");
        let sizes = self.eval("[document.documentElement.scrollHeight, innerHeight]");
        assert!(
            sizes[0].as_f64() > sizes[1].as_f64(),
            "the page fits the window: {sizes}"
        );
        let cut = self.eval(
            r#"[...document.querySelectorAll('tbody tr:not([hidden])')].filter(tr => {
                tr.scrollIntoView({block: 'end'});
                const r = tr.getBoundingClientRect();
                const head = tr.closest('table').querySelector('thead').getBoundingClientRect();
                // Seen, not only placed: what is drawn at its top and bottom is the row's own.
                const x = tr.querySelector('th').getBoundingClientRect();
                const seen = [r.top + 4, r.bottom - 4].every(y => tr.contains(document.elementFromPoint(x.left + x.width / 2, y)));
                return !(seen && r.bottom <= innerHeight + 0.5 && r.top >= head.bottom - 0.5);
            }).map(tr => tr.querySelector('th').title)"#,
        );
        assert_eq!(cut, json!([]), "rows that cannot be seen whole");
        let last = self.eval(
            "(() => { window.scrollTo(0, document.documentElement.scrollHeight); \
             const rows = document.querySelectorAll('tbody tr'); const r = rows[rows.length - 1].getBoundingClientRect(); \
             return r.top >= 0 && r.bottom <= innerHeight + 0.5; })()",
        );
        assert_eq!(last, true, "the last row is cut off");
        self.eval("window.scrollTo(0, 0)");
    }

    /// Each video, brought into view, is what is under the pointer all over it: no badge, key or
    /// header drawn over it.
    pub fn assert_nothing_covers_a_video(&mut self) {
        let covered = self.eval(
            r#"(() => {
                const covered = [];
                for (const v of document.querySelectorAll('video.cell-video')) {
                    if (!v.offsetParent) continue;
                    v.scrollIntoView({block: 'center', inline: 'center'});
                    const r = v.getBoundingClientRect();
                    for (const fx of [0.08, 0.5, 0.92]) for (const fy of [0.1, 0.5, 0.9]) {
                        const hit = document.elementFromPoint(r.left + r.width * fx, r.top + r.height * fy);
                        if (hit !== v) covered.push(`${v.dataset.src} at ${fx},${fy}: ${hit ? hit.tagName + '.' + hit.className + ' ' + hit.textContent.slice(0, 40) : 'nothing'}`);
                    }
                }
                window.scrollTo(0, 0);
                return covered;
            })()"#,
        );
        assert_eq!(covered, json!([]), "something is drawn over these videos");
    }

    /// Each failure shows its whole reason (wrapped, nothing clipped or scrolled) and what to do
    /// in its cell, and is named at the top of the page with everything that identifies it, with
    /// a link to its cell.
    pub fn assert_failures_read_at_a_glance(&mut self, failed: &[&HashMap<String, String>]) {
        assert!(!failed.is_empty(), "no failure to look at");
        for row in failed {
            let job = &row["job_id"];
            let shown = self.eval(&format!(
                r#"(() => {{
                    const e = [...document.querySelectorAll('.entry')].find(e => e.dataset.job === {job:?});
                    e.scrollIntoView({{block: 'center'}});
                    const box = e.querySelector('.problem'), error = box.querySelector('.error'), next = box.querySelector('.next');
                    const b = box.getBoundingClientRect(), r = error.getBoundingClientRect(), n = next.getBoundingClientRect();
                    const item = document.querySelector('#attention li[data-job="' + e.dataset.job + '"]');
                    return {{
                        error: error.textContent,
                        next: next.textContent,
                        clipped: [box, error, next].some(x => x.scrollHeight > x.clientHeight + 1 || x.scrollWidth > x.clientWidth + 1),
                        inside: r.top >= b.top && r.bottom <= b.bottom + 0.5 && n.bottom <= b.bottom + 0.5,
                        listed: item ? item.textContent.replace(/\s+/g, ' ') : null,
                        linked: item ? document.querySelector(item.querySelector('a').getAttribute('href')) === e : false,
                    }};
                }})()"#
            ));
            assert_eq!(shown["error"], row["error"].as_str(), "the whole reason: {shown}");
            assert_eq!(shown["clipped"], false, "{shown}");
            assert_eq!(shown["inside"], true, "the reason spills out of its box: {shown}");
            assert!(shown["next"].as_str().unwrap().contains("rerun"), "{shown}");
            let listed = shown["listed"]
                .as_str()
                .unwrap_or_else(|| panic!("not listed at the top: {shown}"));
            for part in [job, &row["model"], &row["input"], &row["error"]] {
                assert!(listed.contains(part.as_str()), "`{part}` not in {listed:?}");
            }
            assert_eq!(shown["linked"], true, "{shown}");
        }
    }

    /// Each label is written once, in the legend; a grid row whose jobs share it says it once,
    /// beside its input; elsewhere a cell shows the legend's key for it, never the label itself.
    pub fn assert_labels_are_said_once(&mut self) {
        let seen = self.eval(
            r#"(() => {
                const legend = [...document.querySelectorAll('.legend-item')];
                const keys = Object.fromEntries(legend.map(b => [b.dataset.label, b.querySelector('.key').textContent]));
                const wrong = [];
                for (const e of document.querySelectorAll('.entry')) {
                    const label = e.dataset.label;
                    if (!label) continue;
                    if (e.textContent.includes(label)) wrong.push(`${e.dataset.job}: the label is written in its cell`);
                    const said = e.closest('tr').querySelector('th .row-label');
                    const mark = e.querySelector('.key');
                    if (said) {
                        if (!said.textContent.includes(label) || mark) wrong.push(`${e.dataset.job}: its row says ${said.textContent}`);
                    } else if (!mark || mark.textContent !== keys[label] || mark.title !== label) {
                        wrong.push(`${e.dataset.job}: no key of ${label}`);
                    }
                }
                return {legend: [...document.querySelectorAll('.legend-text')].map(t => t.textContent), wrong};
            })()"#,
        );
        assert_eq!(seen["legend"], json!(["hero", "winner?"]), "{seen}");
        assert_eq!(seen["wrong"], json!([]), "{seen}");
    }
}
