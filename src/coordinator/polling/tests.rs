//! The poll policy walked without a clock or a server: plans, budgets, scouts, learning.

use super::*;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Durations learned in a scrambled order, as finishes come in.
fn learned(durations: &[f64]) -> RenderTimes {
    let mut t = RenderTimes::default();
    let n = durations.len();
    for k in 0..n {
        t.record("m", secs(durations[k * 17 % n]));
    }
    t
}

/// Walks one generation of each duration through the policy: (polls per generation, mean
/// detection latency in seconds).
fn walk(p: &PollPolicy, t: &RenderTimes, durations: &[f64]) -> (f64, f64) {
    let (mut polls, mut latency) = (0usize, 0f64);
    for &d in durations {
        let mut age = Duration::ZERO;
        loop {
            age += p.next_poll(t, "m", age, 0.5);
            polls += 1;
            if age >= secs(d) {
                latency += (age - secs(d)).as_secs_f64();
                break;
            }
        }
    }
    let n = durations.len() as f64;
    (polls as f64 / n, latency / n)
}

/// Expected latency plus `price` per poll of a schedule, over durations `s`.
fn cost(schedule: &[f64], s: &[f64], price: f64) -> f64 {
    s.iter()
        .map(|&d| match schedule.iter().position(|&at| at >= d) {
            Some(k) => schedule[k] - d + price * (k + 1) as f64,
            None => f64::INFINITY,
        })
        .sum::<f64>()
        / s.len() as f64
}

#[test]
fn before_anything_is_learned_scouts_probe_at_doubling_ages() {
    let p = PollPolicy::service();
    let t = RenderTimes::default();
    // A scout (phase 0): 120 s / 64 = 1.875 s, then the age doubles: 3.75, 7.5, 15, 30, 60,
    // 120, 240.
    let mut age = Duration::ZERO;
    let mut ages = Vec::new();
    for _ in 0..8 {
        age += p.next_poll(&t, "m", age, 0.0);
        ages.push(age.as_secs_f64());
    }
    assert_eq!(ages, [1.875, 3.75, 7.5, 15.0, 30.0, 60.0, 120.0, 240.0]);
    // However old, the next probe is at twice the last: a render 30 times the prior (an hour)
    // is seen within twice its time, after a dozen polls in all.
    assert_eq!(p.next_poll(&t, "m", secs(500.0), 0.0), secs(460.0));
    let hour = 3600.0;
    let mut age = Duration::ZERO;
    let mut polls = 0;
    while age < secs(hour) {
        age += p.next_poll(&t, "m", age, 0.0);
        polls += 1;
    }
    assert!(
        age <= secs(2.0 * hour) && polls <= 12,
        "seen at {age:?} after {polls} polls"
    );
    // Renders 50 times shorter than the prior are still seen within a factor of two.
    let p = PollPolicy::scaled(secs(120.0));
    assert_eq!(p.next_poll(&t, "m", Duration::ZERO, 0.0), secs(1.875));
    assert_eq!(p.next_poll(&t, "m", secs(3.75), 0.0), secs(3.75));
    // Another scout probes half an octave later: between them, the first finishes are seen
    // within a factor of √2.
    let half = p.next_poll(&t, "m", Duration::ZERO, SCOUTS / 2.0).as_secs_f64();
    assert!((half - 1.875 * 2f64.sqrt()).abs() < 1e-6, "{half}");
    assert_eq!(p.next_poll(&t, "m", secs(half), SCOUTS / 2.0), secs(half));
    // A poll that went out late (behind the rate limiter) keeps its probe ages: this scout's
    // are 0.0375 × 2^¼ × 2^k s, so from 1.0 s the next is at 1.43 s, not at twice the age.
    let p = PollPolicy::scaled(secs(2.4));
    let start = 0.0375 * 2f64.powf(0.25);
    let next = secs(1.0) + p.next_poll(&t, "m", secs(1.0), SCOUTS / 4.0);
    assert!((next.as_secs_f64() - start * 32.0).abs() < 1e-6, "{next:?}");
    let after = next + p.next_poll(&t, "m", next, SCOUTS / 4.0);
    assert!((after.as_secs_f64() - start * 64.0).abs() < 1e-6, "{after:?}");
}

#[test]
fn a_model_whose_docs_give_its_render_time_is_first_polled_from_it() {
    let service = PollPolicy::service();
    // Documented at 5-6 minutes: not polled every few seconds in its first wave.
    assert_eq!(
        service.prior_for(&RenderTimes::default(), "klingai/v2.1-master-image-to-video"),
        Duration::from_secs(330)
    );
    let first = service.next_poll(
        &RenderTimes::default(),
        "klingai/v2.1-master-image-to-video",
        Duration::ZERO,
        0.5,
    );
    assert!(first >= Duration::from_secs(300), "{first:?}");
    // No documented time, or a simulator: the policy's own prior.
    assert_eq!(
        service.prior_for(&RenderTimes::default(), "acme/video-9000"),
        Duration::from_secs(120)
    );
    let sim = PollPolicy::scaled(Duration::from_millis(1200));
    assert_eq!(
        sim.prior_for(&RenderTimes::default(), "klingai/v2.1-master-image-to-video"),
        Duration::from_millis(1200)
    );
}

#[test]
fn the_others_wait_for_the_scouts_and_then_probe_from_the_prior() {
    let p = PollPolicy::scaled(secs(2.4));
    let t = RenderTimes::default();
    // Phases past the scouts' eighth spread over the octave from the prior.
    assert_eq!(p.next_poll(&t, "m", Duration::ZERO, SCOUTS), secs(2.4));
    let mid = p.next_poll(&t, "m", Duration::ZERO, SCOUTS + (1.0 - SCOUTS) / 2.0);
    assert!((mid.as_secs_f64() - 2.4 * 2f64.sqrt()).abs() < 1e-6, "{mid:?}");
    // Jobs in a row: one in eight scouts, 64 at most per kind.
    // The first four of every kind scout, spread over the scouts' octave.
    let first: Vec<f64> = (0..4).map(phase).collect();
    assert_eq!(first, [0.0, SCOUTS / 2.0, SCOUTS / 4.0, SCOUTS * 3.0 / 4.0]);
    let scouts = (0..400).filter(|&i| phase(i) < SCOUTS).count();
    assert_eq!(scouts, 50 + 3);
    let scouts = (0..10_000).filter(|&i| phase(i) < SCOUTS).count();
    assert_eq!(scouts, MOST_SCOUTS + 3);
    // The later ones still spread over the others' octave.
    let later: Vec<f64> = (512..576).map(phase).collect();
    assert!(later.iter().all(|x| (SCOUTS..1.0).contains(x)), "{later:?}");
    let mean = later.iter().sum::<f64>() / later.len() as f64;
    assert!((mean - (SCOUTS + 1.0) / 2.0).abs() < 0.02, "{mean}");
    // Once a duration is known, everyone follows the plan.
    let t = learned(&[3.0]);
    assert_eq!(p.next_poll(&t, "m", Duration::ZERO, 0.9), secs(3.0));
}

#[test]
fn phases_spread_consecutive_jobs_over_the_octave() {
    let phases: Vec<f64> = (4..8).map(phase).collect();
    assert_eq!(phases, [0.125, 0.625, 0.375, 0.875]);
    assert!((0..10_000).map(phase).all(|x| (0.0..1.0).contains(&x)));
}

#[test]
fn the_plan_beats_every_evenly_spaced_schedule() {
    // Durations bunched at both ends, where even spacing is a poor fit.
    let s: Vec<f64> = (0..60)
        .map(|i| {
            if i % 3 == 0 {
                2.0 + i as f64 / 100.0
            } else {
                5.0 + i as f64 / 50.0
            }
        })
        .collect();
    let mut sorted = s.clone();
    sorted.sort_by(f64::total_cmp);
    let price = 0.1;
    let planned: Vec<f64> = plan(&sorted.iter().map(|&x| secs(x)).collect::<Vec<_>>(), secs(price))
        .iter()
        .map(Duration::as_secs_f64)
        .collect();
    let ours = cost(&planned, &s, price);
    let (lo, hi) = (sorted[0], sorted[sorted.len() - 1]);
    for k in 1..=40 {
        for start in [0.0, lo, lo / 2.0] {
            let even: Vec<f64> = (1..=k).map(|i| start + (hi - start) * i as f64 / k as f64).collect();
            assert!(ours <= cost(&even, &s, price) + 1e-9, "{k} polls from {start}");
        }
    }
    // It never polls before the earliest finish, and its last poll sees the latest one.
    assert!(planned[0] >= lo, "{planned:?}");
    assert_eq!(planned.last(), Some(&hi));
}

#[test]
fn spread_out_renders_are_seen_within_a_few_percent_for_a_few_polls() {
    let p = PollPolicy::scaled(secs(3.0));
    // Renders of 2.0 to 4.0 s, ±33 % around their mean: nothing before 2 s.
    let durations: Vec<f64> = (0..=40).map(|i| 2.0 + i as f64 * 0.05).collect();
    let t = learned(&durations);
    // New renders fall between the ones learned from.
    let fresh: Vec<f64> = (0..40).map(|i| 2.025 + i as f64 * 0.05).collect();
    let first = p.next_poll(&t, "m", Duration::ZERO, 0.5);
    assert!(first >= secs(2.0) && first <= secs(2.5), "{first:?}");
    let (polls, latency) = walk(&p, &t, &fresh);
    eprintln!("{polls:.2} polls per generation, mean detection latency {latency:.3} s");
    assert!(polls < 5.0, "{polls} polls per generation");
    assert!(latency < 0.04 * 3.0, "mean detection latency {latency} s");
    // Past everything seen, it is late: a twentieth of the typical render.
    assert_eq!(p.next_poll(&t, "m", secs(9.0), 0.5), secs(0.15));
}

#[test]
fn tightly_spread_renders_take_about_two_polls() {
    let p = PollPolicy::scaled(secs(40.0));
    // 38 to 42 s: ±5 %.
    let durations: Vec<f64> = (0..=40).map(|i| 38.0 + i as f64 * 0.1).collect();
    let t = learned(&durations);
    let fresh: Vec<f64> = (0..40).map(|i| 38.05 + i as f64 * 0.1).collect();
    let (polls, latency) = walk(&p, &t, &fresh);
    eprintln!("{polls:.2} polls per generation, mean detection latency {latency:.3} s");
    assert!(polls < 2.5, "{polls} polls per generation");
    assert!(latency < 0.02 * 40.0, "mean detection latency {latency} s");
}

#[test]
fn a_plan_from_a_few_durations_leaves_no_long_gap() {
    let p = PollPolicy::scaled(secs(3.0));
    let t = learned(&[2.0, 4.0]);
    // Nothing before the earliest finish seen; after it, no wait past a twentieth of the
    // median.
    assert_eq!(p.next_poll(&t, "m", Duration::ZERO, 0.5), secs(2.0));
    assert_eq!(p.next_poll(&t, "m", secs(2.0), 0.5), secs(0.2));
    assert_eq!(p.next_poll(&t, "m", secs(3.9), 0.5), secs(0.1));
}

#[test]
fn the_first_durations_ask_for_pending_polls_to_be_timed_again() {
    let mut t = RenderTimes::default();
    let asks: Vec<usize> = (1..=200).filter(|_| t.record("m", secs(3.0))).collect();
    assert_eq!(asks, [1, 2, 4, 8, 16, 32, 64]);
}

#[test]
fn durations_loaded_from_earlier_runs_are_planned_once_from_all_of_them() {
    let durations: Vec<f64> = (0..=40).map(|i| 2.0 + i as f64 * 0.05).collect();
    let mut loaded = RenderTimes::default();
    loaded.load(durations.iter().map(|&d| ("m".to_string(), secs(d))));
    assert_eq!(loaded.count("m"), durations.len());
    // Planned at once from every duration: the same plan as the last sample would make.
    let all: Vec<Duration> = durations.iter().map(|&d| secs(d)).collect();
    assert_eq!(loaded.kinds["m"].plan, plan(&all, secs(3.0).mul_f64(POLL_PRICE)));
}

#[test]
fn old_durations_are_forgotten_first() {
    let mut t = RenderTimes::default();
    for _ in 0..Samples::KEEP {
        t.record("m", secs(100.0));
    }
    for _ in 0..Samples::KEEP {
        t.record("m", secs(10.0));
    }
    assert_eq!(t.count("m"), Samples::KEEP);
    assert_eq!(t.median("m"), Some(secs(10.0)));
    // The plan follows (it is remade every sixteenth sample).
    let p = PollPolicy::scaled(secs(10.0));
    assert_eq!(p.next_poll(&t, "m", Duration::ZERO, 0.5), secs(10.0));
}

#[test]
fn a_finish_seen_between_two_polls_is_learned_within_its_span_past_the_shortest_known() {
    let mut t = RenderTimes::default();
    // Nothing known yet: within a narrow span; a wide one (found finished at its first poll,
    // 1 s after its submit) teaches nothing; one between two doubling probes, the second of them
    // late, is narrow enough.
    assert_eq!(t.clone().record_between("m", Duration::ZERO, secs(1.0), 0.3), None);
    assert!(t.clone().record_between("m", secs(2.0), secs(4.5), 0.3).is_some());
    assert_eq!(
        t.record_between("m", secs(2.0), secs(4.0), 0.5),
        Some((secs(3.0), true))
    );
    // Found finished at its first poll, at 5 s: not 2.5 s (the middle from its submit), but
    // between the shortest known (3 s) and 5 s, spread by the pick.
    let picks: Vec<Duration> = [0.0, 0.5, 0.99]
        .iter()
        .map(|&p| t.clone().record_between("m", Duration::ZERO, secs(5.0), p).unwrap().0)
        .collect();
    let near = |a: Duration, b: f64| (a.as_secs_f64() - b).abs() < 0.05;
    assert!(
        near(picks[0], 3.0) && near(picks[1], 4.0) && near(picks[2], 4.98),
        "{picks:?}"
    );
    // Seen running past the shortest: from there.
    assert_eq!(
        t.clone().record_between("m", secs(4.0), secs(5.0), 0.5).unwrap().0,
        secs(4.5)
    );
    // Shorter than anything known, and narrow: new, learned.
    assert_eq!(
        t.clone().record_between("m", secs(1.0), secs(1.5), 0.5).unwrap().0,
        secs(1.25)
    );
    // Shorter than anything known and wide: learned as it is, "at most 2 s", since something is
    // known to place it against.
    assert_eq!(
        t.record_between("m", Duration::ZERO, secs(2.0), 0.5),
        Some((secs(1.0), true))
    );
    assert_eq!(t.count("m"), 2);
    assert!(t.median("m").unwrap() <= secs(3.0));
}

/// Spans of renders drawn evenly from 2.5–4.5 s, as a run polling them sees them: a few
/// scouts probing every 0.2 s, and the others polled at 3.3 s and then late, at 6.5 s (behind
/// the first wave's queue). `(lo, hi)` in seconds.
fn first_wave_spans() -> Vec<(f64, f64)> {
    (0..50)
        .map(|i| {
            let d = 2.5 + 2.0 * (i as f64 + 0.5) / 50.0;
            if i % 8 == 0 {
                let hi = (d / 0.2).ceil() * 0.2;
                (hi - 0.2, hi)
            } else if d <= 3.3 {
                (0.0, 3.3)
            } else {
                (3.3, 6.5)
            }
        })
        .collect()
}

#[test]
fn wide_spans_count_where_the_narrow_ones_say_renders_end() {
    let spans = first_wave_spans();
    let estimated = censored::quantiles(&spans);
    assert_eq!(estimated.len(), spans.len());
    assert!(estimated.is_sorted());
    // Renders end by 4.5 s: the spans reaching to 6.5 s say only "after 3.3 s", and the scouts
    // say where after it. A point drawn from each span on its own puts half of those past 4.9 s.
    let past = estimated.iter().filter(|&&d| d > 4.6).count();
    assert!(past <= 3, "{past} of 50 estimated past 4.6 s: {estimated:?}");
    let median = estimated[25];
    assert!((3.2..=3.8).contains(&median), "median {median}: {estimated:?}");
    // The same spans through `RenderTimes`, in a scrambled order: the plan's last poll is
    // where renders end, not at 6.5 s.
    let mut t = RenderTimes::default();
    for k in 0..spans.len() {
        let (lo, hi) = spans[k * 17 % spans.len()];
        t.record_between("m", secs(lo), secs(hi), 0.5);
    }
    let plan = &t.kinds["m"].plan;
    assert!(*plan.last().unwrap() <= secs(4.9), "{plan:?}");
}

#[test]
fn exact_durations_are_estimated_as_they_are() {
    let exact = [3.0, 1.0, 2.0, 2.0, 5.0];
    let spans: Vec<(f64, f64)> = exact.iter().map(|&d| (d, d)).collect();
    assert_eq!(censored::quantiles(&spans), [1.0, 2.0, 2.0, 3.0, 5.0]);
    // One span alone: within it.
    let [alone] = censored::quantiles(&[(2.0, 4.0)])[..] else {
        panic!("one span, one duration")
    };
    assert!((2.5..=3.5).contains(&alone), "{alone}");
    assert!(censored::quantiles(&[]).is_empty());
}

#[test]
fn scouts_keep_looking_below_the_plans_first_poll() {
    let p = PollPolicy::scaled(secs(3.0));
    // Learned from coarse probes: nothing under 4 s is known, though renders may be shorter.
    let t = learned(&[4.0, 4.5, 5.0]);
    assert_eq!(
        p.next_poll(&t, "m", Duration::ZERO, 0.5),
        secs(4.0),
        "the others follow the plan"
    );
    let mut age = Duration::ZERO;
    let mut ages = Vec::new();
    while age < secs(4.0) {
        age += p.next_poll(&t, "m", age, 0.0);
        ages.push(age.as_secs_f64());
    }
    // From a quarter of the first poll, √2 apart, then the plan.
    let expected = [1.0, 2f64.sqrt(), 2.0, 2.0 * 2f64.sqrt(), 4.0];
    assert_eq!(ages.len(), expected.len(), "{ages:?}");
    for (a, e) in ages.iter().zip(expected) {
        assert!((a - e).abs() < 1e-6, "{ages:?}");
    }
}

#[test]
fn a_kind_not_seen_yet_takes_its_prior_from_what_the_others_took() {
    let p = PollPolicy::scaled(secs(120.0));
    let mut t = RenderTimes::default();
    assert_eq!(p.prior_for(&t, "new"), secs(120.0));
    for d in [2.0, 3.0, 4.0] {
        t.record("magic", secs(d));
    }
    t.record("other", secs(10.0));
    t.record("third", secs(1.0));
    // The median of the medians of 3, 10 and 1 s.
    assert_eq!(p.prior_for(&t, "new"), secs(3.0));
    // A PixVerse kind with three jobs and renders of 1-3 s: its scout probes from 3 s / 64,
    // the others from 3 s, not from two minutes.
    let first = p.next_poll(&t, "pixverse/v5/image-to-video|540p|5", Duration::ZERO, 0.9);
    assert!(first <= secs(6.0), "{first:?}");
}

#[test]
fn a_request_budget_makes_fewer_polls_placed_where_they_find_most() {
    // Renders of 2.5 to 4.5 s (a queue, then 2-4 s), as in the mixed regime of issue 18.
    let durations: Vec<f64> = (0..=80).map(|i| 2.5 + i as f64 * 0.025).collect();
    let sorted: Vec<Duration> = durations.iter().map(|&d| secs(d)).collect();
    let price = secs(3.5).mul_f64(POLL_PRICE);
    let free = plan_within(&sorted, price, None);
    let free_polls = polls_per_generation(&free, &sorted);
    assert!(free_polls > 3.0, "{free_polls}");
    for budget in [1.0, 1.5, 1.8, 2.5] {
        let held = plan_within(&sorted, price, Some(budget));
        let polls = polls_per_generation(&held, &sorted);
        assert!(polls <= budget + 1e-9, "{polls} polls for a budget of {budget}");
        // The plan made for the budget is the best of all plans within it: no evenly spaced
        // schedule of the same polls finds the renders sooner.
        let late = |ages: &[Duration]| -> f64 {
            sorted
                .iter()
                .map(|d| (ages[ages.partition_point(|a| a < d).min(ages.len() - 1)] - *d).as_secs_f64())
                .sum::<f64>()
        };
        for k in 1..=8 {
            let even: Vec<Duration> = (1..=k).map(|i| secs(2.5 + 2.0 * i as f64 / k as f64)).collect();
            if polls_per_generation(&even, &sorted) <= budget {
                assert!(
                    late(&held) <= late(&even) + 1e-9,
                    "{k} even polls beat the plan at {budget}"
                );
            }
        }
    }
    // The run sets the budget; a plan that changes asks for the polls to be timed again.
    let mut t = RenderTimes::default();
    t.load(sorted.iter().map(|&d| ("m".to_string(), d)));
    assert!(t.set_budget(Some(1.8)));
    assert!(!t.set_budget(Some(1.9)), "a small move keeps the plans");
    let p = PollPolicy::scaled(secs(3.5));
    let (polls, _) = walk(&p, &t, &durations);
    assert!(polls <= 1.8 + 0.05, "{polls}");
    assert!(t.set_budget(None));
    let (polls, _) = walk(&p, &t, &durations);
    assert!(polls > 3.0, "{polls}");
}

#[test]
fn pixverse_kinds_split_by_resolution_and_duration() {
    let params = |v: serde_json::Value| v.as_object().unwrap().clone();
    let pixverse = "pixverse/v5/image-to-video";
    let a = kind_of(
        pixverse,
        &params(serde_json::json!({"resolution": "1080p", "duration": 5})),
    );
    let b = kind_of(
        pixverse,
        &params(serde_json::json!({"resolution": "540p", "duration": 5})),
    );
    assert_ne!(a, b);
    assert_eq!(a, "pixverse/v5/image-to-video|1080p|5");
    let m = kind_of("magic/image-to-video", &params(serde_json::json!({"template": "X"})));
    assert_eq!(m, "magic/image-to-video");
}

#[test]
fn once_renders_are_known_they_set_how_close_polls_may_be_not_a_prior_far_off() {
    // A prior 30 times too long (105 s) for renders of 3.5 s: its floor of 1.05 s between polls
    // would hold every late generation a second apart.
    let p = PollPolicy::scaled(secs(105.0));
    assert_eq!(p.min_interval, secs(1.05));
    let mut t = RenderTimes::default();
    for _ in 0..20 {
        t.record("m", secs(3.5));
    }
    assert_eq!(p.next_poll(&t, "m", secs(10.0), 0.5), secs(3.5) / 20);
    // The service's floor (no generation polled more than once a second) holds whatever is learned.
    let service = PollPolicy::service();
    let mut quick = RenderTimes::default();
    for _ in 0..20 {
        quick.record("m", secs(20.0));
    }
    assert_eq!(service.next_poll(&quick, "m", secs(60.0), 0.5), secs(1.0));
}

#[test]
fn any_spans_give_as_many_durations_in_order_within_their_ends() {
    let mut rng = fastrand::Rng::with_seed(7);
    for round in 0..500 {
        let n = rng.usize(1..40);
        let scale = [1e-3, 1.0, 150.0, 1e5][round % 4];
        let spans: Vec<(f64, f64)> = (0..n)
            .map(|_| {
                let hi = rng.f64() * scale;
                match rng.u8(0..4) {
                    0 => (0.0, hi),
                    1 => (hi, hi),
                    // Out of order, as clocks may give: taken as exact at its end.
                    2 => (hi * 1.5, hi),
                    _ => (hi * rng.f64(), hi),
                }
            })
            .collect();
        let estimated = censored::quantiles(&spans);
        assert_eq!(estimated.len(), n, "{spans:?}");
        assert!(
            estimated.iter().all(|d| d.is_finite() && *d >= 0.0),
            "{spans:?}: {estimated:?}"
        );
        assert!(estimated.is_sorted(), "{spans:?}: {estimated:?}");
        let top = spans.iter().map(|s| s.1).fold(0.0, f64::max);
        assert!(
            estimated.iter().all(|&d| d <= top * (1.0 + 1e-9)),
            "{spans:?}: {estimated:?}"
        );
    }
}
