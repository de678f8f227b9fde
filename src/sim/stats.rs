//! What the simulator counts for benchmarks: every API request, each 429 by its code, and per
//! generation when it was created, when it finished on the server's clock, how often it was
//! polled and when a poll first reported it finished (detection latency is the difference).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use serde::Serialize;

/// A snapshot of the counters ([`RunningSim::stats`](super::RunningSim::stats)).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SimStats {
    /// API requests received: submits and polls, answered or refused.
    pub requests: u64,
    pub submits: u64,
    pub polls: u64,
    /// 429s sent, per the `code` of their body (`"-"` for the injected ones, which have none).
    pub throttled: BTreeMap<String, u64>,
    /// Each generation created here, or polled here, by id.
    pub generations: HashMap<String, GenerationStats>,
    /// Each file served (or cut off), in the order the requests came.
    pub downloads: Vec<DownloadStats>,
}

/// One generation, as the simulator's clock saw it.
#[derive(Debug, Clone, Serialize)]
pub struct GenerationStats {
    pub created_at: SystemTime,
    /// Time spent `queued`, then `generating` (drawn from its id when renders vary).
    pub queued: Duration,
    pub render: Duration,
    /// Whether this instance created it (otherwise it was only polled here).
    pub created_here: bool,
    pub fails: bool,
    /// Polls answered with its status.
    pub polls: u32,
    /// When a poll first answered that it was finished (`completed`, `succeeded` or `error`).
    pub first_finished_poll: Option<SystemTime>,
}

impl GenerationStats {
    /// When it finished, server side.
    pub fn finished_at(&self) -> SystemTime {
        self.created_at + self.queued + self.render
    }

    /// From its finish to the first poll that said so.
    pub fn detection_latency(&self) -> Option<Duration> {
        let seen = self.first_finished_poll?;
        Some(seen.duration_since(self.finished_at()).unwrap_or_default())
    }
}

/// One file request that was answered with the file.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadStats {
    pub generation_id: String,
    /// Its announced length.
    pub bytes: u64,
    pub started_at: SystemTime,
    /// When its last byte was handed to the connection (`None` while sending, or when cut).
    pub finished_at: Option<SystemTime>,
}

impl SimStats {
    /// The generations created by this instance, in the order they were created.
    pub fn created(&self) -> Vec<(&str, &GenerationStats)> {
        let mut all: Vec<_> = self
            .generations
            .iter()
            .filter(|(_, g)| g.created_here)
            .map(|(id, g)| (id.as_str(), g))
            .collect();
        all.sort_by_key(|(id, g)| (g.created_at, *id));
        all
    }

    /// 429s sent with this code.
    pub fn throttled(&self, code: &str) -> u64 {
        self.throttled.get(code).copied().unwrap_or(0)
    }
}
