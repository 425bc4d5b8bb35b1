//! The standard process metrics (`process_*`, the names Prometheus client libraries
//! use), read from `/proc/self` on Linux; elsewhere nothing is set.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// CPU seconds.
pub const CPU_SECONDS: &str = "process_cpu_seconds_total";
/// Resident memory.
pub const RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
/// Virtual memory.
pub const VIRTUAL_MEMORY: &str = "process_virtual_memory_bytes";
/// Open descriptors.
pub const OPEN_FDS: &str = "process_open_fds";
/// Descriptor limit.
pub const MAX_FDS: &str = "process_max_fds";
/// Threads.
pub const THREADS: &str = "process_threads";
/// Start time.
pub const START_TIME: &str = "process_start_time_seconds";

/// The figures of one reading.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessFigures {
    /// User plus system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub resident_bytes: f64,
    /// Virtual size, bytes.
    pub virtual_bytes: f64,
    /// Threads.
    pub threads: f64,
    /// Start time, seconds since the epoch.
    pub start_time: f64,
}

/// Clock ticks per second and page size as Linux reports them to nearly every process
/// (`getconf CLK_TCK` = 100, 4 KiB pages on x86_64 and most aarch64 kernels); reading
/// them exactly would need libc.
const TICKS_PER_SECOND: f64 = 100.0;
const PAGE_SIZE: f64 = 4096.0;

/// Parses `/proc/self/stat` (after the `(comm)` field, which may hold spaces) and the
/// boot time of `/proc/stat`.
pub fn parse_stat(stat: &str, boot_time: f64) -> Option<ProcessFigures> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields counted from 1 in proc(5): state is 3; here index 0 is field 3.
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
    Some(ProcessFigures {
        cpu_seconds: (field(14)? + field(15)?) / TICKS_PER_SECOND,
        threads: field(20)?,
        start_time: boot_time + field(22)? / TICKS_PER_SECOND,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * PAGE_SIZE,
    })
}

/// When this process first recorded its figures (Unix seconds): its start time where
/// `/proc/stat` cannot be read (systemd's `ProcSubset=pid`, which the shipped unit sets,
/// hides it), taken at start-up, when the metrics loop first runs.
fn first_recorded() -> f64 {
    static FIRST: OnceLock<f64> = OnceLock::new();
    *FIRST.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_secs_f64())
            .unwrap_or_default()
    })
}

/// Sets the process gauges from `/proc`.
pub fn record() {
    let first = first_recorded();
    let boot_time = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    if let Some(figures) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat(&s, boot_time.unwrap_or_default()))
    {
        metrics::counter!(CPU_SECONDS).absolute(figures.cpu_seconds as u64);
        metrics::gauge!(RESIDENT_MEMORY).set(figures.resident_bytes);
        metrics::gauge!(VIRTUAL_MEMORY).set(figures.virtual_bytes);
        metrics::gauge!(THREADS).set(figures.threads);
        // Without the boot time the start would read as seconds since boot: a date in
        // 1970.
        let start = if boot_time.is_some() {
            figures.start_time
        } else {
            first
        };
        metrics::gauge!(START_TIME).set(start);
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        // Descriptor counts are far below 2^53.
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!(OPEN_FDS).set(entries.count() as f64);
    }
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<f64>().ok())
        });
    if let Some(max) = max_fds {
        metrics::gauge!(MAX_FDS).set(max);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_stat_line_with_spaces_in_the_name_parses() {
        let stat = "4242 (galaxy server) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 \
                    20 0 7 0 12345 104857600 2560 18446744073709551615";
        let figures = parse_stat(stat, 1_700_000_000.0).unwrap();
        assert_eq!(figures.cpu_seconds, 3.0);
        assert_eq!(figures.threads, 7.0);
        assert_eq!(figures.start_time, 1_700_000_000.0 + 123.45);
        assert_eq!(figures.virtual_bytes, 104_857_600.0);
        assert_eq!(figures.resident_bytes, 2560.0 * 4096.0);
        assert!(parse_stat("garbage", 0.0).is_none());
    }

    #[test]
    fn this_process_reads() {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let figures = parse_stat(&stat, 0.0).unwrap();
        assert!(figures.threads >= 1.0 && figures.resident_bytes > 0.0);
    }
}
