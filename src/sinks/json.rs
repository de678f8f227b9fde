//! `--log-format json`: one JSON object per line for each event, for cron mail, log shippers and
//! `jq`. Every object has `ts` (RFC 3339, UTC) and `event`; job events name the job by its id
//! (the `job_id` of `results.csv`) and its key (`custom_id`), with its model, template, input,
//! prompt, label and file: a script follows a row of its sheet without reading the results.
//! Progress objects come at the pace of the plain status line. The API key is in no event.

use std::io::Write;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::time::Instant;

use super::notice::Level;
use super::{RunEvent, Sink};
use crate::plan::Job;

pub struct JsonLines {
    out: Box<dyn Write + Send>,
    progress_every: Duration,
    next_progress: Option<Instant>,
}

impl JsonLines {
    pub fn new(out: Box<dyn Write + Send>, progress_every: Duration) -> JsonLines {
        JsonLines {
            out,
            progress_every,
            next_progress: None,
        }
    }

    fn write(&mut self, event: &str, fields: Value) {
        let line = line(event, fields);
        // A log that cannot be written must not stop the run: the state holds the truth.
        let _ = self.out.write_all(line.as_bytes());
        let _ = self.out.flush();
    }
}

/// `{"ts": …, "event": …, …fields}` and a newline: `ts` and `event` first, for people reading the
/// log with `tail`.
pub fn line(event: &str, fields: Value) -> String {
    let mut line = format!("{{\"ts\":{},\"event\":{}", Value::from(timestamp()), Value::from(event));
    if let Value::Object(fields) = fields {
        for (k, v) in fields {
            line.push(',');
            line.push_str(&Value::from(k).to_string());
            line.push(':');
            line.push_str(&v.to_string());
        }
    }
    line.push_str("}\n");
    line
}

pub fn timestamp() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn job_fields(job: &Job) -> Value {
    json!({
        "job_id": job.key.short(),
        "custom_id": job.custom_id,
        "model": job.model,
        "template": job.template,
        "input": job.input_label,
        "prompt": job.prompt(),
        "label": job.user_label,
        "file": job.file,
    })
}

/// Credits as the whole numbers they are (`29000000`, not `29000000.0`), as in the results.
fn credits_json(c: f64) -> Value {
    crate::results::jsonl::credits(c)
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(base), Value::Object(extra)) = (&mut base, extra) {
        base.extend(extra);
    }
    base
}

impl Sink for JsonLines {
    fn event(&mut self, event: &RunEvent<'_>) {
        match event {
            RunEvent::Started(s) => {
                self.next_progress = Some(Instant::now() + self.progress_every);
                self.write(
                    "run_started",
                    json!({
                        "jobs": s.jobs,
                        "to_submit": s.to_submit,
                        "to_follow": s.to_follow,
                        "already_done": s.already_done,
                        "estimated_credits": s.estimate.map(credits_json),
                        "max_credits": s.max_credits.map(credits_json),
                    }),
                );
            }
            RunEvent::Submitted {
                job,
                generation_id,
                attempt,
                credits,
            } => self.write(
                "job_submitted",
                with(
                    job_fields(job),
                    json!({"generation_id": generation_id, "attempt": attempt, "credits": credits.map(credits_json)}),
                ),
            ),
            RunEvent::Retrying {
                job,
                attempt,
                delay,
                error,
            } => self.write(
                "job_retried",
                with(
                    job_fields(job),
                    json!({"attempt": attempt, "delay_ms": delay.as_millis() as u64, "error": error}),
                ),
            ),
            RunEvent::Generated { job, generation_id } => self.write(
                "job_generated",
                with(job_fields(job), json!({"generation_id": generation_id})),
            ),
            RunEvent::Completed {
                job,
                generation_id,
                bytes,
                credits,
            } => self.write(
                "job_completed",
                with(
                    job_fields(job),
                    json!({"generation_id": generation_id, "bytes": bytes, "credits": credits.map(credits_json)}),
                ),
            ),
            RunEvent::Failed {
                job,
                generation_id,
                error,
                resubmitting,
            } => self.write(
                "job_failed",
                with(
                    job_fields(job),
                    json!({"generation_id": generation_id, "error": error, "resubmitting": resubmitting}),
                ),
            ),
            RunEvent::Unknown { job, error } => {
                self.write("job_unknown", with(job_fields(job), json!({"error": error})))
            }
            RunEvent::Pending { job, reason } => {
                self.write("job_pending", with(job_fields(job), json!({"error": reason})))
            }
            // Debug notices (each poll that finds a generation running) only with `-v`.
            RunEvent::Notice(n) if n.level() == Level::Debug && !tracing::enabled!(tracing::Level::DEBUG) => {}
            RunEvent::Notice(n) => {
                let fields = json!({
                    "kind": n.kind(),
                    "level": format!("{:?}", n.level()).to_lowercase(),
                    "message": n.text(),
                });
                let fields = match n.job() {
                    Some(job) => with(job_fields(job), fields),
                    None => fields,
                };
                self.write("notice", fields)
            }
            RunEvent::Halted { kind, failed, finished } => {
                self.write("halted", json!({"kind": kind, "failed": failed, "finished": finished}))
            }
            RunEvent::Progress(p) => {
                let now = Instant::now();
                if self.next_progress.is_some_and(|next| now >= next) {
                    self.next_progress = Some(now + self.progress_every);
                    self.write(
                        "progress",
                        json!({
                            "total": p.total,
                            "done": p.done,
                            "failed": p.failed,
                            "unknown": p.unknown,
                            "deferred": p.deferred,
                            "waiting": p.waiting,
                            "submitting": p.submitting,
                            "queued": p.queued,
                            "generating": p.generating,
                            "downloading": p.downloading,
                            "credits": credits_json(p.credits),
                            "requests": p.requests,
                            "elapsed_ms": p.elapsed.as_millis() as u64,
                        }),
                    );
                }
            }
            RunEvent::Finished(f) => self.write(
                "run_finished",
                json!({
                    "completed": f.completed,
                    "failed": f.failed,
                    "unknown": f.unknown,
                    "awaiting_download": f.awaiting_download,
                    "pending": f.pending,
                    "credits": credits_json(f.credits),
                    "api_requests": f.api_requests,
                    "elapsed_ms": f.elapsed.as_millis() as u64,
                    "stopped": f.stopped,
                    "exit_code": f.exit_code,
                }),
            ),
        }
    }
}
