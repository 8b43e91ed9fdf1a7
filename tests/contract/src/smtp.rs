//! A mail sink on loopback: just enough SMTP for a GoTrue to deliver its mail to, and
//! enough MIME to read the HTML back (GoTrue sends `text/html` in quoted-printable).
//!
//! It accepts every message (no TLS, no AUTH offered), keeps each one per recipient, and
//! answers `221` to `QUIT`. Test tooling only: it trusts its one client.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A received message: what a mail client would show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope recipient (`RCPT TO`), lower case.
    pub to: String,
    pub subject: String,
    /// The HTML body, decoded.
    pub html: String,
}

/// The sink: listening until dropped.
#[derive(Debug)]
pub struct SmtpSink {
    addr: std::net::SocketAddr,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// Listens on `addr` (`127.0.0.1:0` for any free port).
    pub async fn start(addr: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let mails = Arc::new(Mutex::new(Vec::new()));
        let store = mails.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = session(stream, store).await;
                });
            }
        });
        Ok(Self { addr, mails, task })
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// The mail received for `to` so far, oldest first.
    pub fn mails_to(&self, to: &str) -> Vec<ReceivedMail> {
        let to = to.to_lowercase();
        self.mails
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|m| m.to == to)
            .cloned()
            .collect()
    }
}

async fn session(stream: TcpStream, store: Arc<Mutex<Vec<ReceivedMail>>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 tessera-sink ESMTP\r\n").await?;
    let mut recipients: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-tessera-sink\r\n250 8BITMIME\r\n"
        } else if command.starts_with("HELO") || command.starts_with("MAIL FROM") {
            b"250 OK\r\n"
        } else if command.starts_with("RCPT TO") {
            let raw = line.trim_end();
            let addr = raw
                .split_once('<')
                .and_then(|(_, r)| r.split_once('>'))
                .map_or_else(|| raw[8..].trim().to_owned(), |(a, _)| a.to_owned());
            recipients.push(addr.to_lowercase());
            b"250 OK\r\n"
        } else if command == "DATA" {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                // Dot-stuffing (RFC 5321 §4.5.2).
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            let (subject, html) = parse_message(&data);
            {
                let mut mails = store.lock().unwrap_or_else(|e| e.into_inner());
                for to in recipients.drain(..) {
                    mails.push(ReceivedMail {
                        to,
                        subject: subject.clone(),
                        html: html.clone(),
                    });
                }
            }
            b"250 OK queued\r\n"
        } else if command == "RSET" {
            recipients.clear();
            b"250 OK\r\n"
        } else if command == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"250 OK\r\n"
        };
        write.write_all(reply).await?;
    }
}

/// The subject and the HTML body of a message (the `text/html` part of a multipart one).
pub fn parse_message(data: &str) -> (String, String) {
    let (headers, body) = split_headers(data);
    let subject = header(&headers, "subject")
        .map(|s| decode_words(&s))
        .unwrap_or_default();
    (subject, decode_part(&headers, body))
}

fn split_headers(data: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = data
        .split_once("\r\n\r\n")
        .or_else(|| data.split_once("\n\n"))
        .unwrap_or((data, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for raw in head.lines() {
        if raw.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(raw.trim());
            }
        } else if let Some((name, value)) = raw.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    (headers, body)
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

fn decode_part(headers: &[(String, String)], body: &str) -> String {
    let content_type = header(headers, "content-type").unwrap_or_default();
    if content_type.to_ascii_lowercase().starts_with("multipart/") {
        let boundary = content_type
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("boundary="))
            .next()
            .map(|b| b.trim_matches('"').to_owned())
            .unwrap_or_default();
        let delimiter = format!("--{boundary}");
        let mut text = None;
        for part in body.split(&delimiter).skip(1) {
            if part.starts_with("--") {
                break;
            }
            let (part_headers, part_body) = split_headers(part.trim_start_matches(['\r', '\n']));
            let kind = header(&part_headers, "content-type").unwrap_or_default();
            let decoded = decode_part(&part_headers, part_body);
            if kind.to_ascii_lowercase().starts_with("text/html") {
                return decoded;
            }
            text.get_or_insert(decoded);
        }
        return text.unwrap_or_default();
    }
    match header(headers, "content-transfer-encoding")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => {
            use base64::Engine;
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        }
        _ => body.replace("\r\n", "\n"),
    }
}

/// RFC 2045 quoted-printable: `=XX` bytes, soft line breaks `=\r\n`.
pub fn decode_quoted_printable(body: &str) -> String {
    let body = body.replace("\r\n", "\n");
    let bytes = body.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 2047 encoded words (`=?UTF-8?q?…?=`, `=?UTF-8?b?…?=`) in a header.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        out.push_str(&rest[..start]);
        let word = &rest[start + 2..];
        let mut fields = word.splitn(3, '?');
        let (Some(_charset), Some(encoding), Some(tail)) =
            (fields.next(), fields.next(), fields.next())
        else {
            out.push_str(&rest[start..]);
            return out;
        };
        let Some(end) = tail.find("?=") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let text = &tail[..end];
        let decoded = if encoding.eq_ignore_ascii_case("b") {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        } else {
            decode_quoted_printable(&text.replace('_', " "))
        };
        out.push_str(&decoded);
        rest = tail[end + 2..].trim_start();
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_gotrues_quoted_printable_html() {
        // A confirmation mail as real GoTrue (v2.196) sent it, recorded by this sink.
        let data = "Mime-Version: 1.0\r\nSubject: Confirm your email address\r\n\
            Content-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
            <p><a href=3D\"http://127.0.0.1:9997/verify?token=3Dpkce_ed4e&amp;type=3Dsignup&amp;redirect_to=3Dt=\r\n\
            essera%3A%2F%2Fauth\">Confirm</a></p>\r\n";
        let (subject, html) = parse_message(data);
        assert_eq!(subject, "Confirm your email address");
        assert_eq!(
            html.trim_end(),
            "<p><a href=\"http://127.0.0.1:9997/verify?token=pkce_ed4e&amp;type=signup&amp;redirect_to=tessera%3A%2F%2Fauth\">Confirm</a></p>"
        );
    }

    #[test]
    fn encoded_subjects_and_multipart_bodies() {
        assert_eq!(
            decode_words("=?UTF-8?q?123456_is_your_code?="),
            "123456 is your code"
        );
        let data = "Subject: x\nContent-Type: multipart/alternative; boundary=\"b1\"\n\n--b1\n\
            Content-Type: text/plain\n\nplain\n--b1\nContent-Type: text/html\n\
            Content-Transfer-Encoding: base64\n\nPGI+aGk8L2I+\n--b1--\n";
        assert_eq!(parse_message(data).1, "<b>hi</b>");
    }

    #[tokio::test]
    async fn a_smtp_client_delivers_to_it() {
        use tokio::io::AsyncReadExt;
        let sink = SmtpSink::start("127.0.0.1:0").await.unwrap();
        let mut c = TcpStream::connect(sink.addr()).await.unwrap();
        c.write_all(
            b"EHLO me\r\nMAIL FROM:<a@x.dev>\r\nRCPT TO:<Ada@Tessera.dev>\r\nDATA\r\n\
              Subject: hi\r\n\r\n..dotted\r\n.\r\nQUIT\r\n",
        )
        .await
        .unwrap();
        let mut all = String::new();
        c.read_to_string(&mut all).await.unwrap();
        assert!(all.contains("221"), "{all}");
        let mails = sink.mails_to("ada@tessera.dev");
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].subject, "hi");
        assert_eq!(mails[0].html.trim_end(), ".dotted");
    }
}
