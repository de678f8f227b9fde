//! Render times from what polls saw: each finish is known only to lie between the last poll
//! that found the generation running and the first that found it finished. The spans differ in
//! width (a scout's probes are close, a generation found finished at its first poll says only
//! "at most this long"), and a late poll widens them to the right. Taking a point from each span
//! on its own (its middle, or a draw) smears the wide ones where nothing finishes and, since
//! only long renders are still running at a late first poll, learns renders longer than they
//! are, then plans later polls, which learn longer renders still.
//!
//! [`quantiles`] estimates the distribution from all the spans together: each span's mass goes
//! where the spans agree, in proportion to what the estimate already puts there, iterated
//! (Turnbull's self-consistency algorithm for interval-censored data), with a light smoothing
//! after each step (EMS). Without it the estimate collapses onto the narrow gaps between one
//! generation's last "running" and another's first "finished" (the maximum-likelihood answer is
//! a handful of spikes), and a plan made from spikes leaves long stretches unpolled where renders
//! do end. The grid is logarithmic: every span is seen at the same relative precision, seconds
//! or minutes.

/// Cells of the grid between the shortest and the longest end of any span: each about 4 %
/// wider than the one before when they are 6 × apart.
const CELLS: usize = 48;
/// The estimate's iterations at most: each is linear in the spans and the cells; the mass
/// settles within a few dozen.
const ITERATIONS: usize = 200;
/// Iterating stops once no cell's mass moves by more than this.
const SETTLED: f64 = 1e-7;

/// `spans`: each finish's `(lo, hi)` in seconds: it lies in `(lo, hi]`, or is exactly `hi` when
/// `lo >= hi`. Returns as many durations, ascending, placed at the quantiles `(i + ½) / n` of
/// the estimated distribution: the equally likely durations the poll plan is made from. Exact
/// durations alone come back as they are.
pub fn quantiles(spans: &[(f64, f64)]) -> Vec<f64> {
    let n = spans.len();
    if n == 0 {
        return Vec::new();
    }
    if spans.iter().all(|&(lo, hi)| lo >= hi) {
        let mut exact: Vec<f64> = spans.iter().map(|&(_, hi)| hi).collect();
        exact.sort_by(f64::total_cmp);
        return exact;
    }
    // The grid, from a little under the shortest positive end to the longest.
    let top = spans.iter().map(|&(_, hi)| hi).fold(0.0, f64::max);
    let lowest = spans
        .iter()
        .flat_map(|&(lo, hi)| [lo, hi])
        .filter(|&x| x > 0.0)
        .fold(top, f64::min);
    let bottom = (lowest * 0.9).max(1e-6);
    if top <= bottom {
        return vec![top; n];
    }
    let step = (top / bottom).ln() / CELLS as f64;
    let edge = |k: usize| bottom * (step * k as f64).exp();
    // The cell holding x: (edge(k), edge(k + 1)].
    let cell = |x: f64| {
        if x <= bottom {
            0
        } else {
            (((x / bottom).ln() / step).ceil() as usize).clamp(1, CELLS) - 1
        }
    };
    // Each span covers the cells from the one above its start to the one holding its end; an
    // exact one, the cell holding it.
    let covers: Vec<(usize, usize)> = spans
        .iter()
        .map(|&(lo, hi)| {
            let b = cell(hi);
            if lo < hi && lo > bottom {
                ((cell(lo) + 1).min(b), b)
            } else if lo < hi {
                (0, b)
            } else {
                (b, b)
            }
        })
        .collect();
    let mut mass = vec![1.0 / CELLS as f64; CELLS];
    let mut prefix = vec![0.0; CELLS + 1];
    let mut weight = vec![0.0; CELLS + 1];
    let mut next = vec![0.0; CELLS];
    for _ in 0..ITERATIONS {
        for k in 0..CELLS {
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
        let mut running = 0.0;
        for k in 0..CELLS {
            running += weight[k];
            next[k] = mass[k] * running / n as f64;
        }
        // The smoothing step: a quarter of each cell's mass to each neighbour (kept at the ends).
        let mut moved = 0.0f64;
        for k in 0..CELLS {
            let left = next[k.saturating_sub(1)];
            let right = next[(k + 1).min(CELLS - 1)];
            let smoothed = (left + 2.0 * next[k] + right) / 4.0;
            moved = moved.max((smoothed - mass[k]).abs());
            mass[k] = smoothed;
        }
        let total: f64 = mass.iter().sum();
        mass.iter_mut().for_each(|m| *m /= total);
        if moved < SETTLED {
            break;
        }
    }
    // The quantiles, walking the cells once; within a cell, evenly on the log scale.
    let mut out = Vec::with_capacity(n);
    let (mut k, mut below) = (0, 0.0);
    for i in 0..n {
        let q = (i as f64 + 0.5) / n as f64;
        while k + 1 < CELLS && below + mass[k] < q {
            below += mass[k];
            k += 1;
        }
        let share = if mass[k] > 0.0 {
            ((q - below) / mass[k]).clamp(0.0, 1.0)
        } else {
            1.0
        };
        out.push(edge(k) * (step * share).exp());
    }
    out
}
