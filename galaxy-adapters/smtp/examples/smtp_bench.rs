//! Outbox throughput to a local SMTP sink, beside a raw lettre send loop to the same sink
//! in the same run (the ratio is the figure to compare between machines).
//!
//! ```text
//! cargo run --release -p galaxy-smtp --example smtp_bench [-- --mails 5000
//!     --delayed-mails 400 --rounds 3 --url smtp://127.0.0.1:2525 --json out.json]
//! ```
//!
//! Without `--url` the sinks are minimal SMTP servers in this process (their own thread
//! and runtime) that accept every message, so the figures measure the client side:
//! message building, the SMTP dialogue over loopback TCP, and for the outbox the claim,
//! the attempt record and the status change in the in-memory outbox. Two sinks run:
//! one that acknowledges TCP segments like any Linux relay (delayed ACK), and one that
//! acknowledges at once (`TCP_QUICKACK`). lettre 0.11 leaves Nagle's algorithm on and
//! writes the final `.` of a message separately, so against a delayed-ACK peer every
//! message waits about 40 ms for that ACK; the quick-ACK sink takes that stall away
//! and shows what the outbox itself costs. `--mails` is the count per run for the
//! quick-ACK sink (or the `--url` one), `--delayed-mails` for the delayed-ACK sink,
//! which is 40 ms a message per connection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use galaxy_core::domain::MailId;
use galaxy_core::domain::mail::{MailDelivery, MailStatus, OutgoingMail};
use galaxy_core::domain::user::{Email, Locale};
use galaxy_core::ports::{Clock, MailStore, Mailer, SecretGenerator};
use galaxy_core::worker::Worker;
use galaxy_core::worker::mail::{MailWorker, MailWorkerConfig};
use galaxy_ports::memory::MemoryMailStore;
use galaxy_ports::system::{OsSecretGenerator, SystemClock};
use galaxy_smtp::{SmtpMailer, SmtpMailerConfig, SmtpUrl};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use socket2::SockRef;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const FROM: &str = "Galaxy <galaxy@example.org>";
const RAW: &str = "raw lettre send loop";
const OUTBOX: &str = "outbox: MailWorker + SmtpMailer";
const TEXT: &str = "Hello ann,\n\nturn 5 of Andromeda has run. Your report:\n\n\
                    Planets: 3 (Terra, Vega II, Rigel IV)\nFleets: 2\nScore: 117\n";
const HTML: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
                    <title>Andromeda: turn 5 report</title></head><body>\
                    <p>Hello ann,</p><p>turn 5 of <strong>Andromeda</strong> has run. \
                    Your report:</p><pre>Planets: 3 (Terra, Vega II, Rigel IV)\nFleets: 2\n\
                    Score: 117</pre></body></html>\n";

struct Args {
    mails: usize,
    delayed_mails: usize,
    rounds: usize,
    url: Option<String>,
    json: Option<String>,
}

fn args() -> Args {
    let mut args = Args {
        mails: 5000,
        delayed_mails: 400,
        rounds: 3,
        url: None,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--mails" => args.mails = value.parse().expect("--mails: a number"),
            "--delayed-mails" => {
                args.delayed_mails = value.parse().expect("--delayed-mails: a number");
            }
            "--rounds" => args.rounds = value.parse().expect("--rounds: a number"),
            "--url" => args.url = Some(value),
            "--json" => args.json = Some(value),
            other => panic!("unknown flag {other}; see the example's doc comment"),
        }
    }
    args
}

/// One row of the result table.
struct Row {
    sink: &'static str,
    scenario: &'static str,
    concurrency: usize,
    mails: usize,
    secs: f64,
}

fn main() {
    let args = args();
    let sinks: Vec<(&'static str, String, usize)> = match args.url.clone() {
        Some(url) => vec![("external", url, args.mails)],
        None => vec![
            ("delayed ACK", start_sink(false), args.delayed_mails),
            ("quick ACK", start_sink(true), args.mails),
        ],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    runtime.block_on(async {
        for (_, url, _) in &sinks {
            // One warm-up run of each, not recorded.
            raw_loop(url, 50, 1).await;
            outbox(url, 50, 1).await;
        }
        // Interleaved, so load from elsewhere hits every scenario alike.
        for _ in 0..args.rounds {
            for (sink, url, mails) in &sinks {
                for concurrency in [1, 4] {
                    let secs = raw_loop(url, *mails, concurrency).await;
                    rows.push(Row {
                        sink,
                        scenario: RAW,
                        concurrency,
                        mails: *mails,
                        secs,
                    });
                    let secs = outbox(url, *mails, concurrency).await;
                    rows.push(Row {
                        sink,
                        scenario: OUTBOX,
                        concurrency,
                        mails: *mails,
                        secs,
                    });
                }
            }
        }
    });
    let sink_names: Vec<_> = sinks.iter().map(|(name, _, _)| *name).collect();
    report(&rows, &sink_names, args.rounds, args.json.as_deref());
}

/// Sends `mails` messages through a pooled lettre transport from `concurrency` tasks.
async fn raw_loop(url: &str, mails: usize, concurrency: usize) -> f64 {
    let url = SmtpUrl::parse(url).unwrap();
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(url.host)
        .port(url.port)
        .timeout(Some(Duration::from_secs(30)))
        .pool_config(PoolConfig::new().max_size(4))
        .build();
    let from: Mailbox = FROM.parse().unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (transport, from) = (transport.clone(), from.clone());
        tasks.push(tokio::spawn(async move {
            for n in (worker..mails).step_by(concurrency) {
                let message = Message::builder()
                    .from(from.clone())
                    .to("ann@example.org".parse().unwrap())
                    .subject("Andromeda: turn 5 report")
                    .message_id(Some(format!("<raw-{n}@example.org>")))
                    .multipart(MultiPart::alternative_plain_html(
                        TEXT.to_owned(),
                        HTML.to_owned(),
                    ))
                    .unwrap();
                transport.send(message).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed().as_secs_f64()
}

/// Queues `mails` mails and drains the outbox with `workers` mail workers sharing one
/// SMTP mailer.
async fn outbox(url: &str, mails: usize, workers: usize) -> f64 {
    let store = Arc::new(MemoryMailStore::default());
    let mut config = SmtpMailerConfig::new(SmtpUrl::parse(url).unwrap(), FROM);
    config.pool_max_size = 4;
    let mailer: Arc<dyn Mailer> = Arc::new(SmtpMailer::new(config).unwrap());
    let clock = Arc::new(SystemClock);
    let secrets = Arc::new(OsSecretGenerator);
    let started = Instant::now();
    for n in 0..mails {
        let mail = OutgoingMail {
            idempotency_key: format!("bench:{n}"),
            to: Email::parse("ann@example.org").unwrap(),
            kind: "turn_completed".to_owned(),
            locale: Locale::default(),
            subject: "Andromeda: turn 5 report".to_owned(),
            text_body: TEXT.to_owned(),
            html_body: Some(HTML.to_owned()),
            extras: Default::default(),
        };
        let delivery = MailDelivery::new(MailId::from_uuid(secrets.uuid()), mail, clock.now());
        store.enqueue_mail(&delivery).await.unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let worker = MailWorker::new(
            store.clone(),
            mailer.clone(),
            clock.clone(),
            secrets.clone(),
            MailWorkerConfig::default(),
        );
        tasks.push(tokio::spawn(async move {
            worker.run_until_idle(usize::MAX).await.unwrap()
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let counts = store.count_mail_by_status().await.unwrap();
    let sent = counts
        .iter()
        .find(|(s, _)| *s == MailStatus::Sent)
        .map_or(0, |(_, n)| *n);
    assert_eq!(sent as usize, mails, "every mail sent: {counts:?}");
    secs
}

/// Prints the table (medians over the rounds) and writes the JSON.
fn report(rows: &[Row], sinks: &[&'static str], rounds: usize, json: Option<&str>) {
    let mut summary = Vec::new();
    for sink in sinks {
        for concurrency in [1, 4] {
            let median = |scenario: &str| {
                let mut rates: Vec<f64> = rows
                    .iter()
                    .filter(|r| r.sink == *sink && r.scenario == scenario)
                    .filter(|r| r.concurrency == concurrency)
                    .map(|r| r.mails as f64 / r.secs)
                    .collect();
                rates.sort_by(f64::total_cmp);
                rates[rates.len() / 2]
            };
            let raw = median(RAW);
            for scenario in [RAW, OUTBOX] {
                let rate = median(scenario);
                summary.push((*sink, scenario, concurrency, rate, rate / raw));
            }
        }
    }
    println!("| sink | scenario | concurrency | mails/s (median of {rounds}) | vs raw |");
    println!("|---|---|---:|---:|---:|");
    for (sink, scenario, concurrency, rate, ratio) in &summary {
        println!("| {sink} | {scenario} | {concurrency} | {rate:.0} | {ratio:.2}x |");
    }
    if let Some(path) = json {
        let value = serde_json::json!({
            "runs": rows.iter().map(|r| serde_json::json!({
                "sink": r.sink, "scenario": r.scenario, "concurrency": r.concurrency,
                "mails": r.mails, "secs": r.secs,
            })).collect::<Vec<_>>(),
            "summary": summary.iter().map(|(sink, s, c, rate, ratio)| serde_json::json!({
                "sink": sink, "scenario": s, "concurrency": c,
                "mails_per_sec": rate, "vs_raw": ratio,
            })).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    }
}

/// Starts an in-process sink on its own thread and runtime; returns its URL.
fn start_sink(quick_ack: bool) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().port()).unwrap();
            let accepted = Arc::new(AtomicU64::new(0));
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                tokio::spawn(sink_session(socket, accepted.clone(), quick_ack));
            }
        });
    });
    format!("smtp://127.0.0.1:{}", rx.recv().unwrap())
}

/// One SMTP session: accepts everything, answers like a relay would.
async fn sink_session(
    socket: TcpStream,
    accepted: Arc<AtomicU64>,
    quick_ack: bool,
) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 bench.sink ESMTP\r\n").await?;
    let mut line = Vec::new();
    loop {
        line.clear();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let verb = line
            .get(..4)
            .map(|v| v.to_ascii_uppercase())
            .unwrap_or_default();
        let reply: Vec<u8> = match &verb[..] {
            b"EHLO" => b"250-bench.sink\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n".to_vec(),
            b"HELO" => b"250 bench.sink\r\n".to_vec(),
            b"MAIL" | b"RCPT" | b"RSET" | b"NOOP" => b"250 2.0.0 OK\r\n".to_vec(),
            b"QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            b"DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                loop {
                    line.clear();
                    if read.read_until(b'\n', &mut line).await? == 0 {
                        return Ok(());
                    }
                    if quick_ack {
                        // Not sticky in Linux: re-armed after every read, it also sends
                        // the ACK the kernel was holding back.
                        SockRef::from(read.get_ref().as_ref()).set_tcp_quickack(true)?;
                    }
                    if line == b".\r\n" {
                        break;
                    }
                }
                let n = accepted.fetch_add(1, Ordering::Relaxed) + 1;
                format!("250 2.0.0 OK queued as {n}\r\n").into_bytes()
            }
            _ => b"502 5.5.2 command not implemented\r\n".to_vec(),
        };
        write.write_all(&reply).await?;
    }
}
