//! Waiting for a launched engine (by the start and the restart job): `/healthz` is polled
//! until it answers or the deadline passes, and between two polls the container is
//! inspected, so an engine that exited for good fails the wait at once, with its exit
//! code and its last lines of output, instead of being polled for the whole deadline.

use std::sync::Arc;
use std::time::Duration;

use super::shared::{Time, bounded};
use super::{RuntimeConfig, RuntimePorts};
use crate::domain::runtime::RuntimeBinding;
use crate::ports::{ContainerError, ContainerRuntime, EngineClient, EngineTarget};

/// Lines of an exited engine's output quoted in the failure.
const OUTPUT_LINES: usize = 20;
/// Bound on the quoted output, in bytes: the reason is stored in the game's history and
/// sent to the admins, so a chatty engine must not fill them.
const OUTPUT_BYTES: usize = 2048;

/// Why an engine never became ready.
#[derive(Debug, thiserror::Error)]
pub(super) enum NotReady {
    /// `/healthz` never answered in time.
    #[error("engine did not answer /healthz within {seconds:.1}s: {last_error}")]
    Deadline {
        /// The configured deadline.
        seconds: f64,
        /// The last probe's error.
        last_error: String,
    },
    /// The engine's container stopped for good (its restart policy, if any, gave up)
    /// before it answered.
    #[error("engine exited {} before answering /healthz; {output}", exit_words(*.code))]
    Exited {
        /// The exit code of its last run, when the runtime knows it.
        code: Option<i64>,
        /// Its last lines of output, bounded (see [`output_tail`]).
        output: String,
    },
    /// The container vanished (or the runtime refused to look at it).
    #[error(transparent)]
    Container(#[from] ContainerError),
}

fn exit_words(code: Option<i64>) -> String {
    match code {
        Some(code) => format!("with code {code}"),
        None => "with an unknown code".to_owned(),
    }
}

/// What waiting for a launched engine uses: its `/healthz`, its container, and the
/// start's deadline.
#[derive(Clone)]
pub(super) struct Readiness {
    /// The deadline is measured on it.
    time: Time,
    /// Polls `/healthz`.
    engine: Arc<dyn EngineClient>,
    /// Tells an engine that exited for good, and its last output.
    containers: Arc<dyn ContainerRuntime>,
    /// `healthz_deadline`: how long the engine has to answer.
    deadline: Duration,
    /// `healthz_poll_interval`: the pause between two polls.
    poll_interval: Duration,
    /// `probe_timeout`: the bound on one poll, inspect or read of the output.
    probe_timeout: Duration,
}

impl Readiness {
    pub(super) fn new(ports: &RuntimePorts, config: &RuntimeConfig) -> Self {
        Self {
            time: Time::new(ports),
            engine: Arc::clone(&ports.engine),
            containers: Arc::clone(&ports.containers),
            deadline: config.healthz_deadline,
            poll_interval: config.healthz_poll_interval,
            probe_timeout: config.probe_timeout,
        }
    }
}

/// Polls `/healthz` of the bound engine until it answers, at most for the configured
/// deadline, measured on the clock and, because a test clock may stand still, also as a
/// number of polls. After each failed poll the container is inspected: one that exited
/// for good (see [`crate::ports::ContainerInfo::exited_for_good`]) or vanished ends the
/// wait at once.
pub(super) async fn wait_until_ready(
    ready: &Readiness,
    binding: &RuntimeBinding,
    target: &EngineTarget,
) -> Result<(), NotReady> {
    let deadline = ready.deadline;
    let until = chrono::TimeDelta::from_std(deadline)
        .ok()
        .and_then(|d| ready.time.now().checked_add_signed(d));
    let poll = ready.poll_interval.max(Duration::from_millis(1));
    let max_polls = deadline.as_millis().div_ceil(poll.as_millis()).max(1) + 1;
    let mut last_error = String::new();
    for attempt in 0..max_polls {
        if attempt > 0 {
            if until.is_some_and(|until| ready.time.now() >= until) {
                break;
            }
            tokio::time::sleep(poll).await;
        }
        let probe = ready.engine.healthz(target);
        match bounded(ready.probe_timeout, probe).await {
            Ok(()) => return Ok(()),
            Err(error) => last_error = error.to_string(),
        }
        exited(ready, &binding.container_id).await?;
    }
    Err(NotReady::Deadline {
        seconds: deadline.as_secs_f64(),
        last_error,
    })
}

/// `Err` when the container is gone for good: exited (with its code and output) or
/// vanished. A runtime that does not answer in time is no verdict: polling goes on.
async fn exited(ready: &Readiness, container_id: &str) -> Result<(), NotReady> {
    let containers = &ready.containers;
    let limit = ready.probe_timeout;
    let info = match tokio::time::timeout(limit, containers.inspect(container_id)).await {
        Ok(Ok(info)) => info,
        Ok(Err(error @ ContainerError::NotFound(_))) => return Err(error.into()),
        Ok(Err(error)) => {
            tracing::debug!(%error, container = container_id, "inspect while waiting for /healthz failed");
            return Ok(());
        }
        Err(_) => return Ok(()),
    };
    if !info.exited_for_good() {
        return Ok(());
    }
    let output =
        match tokio::time::timeout(limit, containers.logs(container_id, OUTPUT_LINES)).await {
            Ok(Ok(lines)) => output_tail(&lines),
            Ok(Err(error)) => format!("its output could not be read: {error}"),
            Err(_) => format!("its output could not be read within {limit:?}"),
        };
    tracing::warn!(container = container_id, code = ?info.exit_code, "engine exited while starting");
    Err(NotReady::Exited {
        code: info.exit_code,
        output,
    })
}

/// "last output:" and the last [`OUTPUT_LINES`] lines, cleaned of terminal escapes and
/// control characters (engines often log in colour) and cut to their last
/// [`OUTPUT_BYTES`] bytes.
pub(super) fn output_tail(lines: &[String]) -> String {
    let start = lines.len().saturating_sub(OUTPUT_LINES);
    let text = lines[start..]
        .iter()
        .map(|line| clean(line))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    if text.is_empty() {
        return "it wrote no output".to_owned();
    }
    if text.len() <= OUTPUT_BYTES {
        return format!("last output:\n{text}");
    }
    let mut cut = text.len() - OUTPUT_BYTES;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    format!("last output (cut):\n…{}", &text[cut..])
}

/// The line without ANSI escape sequences, other control characters or trailing space.
fn clean(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI (`ESC [ ... final`), or a two-character escape.
            if chars.next_if_eq(&'[').is_some() {
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_tail_keeps_the_last_lines_without_colour() {
        let many: Vec<String> = (1..=30).map(|i| format!("line {i}")).collect();
        let tail = output_tail(&many);
        assert!(tail.starts_with("last output:\nline 11\n"), "{tail}");
        assert!(tail.ends_with("line 30"), "{tail}");
        let coloured = lines(&["\u{1b}[31mERROR\u{1b}[0m boom\r", "", "  "]);
        assert_eq!(output_tail(&coloured), "last output:\nERROR boom");
        assert_eq!(output_tail(&[]), "it wrote no output");
    }

    #[test]
    fn the_tail_is_bounded_in_bytes_on_a_char_boundary() {
        let long = vec!["é".repeat(3000)];
        let tail = output_tail(&long);
        assert!(
            tail.starts_with("last output (cut):\n…é"),
            "{}",
            &tail[..40]
        );
        assert!(tail.len() <= OUTPUT_BYTES + 40);
    }

    #[test]
    fn an_exit_says_its_code_and_output() {
        let exited = NotReady::Exited {
            code: Some(3),
            output: output_tail(&lines(&["boom"])),
        };
        assert_eq!(
            exited.to_string(),
            "engine exited with code 3 before answering /healthz; last output:\nboom"
        );
        let unknown = NotReady::Exited {
            code: None,
            output: output_tail(&[]),
        };
        assert!(unknown.to_string().contains("unknown code"), "{unknown}");
    }
}
