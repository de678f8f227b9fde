//! Render times from what polls saw: each finish is known only to lie between the last poll
//! that found the generation running and the first that found it finished. The spans differ in
//! width (a scout's probes are close, a generation found finished at its first poll says only
//! "at most this long"), and a late poll widens them to the right. Taking a point from each span
//! on its own (its middle, or a draw) smears the wide ones where nothing finishes and, since
//! only long renders are still running at a late first poll, learns renders longer than they
//! are, then plans later polls, which learn longer renders still.
//!
//! [`quantiles`] is the nonparametric maximum-likelihood estimate for interval-censored data
//! (Turnbull's self-consistency algorithm): each span's mass goes where the spans agree, in
//! proportion to what the estimate already puts there, iterated. A wide span then counts where
//! the narrow ones say finishes happen, within its bounds.

/// The estimate's iterations at most: each is linear in the spans; the mass settles within a
/// few dozen on the spans a run sees, and the plan made from it needs no more precision.
const ITERATIONS: usize = 100;
/// Iterating stops once no cell's mass moves by more than this.
const SETTLED: f64 = 1e-6;

/// `spans`: each finish's `(lo, hi)` in seconds: it lies in `(lo, hi]`, or is exactly `hi` when
/// `lo >= hi`. Returns as many durations, ascending, placed at the quantiles `(i + ½) / n` of
/// the estimated distribution (spread evenly within a stretch between two endpoints): the
/// equally likely durations the poll plan is made from. Exact durations alone come back as
/// they are.
pub fn quantiles(spans: &[(f64, f64)]) -> Vec<f64> {
    let n = spans.len();
    if n == 0 {
        return Vec::new();
    }
    let mut ends: Vec<f64> = spans.iter().flat_map(|&(lo, hi)| [lo.min(hi), hi]).collect();
    ends.sort_by(f64::total_cmp);
    ends.dedup();
    let at = |x: f64| ends.partition_point(|e| *e < x);
    // Cells in time order: the point `ends[k]` is cell 2k, the open stretch after it 2k + 1.
    // A span (lo, hi] covers the stretches from lo up to hi and the point hi; an exact one, its
    // point only.
    let cells = 2 * ends.len() - 1;
    let covers: Vec<(usize, usize)> = spans
        .iter()
        .map(|&(lo, hi)| {
            let b = 2 * at(hi);
            if lo < hi { (2 * at(lo) + 1, b) } else { (b, b) }
        })
        .collect();
    // Start from mass in proportion to each stretch's width, and at each point the exact
    // durations seen there: a point no exact duration names keeps none (a span's mass spreads
    // over its stretches, not onto its end).
    let mut mass = vec![0.0; cells];
    for k in 0..ends.len() - 1 {
        mass[2 * k + 1] = ends[k + 1] - ends[k];
    }
    normalise(&mut mass);
    for &(a, b) in &covers {
        if a == b {
            mass[a] += 1.0 / n as f64;
        }
    }
    normalise(&mut mass);
    let mut prefix = vec![0.0; cells + 1];
    let mut weight = vec![0.0; cells + 1];
    for _ in 0..ITERATIONS {
        for k in 0..cells {
            prefix[k + 1] = prefix[k] + mass[k];
        }
        weight.iter_mut().for_each(|w| *w = 0.0);
        for &(a, b) in &covers {
            let within = prefix[b + 1] - prefix[a];
            if within > 0.0 {
                weight[a] += 1.0 / within;
                weight[b + 1] -= 1.0 / within;
            }
        }
        let (mut running, mut moved) = (0.0, 0.0f64);
        for k in 0..cells {
            running += weight[k];
            let next = mass[k] * running / n as f64;
            moved = moved.max((next - mass[k]).abs());
            mass[k] = next;
        }
        normalise(&mut mass);
        if moved < SETTLED {
            break;
        }
    }
    // The quantiles, walking the cells once.
    let mut out = Vec::with_capacity(n);
    let (mut cell, mut below) = (0, 0.0);
    for i in 0..n {
        let q = (i as f64 + 0.5) / n as f64;
        while cell + 1 < cells && below + mass[cell] < q {
            below += mass[cell];
            cell += 1;
        }
        let x = if cell % 2 == 0 {
            ends[cell / 2]
        } else {
            let (from, to) = (ends[cell / 2], ends[cell / 2 + 1]);
            let share = if mass[cell] > 0.0 {
                ((q - below) / mass[cell]).clamp(0.0, 1.0)
            } else {
                1.0
            };
            from + (to - from) * share
        };
        out.push(x);
    }
    out
}

fn normalise(mass: &mut [f64]) {
    let total: f64 = mass.iter().sum();
    if total > 0.0 {
        mass.iter_mut().for_each(|m| *m /= total);
    }
}
