//! Which due poll a turn of the rate limiter goes to, and when a new plan moves a poll.

use super::*;

/// Where polls wait for turns of the rate limiter, a turn goes to the poll most likely to find
/// its generation finished: before anything is known of its kind, the oldest, not the one due
/// first.
#[tokio::test(start_paused = true)]
async fn a_turn_goes_to_the_due_poll_most_likely_to_find_a_finish() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, out) = built(dir.path());
    let mut c = coordinator(&plan, &out, adaptive(0));
    submitted(&mut c, 0, "g-old");
    tokio::time::advance(Duration::from_secs(2)).await;
    submitted(&mut c, 1, "g-young");
    let now = Instant::now();
    // Both due, the young one first.
    poll_planned(&mut c, 1, now - Duration::from_millis(500));
    poll_planned(&mut c, 0, now - Duration::from_millis(100));
    assert_eq!(c.next_poll(now), Some(0), "the older generation is polled first");
    let Track::Remote(r) = &mut c.tracks[0] else {
        unreachable!()
    };
    r.stage = Stage::Rendering {
        slot: None,
        queued: false,
        next: Next::Polling,
    };
    assert_eq!(c.next_poll(now), Some(1));
    // A poll timed again (the plan moved it) is not taken at its old time.
    let Track::Remote(r) = &mut c.tracks[1] else {
        unreachable!()
    };
    r.stage.poll_at(now + Duration::from_secs(5), true);
    c.due.push(std::cmp::Reverse((now - Duration::from_millis(50), 1)));
    assert_eq!(c.next_poll(now), None);
}

/// Job `i`'s next poll, planned at `at`, entered among the due ones.
fn poll_planned(c: &mut Coordinator, i: usize, at: Instant) {
    let Track::Remote(r) = &mut c.tracks[i] else {
        panic!("job {i} is followed")
    };
    r.stage.poll_at(at, true);
    c.due.push(std::cmp::Reverse((at, i)));
}

#[tokio::test(start_paused = true)]
async fn once_renders_are_known_a_turn_goes_to_the_likeliest_finish_not_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, out) = built(dir.path());
    let mut c = coordinator(&plan, &out, adaptive(0));
    submitted(&mut c, 0, "g-old");
    let Track::Remote(r) = &c.tracks[0] else { unreachable!() };
    let kind = r.kind.to_string();
    // Renders of 2–4 s.
    for k in 0..=20 {
        c.render_times.record(&kind, Duration::from_millis(2000 + 100 * k));
    }
    tokio::time::advance(Duration::from_millis(900)).await;
    submitted(&mut c, 1, "g-young");
    tokio::time::advance(Duration::from_millis(2990)).await;
    // The old one (3.89 s) was seen running a moment ago: it had 10 ms to finish in. The young
    // one (2.99 s) was not looked at since its submit: about half of all renders are shorter.
    polled(&mut c, 0, running());
    c.carry_out();
    tokio::time::advance(Duration::from_millis(10)).await;
    let now = Instant::now();
    poll_planned(&mut c, 0, now - Duration::from_millis(5));
    poll_planned(&mut c, 1, now - Duration::from_millis(1));
    assert_eq!(c.next_poll(now), Some(1), "the young one, likelier to have finished");
    assert_eq!(c.next_poll(now), Some(0));
}

#[tokio::test(start_paused = true)]
async fn a_plan_timed_again_does_not_put_off_a_poll_already_due() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, out) = built(dir.path());
    let mut c = coordinator(&plan, &out, adaptive(0));
    submitted(&mut c, 0, "g-due");
    submitted(&mut c, 1, "g-later");
    tokio::time::advance(Duration::from_secs(1)).await;
    let now = Instant::now();
    let (due, later) = (now - Duration::from_millis(20), now + Duration::from_secs(60));
    poll_planned(&mut c, 0, due);
    poll_planned(&mut c, 1, later);
    c.retime_polls(None);
    let next = |c: &Coordinator, i: usize| match &c.tracks[i] {
        Track::Remote(r) => r.stage.next(),
        _ => None,
    };
    assert_eq!(next(&c, 0), Some(Next::PollAt { at: due, planned: true }), "still due");
    let Some(Next::PollAt { at, .. }) = next(&c, 1) else {
        panic!("job 1 waits for a poll")
    };
    assert!(at < later, "the one not due yet follows the plan: {at:?}");
}
