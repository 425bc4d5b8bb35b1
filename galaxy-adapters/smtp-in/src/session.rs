//! One SMTP connection: `mailin` decides what each line means, this module reads the
//! lines (bounded, with a timeout, the whole session within its limit), writes the
//! answers (with a timeout), upgrades to TLS on `STARTTLS`, and stores each finished
//! message before its `250` goes out.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use galaxy_core::service::mail_in::{Envelope, MailInError, MailInService, ParseError};
use mailin::{Action, Handler, Response, SessionBuilder};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::SmtpInConfig;
use super::limits::{Admission, Limits};

/// The longest line read (commands are far shorter; data lines at most 1000 bytes by
/// RFC 5321): a client sending more is cut off.
const MAX_LINE: u64 = 64 * 1024;
/// Recipients of one message at most.
const MAX_RECIPIENTS: usize = 100;
/// What `MAIL FROM:<>` is handed to `mailin` as: its parser wants at least one character
/// of address and answers the null reverse-path (RFC 5321 4.5.5: bounces, auto-replies,
/// and the sender checks some receivers make by calling a domain's MX back) with a
/// permanent 500. The handler reads this address back as the null sender; a sender that
/// names it itself is taken for one (its mail is dropped as a bounce would be).
const NULL_SENDER: &str = "null-reverse-path@null.invalid";

/// A stream the session can read and write (plain TCP, or TLS after `STARTTLS`).
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// What the handler collected for the message in progress.
#[derive(Default)]
struct Transaction {
    /// `MAIL FROM`, empty for `<>`.
    from: Option<String>,
    /// `RCPT TO`s.
    to: Vec<String>,
    /// The data so far.
    data: Vec<u8>,
    /// More data arrived than the bound allows: the message is refused at its end.
    oversize: bool,
    /// The message is complete and waits to be stored before its answer goes out.
    complete: bool,
    /// Between `DATA` and its end: lines are the message's, never commands.
    in_data: bool,
}

/// The `mailin` handler: checks recipients and the rate at `MAIL`, collects the data.
struct Collector {
    /// Shared with the driver, which stores the message at its end.
    transaction: Arc<Mutex<Transaction>>,
    /// Which recipients are ours.
    service: Arc<MailInService>,
    /// The rate per client.
    limits: Arc<Limits>,
    /// The size bound.
    max: usize,
}

impl Collector {
    fn lock(&self) -> MutexGuard<'_, Transaction> {
        self.transaction.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Handler for Collector {
    fn mail(&mut self, ip: IpAddr, _domain: &str, from: &str) -> Response {
        if !self.limits.take_message(ip) {
            return Response::custom(
                450,
                "4.7.1 Too many messages from your address, try later".into(),
            );
        }
        let from = from.trim_matches(['<', '>']);
        let from = if from == NULL_SENDER { "" } else { from };
        let mut t = self.lock();
        *t = Transaction {
            from: Some(from.to_owned()),
            ..Transaction::default()
        };
        mailin::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        // The same answer for every address of the domain, valid token or not.
        if !self.service.accepts_recipient(to) {
            return Response::custom(550, "5.7.1 Relaying denied".into());
        }
        let mut t = self.lock();
        if t.to.len() >= MAX_RECIPIENTS {
            return Response::custom(452, "4.5.3 Too many recipients".into());
        }
        t.to.push(to.trim_matches(['<', '>']).to_owned());
        mailin::response::OK
    }

    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> Response {
        let mut t = self.lock();
        t.data.clear();
        t.oversize = false;
        t.complete = false;
        t.in_data = true;
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let max = self.max;
        let mut t = self.lock();
        if t.data.len() + buf.len() > max {
            t.oversize = true;
            t.data.clear();
        } else if !t.oversize {
            t.data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        // Always OK to the state machine, which stays in its data state after an error
        // answer (and would then read the client's next commands as data); the driver
        // answers for the message: 552 when oversize, else what storing it gave.
        let mut t = self.lock();
        if t.oversize {
            t.data.clear();
        }
        t.complete = true;
        t.in_data = false;
        mailin::response::OK
    }
}

/// `line` with the null reverse-path of a `MAIL FROM:<>` command (any case, spaces
/// before `<>`, parameters after it) replaced by [`NULL_SENDER`], or `None` for any other
/// line.
fn null_reverse_path(line: &[u8]) -> Option<Vec<u8>> {
    const COMMAND: &[u8] = b"MAIL FROM:";
    let head = line.get(..COMMAND.len())?;
    if !head.eq_ignore_ascii_case(COMMAND) {
        return None;
    }
    let rest = &line[COMMAND.len()..];
    let path = rest.iter().position(|b| *b != b' ')?;
    let after = rest[path..].strip_prefix(b"<>")?;
    let mut rewritten = Vec::with_capacity(line.len() + NULL_SENDER.len());
    rewritten.extend_from_slice(COMMAND);
    rewritten.push(b'<');
    rewritten.extend_from_slice(NULL_SENDER.as_bytes());
    rewritten.push(b'>');
    rewritten.extend_from_slice(after);
    Some(rewritten)
}

/// Serves one connection.
pub(crate) async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    admission: Admission,
    service: Arc<MailInService>,
    config: Arc<SmtpInConfig>,
    limits: Arc<Limits>,
    cancel: CancellationToken,
) {
    let mut stream: Box<dyn Stream> = Box::new(stream);
    let _permit = match admission {
        Admission::Admitted(permit) => permit,
        Admission::Refused => {
            let _ = say(
                &mut stream,
                b"421 4.7.0 Too many connections, try later\r\n",
                config.timeout,
            )
            .await;
            let _ = stream.shutdown().await;
            return;
        }
    };
    let transaction = Arc::new(Mutex::new(Transaction::default()));
    let collector = Collector {
        transaction: transaction.clone(),
        service: service.clone(),
        limits,
        max: config.max_message_bytes,
    };
    let mut builder = SessionBuilder::new(config.hostname.clone());
    if config.tls.is_some() {
        builder.enable_start_tls();
    }
    let mut session = builder.build(peer.ip(), collector);
    if write(&mut stream, &session.greeting(), config.timeout)
        .await
        .is_err()
    {
        return;
    }
    let mut reader = BufReader::new(stream);
    let mut line = Vec::with_capacity(1024);
    // However busy, a session ends here: a client trickling one line just within
    // `timeout` would otherwise hold its connection for ever.
    let over = tokio::time::sleep(config.session_limit);
    tokio::pin!(over);
    loop {
        line.clear();
        let read = {
            let mut limited = (&mut reader).take(MAX_LINE);
            let next = tokio::time::timeout(config.timeout, limited.read_until(b'\n', &mut line));
            tokio::select! {
                () = cancel.cancelled() => Err(&b"421 4.3.2 Shutting down\r\n"[..]),
                () = &mut over => Err(&b"421 4.4.2 Session too long, closing\r\n"[..]),
                read = next => Ok(read),
            }
        };
        let read = match read {
            Ok(read) => read,
            Err(farewell) => {
                let _ = say(reader.get_mut(), farewell, config.timeout).await;
                break;
            }
        };
        match read {
            Err(_) => {
                let _ = say(
                    reader.get_mut(),
                    b"421 4.4.2 Timeout, closing\r\n",
                    config.timeout,
                )
                .await;
                break;
            }
            Ok(Err(_)) | Ok(Ok(0)) => break,
            Ok(Ok(n)) if n as u64 >= MAX_LINE && !line.ends_with(b"\n") => {
                let _ = say(
                    reader.get_mut(),
                    b"500 5.5.2 Line too long\r\n",
                    config.timeout,
                )
                .await;
                break;
            }
            Ok(Ok(_)) => {}
        }
        let in_data = transaction
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .in_data;
        let null_sender = (!in_data).then(|| null_reverse_path(&line)).flatten();
        let mut response = session.process(null_sender.as_deref().unwrap_or(&line));
        let finished = {
            let mut t = transaction.lock().unwrap_or_else(|e| e.into_inner());
            if t.complete {
                t.complete = false;
                Some(std::mem::take(&mut *t))
            } else {
                None
            }
        };
        if let Some(message) = finished {
            response = store(&service, message, peer).await;
        }
        match response.action {
            Action::NoReply => {}
            Action::Reply => {
                if write(reader.get_mut(), &response, config.timeout)
                    .await
                    .is_err()
                {
                    break;
                }
            }
            Action::Close => {
                let _ = write(reader.get_mut(), &response, config.timeout).await;
                break;
            }
            Action::UpgradeTls => {
                let Some(tls) = config.tls.clone() else {
                    break;
                };
                if write(reader.get_mut(), &response, config.timeout)
                    .await
                    .is_err()
                {
                    break;
                }
                // What the client sent before the handshake is dropped (RFC 3207: it
                // must wait for the 220), and so is the buffer.
                let plain = reader.into_inner();
                let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                match tokio::time::timeout(config.timeout, acceptor.accept(plain)).await {
                    Ok(Ok(secured)) => {
                        reader = BufReader::new(Box::new(secured) as Box<dyn Stream>);
                        session.tls_active();
                    }
                    Ok(Err(error)) => {
                        tracing::info!(%peer, %error, "inbound SMTP TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                }
            }
        }
    }
    // Bounded too: a TLS client that never reads would keep the close (and its place)
    // pending for ever.
    let _ = tokio::time::timeout(config.timeout, reader.get_mut().shutdown()).await;
}

/// Stores a finished message; the answer to its end of data.
async fn store(service: &MailInService, message: Transaction, peer: SocketAddr) -> Response {
    if message.oversize {
        return Response::custom(552, "5.3.4 Message too big".into());
    }
    let envelope = Envelope {
        mail_from: message.from,
        rcpt_to: message.to,
    };
    match service.receive(&message.data, &envelope).await {
        Ok(receipt) => {
            tracing::info!(%peer, inbound_id = %receipt.id, duplicate = receipt.duplicate, "inbound SMTP message stored");
            Response::custom(250, format!("2.0.0 Stored as {}", receipt.id))
        }
        Err(MailInError::Unreadable(ParseError::TooLarge { .. })) => {
            Response::custom(552, "5.3.4 Message too big".into())
        }
        Err(MailInError::Unreadable(error)) => {
            tracing::info!(%peer, %error, "inbound SMTP message refused");
            Response::custom(554, "5.6.0 Message not readable".into())
        }
        Err(error) => {
            tracing::warn!(%peer, %error, "inbound SMTP message not stored; the sender will retry");
            Response::custom(451, "4.3.0 Try again later".into())
        }
    }
}

/// Writes one answer.
async fn write<W: AsyncWrite + Unpin + ?Sized>(
    out: &mut W,
    response: &Response,
    timeout: Duration,
) -> std::io::Result<()> {
    let bytes = response.buffer()?;
    if bytes.is_empty() {
        return Ok(());
    }
    say(out, &bytes, timeout).await
}

/// Writes `bytes` within `timeout`: a client that sends commands but never reads the
/// answers would otherwise block the session once the socket's buffer is full.
async fn say<W: AsyncWrite + Unpin + ?Sized>(
    out: &mut W,
    bytes: &[u8],
    timeout: Duration,
) -> std::io::Result<()> {
    let written = async {
        out.write_all(bytes).await?;
        out.flush().await
    };
    tokio::time::timeout(timeout, written)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}
