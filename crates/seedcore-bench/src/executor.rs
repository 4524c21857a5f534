//! A remote executor of the tool's own, for W2's remote variant: an HTTP/1.1 server on a free
//! loopback port that answers every call `{"success": true}` at once and stamps, by this
//! machine's wall clock, the moment each call had fully arrived, under the task id of its body.
//!
//! It speaks only what seedcore's executor client sends: `POST` with a `content-length` body,
//! connections kept alive for as many calls as the client makes. A call it cannot read gets a
//! `400` and its connection closed, so the task fails and the workload reports it missing
//! rather than waiting forever. Nagle is off on every connection: an answer is one small write.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use uuid::Uuid;

use crate::error::{Context as _, Result};

const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
content-length: 16\r\n\r\n{\"success\":true}";
const REFUSAL: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
/// A head longer than this is not seedcore's client.
const MAX_HEAD: usize = 16 * 1024;

/// When each task's call arrived, and how many connections the calls came on.
#[derive(Default)]
struct Log {
    arrivals: HashMap<Uuid, DateTime<Utc>>,
    connections: usize,
}

/// The running executor; stops listening when dropped.
pub struct Executor {
    url: String,
    log: Arc<Mutex<Log>>,
    accept: JoinHandle<()>,
}

impl Executor {
    /// Listens on a free loopback port.
    pub async fn start() -> Result<Executor> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("listen for executor calls on loopback")?;
        let address = listener
            .local_addr()
            .context("read the executor's address")?;
        let log = Arc::new(Mutex::new(Log::default()));
        let accept = tokio::spawn(accept(listener, log.clone()));
        Ok(Executor {
            url: format!("http://{address}/run"),
            log,
            accept,
        })
    }

    /// Where seedcore is to POST its tasks.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Each task's call arrival so far.
    pub fn arrivals(&self) -> HashMap<Uuid, DateTime<Utc>> {
        self.log.lock().expect("executor log").arrivals.clone()
    }

    /// Connections seedcore opened to the executor so far.
    pub fn connections(&self) -> usize {
        self.log.lock().expect("executor log").connections
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept(listener: TcpListener, log: Arc<Mutex<Log>>) {
    while let Ok((stream, _)) = listener.accept().await {
        log.lock().expect("executor log").connections += 1;
        tokio::spawn(serve(stream, log.clone()));
    }
}

/// Answers the calls of one connection until the client closes it or sends one it cannot read.
async fn serve(mut stream: TcpStream, log: Arc<Mutex<Log>>) {
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::with_capacity(4096);
    loop {
        let call = match next_call(&mut stream, &mut buffer).await {
            Ok(Some(call)) => call,
            Ok(None) => return,
            Err(()) => {
                let _ = stream.write_all(REFUSAL).await;
                return;
            }
        };
        let arrived = Utc::now();
        let Some(id) = task_id(&call) else {
            let _ = stream.write_all(REFUSAL).await;
            return;
        };
        log.lock()
            .expect("executor log")
            .arrivals
            .insert(id, arrived);
        if stream.write_all(ANSWER).await.is_err() {
            return;
        }
    }
}

/// The body of the next call, once it has fully arrived; None when the client closed the
/// connection between calls. Bytes past the call stay in `buffer` for the next one.
async fn next_call(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> std::result::Result<Option<Vec<u8>>, ()> {
    let head_end = loop {
        if let Some(end) = find(buffer, b"\r\n\r\n") {
            break end + 4;
        }
        if buffer.len() > MAX_HEAD {
            return Err(());
        }
        if !read_more(stream, buffer).await? {
            return if buffer.is_empty() { Ok(None) } else { Err(()) };
        }
    };
    let length = content_length(&buffer[..head_end]).ok_or(())?;
    while buffer.len() < head_end + length {
        if !read_more(stream, buffer).await? {
            return Err(());
        }
    }
    let body = buffer[head_end..head_end + length].to_vec();
    buffer.drain(..head_end + length);
    Ok(Some(body))
}

/// Appends what the socket has; false at its end.
async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::result::Result<bool, ()> {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk).await {
        Ok(0) => Ok(false),
        Ok(n) => {
            buffer.extend_from_slice(&chunk[..n]);
            Ok(true)
        }
        Err(_) => Err(()),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The `content-length` of a request head; None when it has none (a chunked body, which
/// seedcore's client does not send).
fn content_length(head: &[u8]) -> Option<usize> {
    let head = std::str::from_utf8(head).ok()?;
    head.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })
}

fn task_id(body: &[u8]) -> Option<Uuid> {
    let task: serde_json::Value = serde_json::from_slice(body).ok()?;
    task["id"].as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_length_is_read_from_the_head_whatever_its_case() {
        let head = b"POST /run HTTP/1.1\r\nhost: x\r\nContent-Length: 42\r\n\r\n";
        assert_eq!(content_length(head), Some(42));
        assert_eq!(content_length(b"POST /run HTTP/1.1\r\n\r\n"), None);
    }

    #[tokio::test]
    async fn calls_on_one_kept_alive_connection_are_each_answered_and_stamped() {
        let executor = Executor::start().await.unwrap();
        let client = reqwest::Client::new();
        let ids = [Uuid::new_v4(), Uuid::new_v4()];
        for id in ids {
            let answer = client
                .post(executor.url())
                .body(format!(r#"{{"id":"{id}","type":"w2.remote"}}"#))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            assert_eq!(answer.text().await.unwrap(), r#"{"success":true}"#);
        }
        let arrivals = executor.arrivals();
        assert!(ids.iter().all(|id| arrivals.contains_key(id)));
        assert_eq!(executor.connections(), 1);
    }
}
