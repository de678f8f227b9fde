//! The end-of-run summary, drawn from made-up runs and compared with its snapshots.

use super::*;

fn line(id: &str, model: &str, name: &str, status: Status, error: Option<&str>, earlier: bool) -> JobLine {
    JobLine {
        job_id: id.into(),
        model: model.into(),
        name: name.into(),
        status,
        error: error.map(Into::into),
        earlier,
        paid_failure: error.is_some_and(|e| e.starts_with("generation")),
        attempts: 1,
    }
}

fn summary(jobs: Vec<JobLine>) -> Summary {
    Summary {
        jobs,
        credits_now: 4_200_000.0,
        estimate: Some(5_250_000.0),
        credits_total: 9_450_000.0,
        cap_left: None,
        max_credits: None,
        not_run: None,
        elapsed: Duration::from_secs(754),
        api_requests: 118,
        out: "out/spring".into(),
        rows: 0,
        report: Some("out/spring/report.html".into()),
        command: [
            "vidbatch",
            "run",
            "spring.csv",
            "--out",
            "out/spring",
            "--paid-retries",
            "1",
        ]
        .map(String::from)
        .to_vec(),
        stopped: None,
        heard: Heard {
            generations: 4,
            expected: 4_200_000.0,
            ..Heard::default()
        },
    }
}

#[test]
fn a_clean_run() {
    let s = summary(vec![
        line(
            "a1",
            "magic/image-to-video",
            "shoe/paris",
            Status::Completed,
            None,
            false,
        ),
        line(
            "a2",
            "magic/image-to-video",
            "bag/paris",
            Status::Completed,
            None,
            false,
        ),
        line("b1", "magic/text-to-video", "sale", Status::Completed, None, false),
    ]);
    insta::assert_snapshot!(render(&s));
}

#[test]
fn failures_old_and_new_pending_over_budget_and_unknown() {
    let mut s = summary(vec![
        line(
            "a1",
            "magic/image-to-video",
            "shoe/paris",
            Status::Completed,
            None,
            false,
        ),
        line(
            "a2",
            "magic/image-to-video",
            "bag/paris",
            Status::Failed,
            Some("generation g-1 failed: the template renderer gave up"),
            true,
        ),
        line(
            "a3",
            "magic/image-to-video",
            "hat/paris",
            Status::Failed,
            Some("submit failed: HTTP 400: image too small"),
            false,
        ),
        line(
            "b1",
            "pixverse/v5/image-to-video",
            "presenter",
            Status::Unknown,
            None,
            false,
        ),
        line(
            "b2",
            "pixverse/v5/image-to-video",
            "presenter-2",
            Status::Pending,
            Some("budget reached"),
            false,
        ),
    ]);
    s.cap_left = Some(crate::selection::CapLeft {
        jobs: 1,
        cap: 10_000_000.0,
        estimate: 2_000_000.0,
        needed: 11_450_000.0,
    });
    s.max_credits = Some(10_000_000.0);
    s.heard.not_submitted = 1;
    s.heard.not_spent = 2_000_000.0;
    s.command.extend(["--max-credits".into(), "10000000".into()]);
    insta::assert_snapshot!(render(&s));
}

#[test]
fn the_credits_line_names_the_cap_once_with_the_jobs_it_left() {
    let mut s = summary(Vec::new());
    s.max_credits = Some(10_000_000.0);
    s.cap_left = Some(crate::selection::CapLeft {
        jobs: 2,
        cap: 10_000_000.0,
        estimate: 2_100_000.0,
        needed: 11_450_000.0,
    });
    // A stop left 3 jobs, the cap 2 of them.
    s.heard.not_submitted = 3;
    s.heard.not_spent = 3_150_000.0;
    assert_eq!(
        credits_line(&s),
        "credits: 4,200,000 spent in this run on 4 generations (expected 4,200,000); 3 jobs not submitted \
         (2 of them would pass --max-credits 10,000,000): 3,150,000 of the 5,250,000 estimate not spent; \
         9,450,000 recorded for these jobs"
    );
    // Nothing heard of them (the state says the cap left them): what they should cost.
    s.heard.not_submitted = 0;
    assert_eq!(
        credits_line(&s),
        "credits: 4,200,000 spent in this run on 4 generations (expected 4,200,000); 2 jobs not sent: they \
         would pass --max-credits 10,000,000 (est. 2,100,000 more); 9,450,000 recorded for these jobs"
    );
    // No job left: the cap is said at the end.
    s.cap_left = None;
    assert!(credits_line(&s).ends_with("; 9,450,000 recorded for these jobs; --max-credits 10,000,000"));
}

#[test]
fn a_run_stopped_by_a_refused_key() {
    let mut s = summary(vec![
        line(
            "a1",
            "magic/text-to-video",
            "one",
            Status::Pending,
            Some("not submitted"),
            false,
        ),
        line(
            "a2",
            "magic/text-to-video",
            "two",
            Status::Pending,
            Some("not submitted"),
            false,
        ),
    ]);
    s.credits_now = 0.0;
    s.estimate = Some(2_100_000.0);
    s.heard = Heard {
        not_submitted: 2,
        not_spent: 2_100_000.0,
        ..Heard::default()
    };
    s.stopped = Some("the API refused the request for `one`: HTTP 401. Check `AIMLAPI_KEY`".into());
    insta::assert_snapshot!(render(&s));
}

#[test]
fn a_stopped_run_says_what_was_not_spent_and_why() {
    let mut s = summary(vec![line(
        "a1",
        "magic/text-to-video",
        "one",
        Status::Pending,
        None,
        false,
    )]);
    s.credits_now = 0.0;
    s.credits_total = 0.0;
    s.estimate = Some(20_600_000.0);
    s.heard = Heard {
        not_submitted: 20,
        not_spent: 20_600_000.0,
        ..Heard::default()
    };
    assert_eq!(
        credits_line(&s),
        "credits: 0 spent in this run; 20 jobs not submitted: the 20,600,000 estimate not spent; \
         0 recorded for these jobs"
    );
    s.credits_now = 4_200_000.0;
    s.heard = Heard {
        generations: 4,
        expected: 4_120_000.0,
        not_submitted: 16,
        not_spent: 16_480_000.0,
        ..Heard::default()
    };
    assert_eq!(
        credits_line(&s),
        "credits: 4,200,000 spent in this run on 4 generations (expected 4,120,000); 16 jobs not submitted: \
         16,480,000 of the 20,600,000 estimate not spent; 0 recorded for these jobs"
    );
    s.heard.generations = 1;
    s.heard.not_submitted = 1;
    assert!(credits_line(&s).contains("on 1 generation (expected 4,120,000); 1 job not submitted"));
}

#[test]
fn downloads_and_the_slowest_jobs() {
    let mut s = summary(
        (0..4)
            .map(|i| {
                line(
                    &format!("a{i}"),
                    "magic/text-to-video",
                    "x",
                    Status::Completed,
                    None,
                    false,
                )
            })
            .collect(),
    );
    let timed = |id: &str, label: Option<&str>, secs: u64| super::super::tally::JobTiming {
        job_id: id.into(),
        name: format!("magic-text-to-video/{id}"),
        label: label.map(Into::into),
        took: Duration::from_secs(secs),
    };
    s.heard.downloads = super::super::downloads::DownloadMeter::measured(4, 1_234_000_000, Duration::from_secs(36));
    s.heard.slowest = vec![
        timed("a3", Some("hero"), 252),
        timed("a1", None, 130),
        timed("a0", None, 95),
    ];
    s.heard.took = [252, 130, 95, 61].map(Duration::from_secs).to_vec();
    let text = render(&s);
    assert!(
        text.contains("time: 12m34s · 118 API requests · downloaded 4 videos, 1.23 GB at 34.3 MB/s\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "slowest, submit to saved video (median 1m35s over 4 jobs):\n  \
             a3 magic-text-to-video/a3 (hero): 4m12s\n  a1 magic-text-to-video/a1: 2m10s\n  \
             a0 magic-text-to-video/a0: 1m35s\n"
        ),
        "{text}"
    );
    // Among three jobs, none stands out.
    s.heard.took.truncate(3);
    assert!(!render(&s).contains("slowest"));
}

#[test]
fn suggested_commands_replace_the_flags_they_set() {
    let given: Vec<String> = [
        "vidbatch",
        "run",
        "my campaign.csv",
        "--paid-retries=2",
        "--resubmit-unknown",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(
        command(&given, &[]),
        "vidbatch run 'my campaign.csv' --paid-retries=2 --resubmit-unknown"
    );
    assert_eq!(
        command(&given, &["--resubmit-unknown"]),
        "vidbatch run 'my campaign.csv' --paid-retries=2 --resubmit-unknown"
    );
    assert_eq!(
        command(&given, &["--paid-retries", "3"]),
        "vidbatch run 'my campaign.csv' --resubmit-unknown --paid-retries 3"
    );
}

#[test]
fn arguments_are_quoted_only_when_needed() {
    assert_eq!(shell_quote("manifests/demo.yaml"), "manifests/demo.yaml");
    assert_eq!(shell_quote("my campaign.csv"), "'my campaign.csv'");
    assert_eq!(shell_quote("it's"), "'it'\\''s'");
    assert_eq!(shell_quote(""), "''");
}
